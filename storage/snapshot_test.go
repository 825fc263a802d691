package storage_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage"
)

func fill(t *testing.T, s *storage.Store, n int) {
	t.Helper()
	for i := range n {
		_, err := s.Put([]byte(fmt.Sprintf("key-%d", i%13)), bytes.Repeat([]byte{byte(i)}, i%50), int64(i%3))
		require.NoError(t, err)
		if i%7 == 0 {
			_, _, err := s.DeleteRange([]byte(fmt.Sprintf("key-%d", i%13)), nil)
			require.NoError(t, err)
		}
	}
}

func TestSnapshotRestore(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		src := newStore(t, e)
		fill(t, src, 100)
		done, err := src.Compact(50)
		require.NoError(t, err)
		<-done
		tw, err := src.Write()
		require.NoError(t, err)
		tw.SetConsistentIndex(storage.ConsistentIndex{Index: 77, Term: 3})
		_, err = tw.End()
		require.NoError(t, err)

		snap, err := src.Snapshot()
		require.NoError(t, err)
		fill(t, src, 10) // later writes are not in the snapshot
		var buf bytes.Buffer
		n, err := snap.WriteTo(&buf)
		require.NoError(t, err)
		require.EqualValues(t, buf.Len(), n)
		require.NoError(t, snap.Close())

		// Restore into a fresh engine of every kind.
		for _, to := range engines {
			be := to.open(t, t.TempDir())
			require.NoError(t, storage.Restore(be, bytes.NewReader(buf.Bytes())))
			dst, err := storage.Open(be, testConfig(t))
			require.NoError(t, err)
			require.Equal(t, snap.Rev(), dst.Rev())
			require.EqualValues(t, 50, dst.CompactRev())
			require.Equal(t, storage.ConsistentIndex{Index: 77, Term: 3}, dst.ConsistentIndex())
			want, err := src.HashKV(snap.Rev())
			require.NoError(t, err)
			got, err := dst.HashKV(0)
			require.NoError(t, err)
			require.Equal(t, want, got, "restored into %s", to.name)
			ks, err := dst.LeaseKeys(1)
			require.NoError(t, err)
			require.NotEmpty(t, ks)
			require.NoError(t, dst.Close())
		}
	})
}

func TestRestoreRejectsCorruptStream(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		src := newStore(t, e)
		fill(t, src, 30)
		snap, err := src.Snapshot()
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = snap.WriteTo(&buf)
		require.NoError(t, err)
		require.NoError(t, snap.Close())

		dir := t.TempDir()
		bad := bytes.Clone(buf.Bytes())
		bad[len(bad)/2] ^= 0x40
		be := e.open(t, dir)
		require.ErrorIs(t, storage.Restore(be, bytes.NewReader(bad)), storage.ErrCorrupt)
		_, err = storage.Open(be, testConfig(t))
		require.ErrorIs(t, err, storage.ErrIncompleteRestore, "a failed restore is never mistaken for data")
		require.ErrorIs(t, storage.Restore(be, bytes.NewReader(buf.Bytes()[:buf.Len()-3])), storage.ErrCorrupt, "truncated")
		require.ErrorIs(t, storage.Restore(be, bytes.NewReader([]byte("garbage"))), storage.ErrCorrupt)

		require.NoError(t, storage.Restore(be, bytes.NewReader(buf.Bytes())))
		dst, err := storage.Open(be, testConfig(t))
		require.NoError(t, err)
		defer dst.Close()
		require.Equal(t, src.Rev(), dst.Rev())
	})
}

func TestReopenKeepsStateAndConsistentIndex(t *testing.T) {
	e := engines[1]
	dir := t.TempDir()
	s, err := storage.Open(e.open(t, dir), testConfig(t))
	require.NoError(t, err)
	fill(t, s, 40)
	tw, err := s.Write()
	require.NoError(t, err)
	_, err = tw.Put([]byte("last"), []byte("v"), 0)
	require.NoError(t, err)
	tw.SetConsistentIndex(storage.ConsistentIndex{Index: 1234, Term: 9})
	rev, err := tw.End()
	require.NoError(t, err)
	hash, err := s.HashKV(0)
	require.NoError(t, err)
	all := history(t, s, 2, rev)
	require.NoError(t, s.Close())

	s, err = storage.Open(e.open(t, dir), testConfig(t))
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, rev, s.Rev())
	require.Equal(t, storage.ConsistentIndex{Index: 1234, Term: 9}, s.ConsistentIndex())
	h2, err := s.HashKV(0)
	require.NoError(t, err)
	require.Equal(t, hash, h2)
	require.Equal(t, all, history(t, s, 2, rev))
	require.EqualValues(t, rev+1, put(t, s, "after", "reopen"))
}

func TestOpenRejectsForeignData(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		be := e.open(t, t.TempDir())
		wb := be.NewBatch()
		wb.Set([]byte("not ours"), []byte("x"))
		require.NoError(t, wb.Commit(true))
		_, err := storage.Open(be, testConfig(t))
		require.ErrorIs(t, err, storage.ErrCorrupt)
		require.NoError(t, be.Close())
	})
}

// The revision survives a reopen when its only history entry is gone: a
// delete compacted at the current revision removes the tombstone and its
// history entry, and the revision must not go back.
func TestReopenKeepsRevisionAfterCompactingLastTombstone(t *testing.T) {
	e := engines[1]
	dir := t.TempDir()
	s, err := storage.Open(e.open(t, dir), testConfig(t))
	require.NoError(t, err)
	put(t, s, "a", "1")
	put(t, s, "b", "1")
	tw, err := s.Write()
	require.NoError(t, err)
	_, err = tw.DeleteRange([]byte("b"), nil)
	require.NoError(t, err)
	rev, err := tw.End()
	require.NoError(t, err)
	require.EqualValues(t, 4, rev)
	done, err := s.Compact(rev)
	require.NoError(t, err)
	<-done
	require.NoError(t, s.Close())

	s, err = storage.Open(e.open(t, dir), testConfig(t))
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, rev, s.Rev(), "the compaction revision is the floor")
	require.EqualValues(t, rev+1, put(t, s, "c", "1"))
	require.NoError(t, s.Close())

	s2, err := storage.Open(e.open(t, dir), testConfig(t))
	require.NoError(t, err)
	defer s2.Close()
	require.Equal(t, rev+1, s2.Rev(), "the newest history entry gives the revision")
}
