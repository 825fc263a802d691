package consensus

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzSnapshotFiles puts arbitrary bytes in a snapshot's two files —
// with a correct CRC-32C trailer or, when bad is set, a wrong one — and
// reads them as a restarting member does: the metadata decodes or is an
// error, the data streams back exactly as written when its trailer is
// right and ends in a checksum error when it is not; nothing panics.
func FuzzSnapshotFiles(f *testing.F) {
	meta, err := proto.Marshal(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(9), Term: proto.Uint64(2),
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(meta, []byte("state machine data"), false)
	f.Add(meta, []byte{}, true)
	f.Add([]byte{0x0a, 0xff}, []byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, meta, data []byte, bad bool) {
		s := &snapshotter{dir: t.TempDir()}
		trailer := func(b []byte) []byte {
			sum := crc32.Checksum(b, crcTable)
			if bad {
				sum ^= 1
			}
			return binary.LittleEndian.AppendUint32(append([]byte(nil), b...), sum)
		}
		if err := os.WriteFile(s.base(2, 9)+".snap", trailer(meta), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.base(2, 9)+".db", trailer(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.loadMeta(2, 9); bad && err == nil {
			t.Fatal("metadata with a wrong checksum loaded")
		}
		r, err := s.openData(2, 9)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		switch {
		case bad && err == nil:
			t.Fatal("data with a wrong checksum read without an error")
		case !bad && err != nil:
			t.Fatalf("read: %v", err)
		case !bad && !bytes.Equal(got, data):
			t.Fatalf("read %x, wrote %x", got, data)
		}
	})
}
