package wal_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus/wal"
)

// TestReadAllKeepsEverythingOnDiskAndWritesNothing: ReadAll returns the
// entries a snapshot covers (Open drops them) and a replaced tail as
// replaced, stops at a torn tail without truncating it, and leaves every
// file as it found it.
func TestReadAllKeepsEverythingOnDiskAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, 1024) // tiny segments
	for i := uint64(1); i <= 60; i++ {
		require.NoError(t, w.Save(hardState(1, 1, i), []*raftpb.Entry{entry(1, i, strings.Repeat("x", 50))}))
	}
	require.NoError(t, w.SaveSnapshot(&raftpb.SnapshotMetadata{Index: proto.Uint64(40), Term: proto.Uint64(1)}))
	require.NoError(t, w.Save(hardState(2, 2, 60), []*raftpb.Entry{entry(2, 59, "new59"), entry(2, 60, "new60"), entry(2, 61, "new61")}))
	require.NoError(t, w.Sync())
	require.NoError(t, w.Close())

	h, err := wal.ReadAll(dir)
	require.NoError(t, err)
	require.False(t, h.Torn)
	require.EqualValues(t, 40, h.Snapshot.GetIndex())
	require.EqualValues(t, 2, h.HardState.GetTerm())
	require.Len(t, h.Entries, 61, "entries 1..61, the snapshot's too")
	for i, e := range h.Entries {
		require.EqualValues(t, i+1, e.GetIndex())
	}
	require.Equal(t, "new59", string(h.Entries[58].Data), "the replaced tail")

	// A torn tail ends the read, and stays on disk.
	last := lastSegment(t, dir)
	info, err := os.Stat(last)
	require.NoError(t, err)
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{0x20, 0, 0, 0, 1, 2, 3, 4, 1, 'g', 'a', 'r'})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	before := snapshotDir(t, dir)
	h, err = wal.ReadAll(dir)
	require.NoError(t, err)
	require.True(t, h.Torn)
	require.Len(t, h.Entries, 61)
	require.Equal(t, before, snapshotDir(t, dir), "ReadAll changed the directory")
	after, err := os.Stat(last)
	require.NoError(t, err)
	require.Equal(t, info.Size()+12, after.Size())

	// Damage before the tail is corruption; an empty directory is an error.
	first, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.NoError(t, err)
	b, err := os.ReadFile(first[0])
	require.NoError(t, err)
	b[len(b)/2] ^= 0xff
	require.NoError(t, os.WriteFile(first[0], b, 0o600))
	_, err = wal.ReadAll(dir)
	require.ErrorIs(t, err, wal.ErrCorrupt)
	_, err = wal.ReadAll(t.TempDir())
	require.Error(t, err)
}

// snapshotDir maps each file of dir to its contents.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		require.NoError(t, err)
		out[de.Name()] = string(b)
	}
	return out
}

// TestReadAllAcrossAnInstalledSnapshot: a member that installed a
// snapshot has entries before it and entries after it with a gap between;
// ReadAll returns both runs.
func TestReadAllAcrossAnInstalledSnapshot(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, 0)
	for i := uint64(1); i <= 10; i++ {
		require.NoError(t, w.Save(hardState(1, 1, i), []*raftpb.Entry{entry(1, i, "a")}))
	}
	require.NoError(t, w.SaveSnapshot(&raftpb.SnapshotMetadata{Index: proto.Uint64(50), Term: proto.Uint64(2)}))
	require.NoError(t, w.Save(hardState(2, 1, 52), []*raftpb.Entry{entry(2, 51, "b"), entry(2, 52, "b")}))
	require.NoError(t, w.Sync())
	require.NoError(t, w.Close())
	h, err := wal.ReadAll(dir)
	require.NoError(t, err)
	require.Len(t, h.Entries, 12)
	require.EqualValues(t, 10, h.Entries[9].GetIndex())
	require.EqualValues(t, 51, h.Entries[10].GetIndex())
}
