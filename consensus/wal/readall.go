package wal

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// History is everything a WAL directory still holds: the latest snapshot
// marker and hard state, and every entry of every segment on disk,
// including entries a snapshot already covers (Open drops those).
type History struct {
	Snapshot  *raftpb.SnapshotMetadata
	HardState *raftpb.HardState
	// Entries are in index order; a later write at an index replaced the
	// tail from there on, as Raft's log truncation requires. A member that
	// installed a snapshot has a gap before the entries after it.
	Entries []*raftpb.Entry
	// Torn is set when the last segment ends in a torn record, which Open
	// would truncate; ReadAll stops there.
	Torn bool
}

// ReadAll reads the WAL in dir without opening it for writing: nothing in
// dir is created, truncated or removed. It is for tools that inspect a
// member's log (metastore wal export); a member opens its WAL with Open.
// A damaged record anywhere but at the end of the last segment is
// ErrCorrupt, as for Open.
func ReadAll(dir string) (*History, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: read dir: %w", err)
	}
	var segs []segment
	for _, de := range des {
		if s, ok := parseSegmentName(de.Name()); ok {
			segs = append(segs, s)
		}
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("wal: no segments in %s", dir)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	h := &History{Snapshot: &raftpb.SnapshotMetadata{}, HardState: &raftpb.HardState{}}
	for i, s := range segs {
		torn, err := h.read(filepath.Join(dir, s.name), i == len(segs)-1)
		if err != nil {
			return nil, err
		}
		h.Torn = torn
	}
	return h, nil
}

// read folds one segment into h and reports whether it ended torn.
func (h *History) read(path string, last bool) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("wal: open segment: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	for {
		typ, payload, n, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			if off > 0 && last && isTorn(path, off, err) {
				return true, nil
			}
			return false, fmt.Errorf("%w: %s offset %d: %v", ErrCorrupt, path, off, err)
		}
		if err := h.apply(typ, payload); err != nil {
			return false, fmt.Errorf("%w: %s offset %d: %v", ErrCorrupt, path, off, err)
		}
		off += n
	}
}

func (h *History) apply(typ byte, payload []byte) error {
	switch typ {
	case typeEntry:
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(payload, e); err != nil {
			return err
		}
		idx := e.GetIndex()
		n := len(h.Entries)
		if n == 0 {
			h.Entries = append(h.Entries, e)
			return nil
		}
		last := h.Entries[n-1].GetIndex()
		switch {
		case idx == last+1:
			h.Entries = append(h.Entries, e)
		case idx > last+1:
			// A gap is a snapshot the member installed: the entries after
			// it follow its marker.
			if h.Snapshot.GetIndex() < idx-1 {
				return fmt.Errorf("entry %d after %d with no snapshot between", idx, last)
			}
			h.Entries = append(h.Entries, e)
		default:
			// A later write at an index replaces the tail from there on.
			i := sort.Search(n, func(i int) bool { return h.Entries[i].GetIndex() >= idx })
			h.Entries = append(h.Entries[:i], e)
		}
	case typeHardState:
		hs := &raftpb.HardState{}
		if err := proto.Unmarshal(payload, hs); err != nil {
			return err
		}
		h.HardState = hs
	case typeSnapshot:
		m := &raftpb.SnapshotMetadata{}
		if err := proto.Unmarshal(payload, m); err != nil {
			return err
		}
		if m.GetIndex() > h.Snapshot.GetIndex() {
			h.Snapshot = m
		}
	default:
		return fmt.Errorf("unknown record type %d", typ)
	}
	return nil
}
