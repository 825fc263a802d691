package consensus

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestSnapshotterStreamsAndVerifies(t *testing.T) {
	s := &snapshotter{dir: t.TempDir()}
	data := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB
	require.NoError(t, s.saveData(2, 100, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	}))
	meta := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(100), Term: proto.Uint64(2),
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}
	require.NoError(t, s.saveMeta(meta))

	got, err := s.loadMeta(2, 100)
	require.NoError(t, err)
	require.True(t, proto.Equal(meta, got))
	r, err := s.openData(2, 100)
	require.NoError(t, err)
	back, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.Equal(t, data, back)

	// A flipped byte is caught when the stream is read to the end.
	path := s.base(2, 100) + ".db"
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	raw[len(raw)/2] ^= 1
	require.NoError(t, os.WriteFile(path, raw, 0o600))
	r, err = s.openData(2, 100)
	require.NoError(t, err)
	_, err = io.ReadAll(r)
	require.ErrorContains(t, err, "checksum")
	r.Close()

	_, err = s.loadMeta(9, 9)
	require.ErrorIs(t, err, errNoSnapshot)

	// Only the two newest snapshots are kept.
	for i := uint64(101); i <= 103; i++ {
		require.NoError(t, s.saveData(2, i, func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }))
		require.NoError(t, s.saveMeta(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(i), Term: proto.Uint64(2)}}))
	}
	_, err = s.loadMeta(2, 101)
	require.ErrorIs(t, err, errNoSnapshot)
	_, err = s.openData(2, 101)
	require.ErrorIs(t, err, errNoSnapshot)
	_, err = s.loadMeta(2, 103)
	require.NoError(t, err)
}
