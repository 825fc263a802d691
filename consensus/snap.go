package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errNoSnapshot is returned by loadSnapshot when no file matches.
var errNoSnapshot = errors.New("consensus: no snapshot file")

// snapshotter keeps snapshot files: "%016x-%016x.snap" (term, index), each
// a marshaled raftpb.Snapshot followed by its CRC-32C.
type snapshotter struct{ dir string }

func (s *snapshotter) name(term, index uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x-%016x.snap", term, index))
}

// save writes snap durably (temp file, fsync, rename, fsync dir) and
// removes all but the two newest snapshots.
func (s *snapshotter) save(snap *raftpb.Snapshot) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("consensus: snapshot dir: %w", err)
	}
	b, err := proto.Marshal(snap)
	if err != nil {
		return err
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	final := s.name(snap.GetMetadata().GetTerm(), snap.GetMetadata().GetIndex())
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("consensus: write snapshot: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("consensus: write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("consensus: sync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("consensus: rename snapshot: %w", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	files, _ := filepath.Glob(filepath.Join(s.dir, "*.snap"))
	sort.Strings(files)
	for len(files) > 2 {
		_ = os.Remove(files[0])
		files = files[1:]
	}
	return nil
}

// load reads the snapshot at (term, index).
func (s *snapshotter) load(term, index uint64) (*raftpb.Snapshot, error) {
	b, err := os.ReadFile(s.name(term, index))
	if os.IsNotExist(err) {
		return nil, errNoSnapshot
	}
	if err != nil {
		return nil, fmt.Errorf("consensus: read snapshot: %w", err)
	}
	if len(b) < 4 || crc32.Checksum(b[:len(b)-4], crcTable) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("consensus: snapshot %d/%d fails its checksum", term, index)
	}
	snap := &raftpb.Snapshot{}
	if err := proto.Unmarshal(b[:len(b)-4], snap); err != nil {
		return nil, fmt.Errorf("consensus: decode snapshot: %w", err)
	}
	return snap, nil
}
