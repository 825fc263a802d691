package storage_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage"
)

func auxEntries(t *testing.T, s *storage.Store, bucket string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, s.ForEachAux(bucket, func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	}))
	return out
}

func TestAuxBuckets(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		put(t, s, "a", "1")
		h0, err := s.HashKV(0)
		require.NoError(t, err)

		// An aux-only transaction commits, with its consistent index, and
		// changes no revision.
		tw, err := s.Write()
		require.NoError(t, err)
		tw.PutAux("lease", []byte{0, 1}, []byte("x"))
		tw.PutAux("lease", []byte{0, 2}, []byte("y"))
		tw.PutAux("leasf", []byte{0, 1}, []byte("other bucket"))
		tw.PutAux("lea", []byte("se"), []byte("prefix of the name"))
		tw.SetConsistentIndex(storage.ConsistentIndex{Index: 9, Term: 1})
		rev, err := tw.End()
		require.NoError(t, err)
		require.EqualValues(t, 2, rev)
		require.EqualValues(t, 9, s.ConsistentIndex().Index)
		require.Equal(t, map[string]string{"\x00\x01": "x", "\x00\x02": "y"}, auxEntries(t, s, "lease"))

		// Aux entries are not keys: ranges and HashKV do not see them.
		res, err := s.Range([]byte{0}, []byte{0}, storage.RangeOptions{})
		require.NoError(t, err)
		require.Len(t, res.KVs, 1)
		h1, err := s.HashKV(0)
		require.NoError(t, err)
		require.Equal(t, h0, h1)

		// Aborted aux writes leave nothing; DeleteAux removes.
		tw, err = s.Write()
		require.NoError(t, err)
		tw.PutAux("lease", []byte{0, 3}, []byte("z"))
		tw.Abort()
		tw, err = s.Write()
		require.NoError(t, err)
		tw.DeleteAux("lease", []byte{0, 1})
		_, err = tw.End()
		require.NoError(t, err)
		require.Equal(t, map[string]string{"\x00\x02": "y"}, auxEntries(t, s, "lease"))

		// Snapshots carry them.
		snap, err := s.Snapshot()
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = snap.WriteTo(&buf)
		require.NoError(t, err)
		require.NoError(t, snap.Close())
		be := e.open(t, t.TempDir())
		require.NoError(t, storage.Restore(be, &buf))
		dst, err := storage.Open(be, testConfig(t))
		require.NoError(t, err)
		defer dst.Close()
		require.Equal(t, map[string]string{"\x00\x02": "y"}, auxEntries(t, dst, "lease"))
		require.Equal(t, map[string]string{"se": "prefix of the name"}, auxEntries(t, dst, "lea"))
	})
}

func TestWriteTxnLeaseKeysSeesOwnWrites(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		for _, k := range []string{"a", "b", "c"} {
			_, err := s.Put([]byte(k), nil, 7)
			require.NoError(t, err)
		}
		tw, err := s.Write()
		require.NoError(t, err)
		defer tw.Abort()
		_, err = tw.Put([]byte("b"), nil, 8) // moves to another lease
		require.NoError(t, err)
		_, err = tw.DeleteRange([]byte("c"), nil)
		require.NoError(t, err)
		_, err = tw.Put([]byte("0"), nil, 7) // attaches in this txn
		require.NoError(t, err)
		ks, err := tw.LeaseKeys(7)
		require.NoError(t, err)
		require.Equal(t, [][]byte{[]byte("0"), []byte("a")}, ks)
		ks, err = tw.LeaseKeys(8)
		require.NoError(t, err)
		require.Equal(t, [][]byte{[]byte("b")}, ks)
		committed, err := s.LeaseKeys(7)
		require.NoError(t, err)
		require.Equal(t, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, committed)
	})
}
