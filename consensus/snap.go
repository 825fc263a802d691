package consensus

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errNoSnapshot is returned by load when no file matches.
var errNoSnapshot = errors.New("consensus: no snapshot file")

// snapshotter keeps snapshots in two files each, named by term and index:
//
//	%016x-%016x.snap  the raftpb.Snapshot metadata (no data) + CRC-32C
//	%016x-%016x.db    the state machine's data, streamed, + CRC-32C trailer
//
// Raft only ever holds the metadata: the data goes from the state machine
// to disk, from disk to the wire and from the wire to disk as streams.
type snapshotter struct{ dir string }

func (s *snapshotter) base(term, index uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x-%016x", term, index))
}

// writeFile writes a file durably: temp file, fsync, rename, fsync dir.
// write gets a buffered writer; a CRC-32C of what it wrote is appended.
func (s *snapshotter) writeFile(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("consensus: snapshot dir: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("consensus: write snapshot: %w", err)
	}
	defer os.Remove(tmp) // no-op after the rename
	crc := crc32.New(crcTable)
	bw := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = f.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("consensus: write snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("consensus: rename snapshot: %w", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// saveData streams the state machine's data for (term, index) to disk.
func (s *snapshotter) saveData(term, index uint64, write func(io.Writer) error) error {
	return s.writeFile(s.base(term, index)+".db", write)
}

// saveMeta writes the snapshot metadata and prunes all but the two newest
// snapshots.
func (s *snapshotter) saveMeta(snap *raftpb.Snapshot) error {
	meta := &raftpb.Snapshot{Metadata: snap.GetMetadata()}
	b, err := proto.Marshal(meta)
	if err != nil {
		return err
	}
	m := snap.GetMetadata()
	if err := s.writeFile(s.base(m.GetTerm(), m.GetIndex())+".snap", func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return err
	}
	s.prune()
	return nil
}

func (s *snapshotter) prune() {
	metas, _ := filepath.Glob(filepath.Join(s.dir, "*.snap"))
	sort.Strings(metas)
	for len(metas) > 2 {
		base := strings.TrimSuffix(metas[0], ".snap")
		_ = os.Remove(base + ".snap")
		_ = os.Remove(base + ".db")
		metas = metas[1:]
	}
}

// readVerified reads a small file and checks its CRC trailer.
func readVerified(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, errNoSnapshot
	}
	if err != nil {
		return nil, fmt.Errorf("consensus: read snapshot: %w", err)
	}
	if len(b) < 4 || crc32.Checksum(b[:len(b)-4], crcTable) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("consensus: %s fails its checksum", filepath.Base(path))
	}
	return b[:len(b)-4], nil
}

// loadMeta reads the snapshot metadata at (term, index).
func (s *snapshotter) loadMeta(term, index uint64) (*raftpb.Snapshot, error) {
	b, err := readVerified(s.base(term, index) + ".snap")
	if err != nil {
		return nil, err
	}
	snap := &raftpb.Snapshot{}
	if err := proto.Unmarshal(b, snap); err != nil {
		return nil, fmt.Errorf("consensus: decode snapshot: %w", err)
	}
	return snap, nil
}

// openData opens the data of (term, index) for streaming, trailer
// excluded. The CRC is checked as the stream is read: a mismatch surfaces
// as an error from the final Read.
func (s *snapshotter) openData(term, index uint64) (io.ReadCloser, error) {
	f, err := os.Open(s.base(term, index) + ".db")
	if os.IsNotExist(err) {
		return nil, errNoSnapshot
	}
	if err != nil {
		return nil, fmt.Errorf("consensus: open snapshot: %w", err)
	}
	info, err := f.Stat()
	if err != nil || info.Size() < 4 {
		f.Close()
		return nil, fmt.Errorf("consensus: snapshot data %d/%d is truncated", term, index)
	}
	var trailer [4]byte
	if _, err := f.ReadAt(trailer[:], info.Size()-4); err != nil {
		f.Close()
		return nil, err
	}
	return &checkedReader{
		r:    bufio.NewReaderSize(io.LimitReader(f, info.Size()-4), 1<<20),
		f:    f,
		crc:  crc32.New(crcTable),
		want: binary.LittleEndian.Uint32(trailer[:]),
	}, nil
}

// checkedReader verifies a CRC-32C at EOF.
type checkedReader struct {
	r   io.Reader
	f   *os.File
	crc interface {
		Sum32() uint32
		Write([]byte) (int, error)
	}
	want uint32
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	if err == io.EOF && c.crc.Sum32() != c.want {
		return n, errors.New("consensus: snapshot data fails its checksum")
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.f.Close() }
