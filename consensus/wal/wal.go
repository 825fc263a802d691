package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus/internal/failpoint"
)

// Record types.
const (
	typeEntry     byte = 1
	typeHardState byte = 2
	typeSnapshot  byte = 3
)

const (
	headerLen = 9
	// maxRecordBytes bounds one record; anything larger is corruption.
	maxRecordBytes = 256 << 20
	// DefaultSegmentBytes is the size after which a new segment starts.
	DefaultSegmentBytes = 64 << 20
)

var (
	// ErrCorrupt is returned by Open when a record other than the torn tail
	// of the last segment fails its checks.
	ErrCorrupt = errors.New("wal: corrupt record")
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("wal: closed")
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// State is what a WAL replays on Open: the latest snapshot marker and hard
// state, and the entries after the snapshot, in index order.
type State struct {
	Snapshot  *raftpb.SnapshotMetadata
	HardState *raftpb.HardState
	Entries   []*raftpb.Entry
}

// Options tune a WAL.
type Options struct {
	// Logger receives warnings about torn tails; nil means none.
	Logger *zap.Logger
	// SegmentBytes is the size at which a new segment starts.
	// Default DefaultSegmentBytes.
	SegmentBytes int64
	// SyncObserver, if set, is called after every fsync with its
	// duration (etcd's etcd_disk_wal_fsync_duration_seconds).
	SyncObserver func(time.Duration)
	// WriteObserver, if set, is called after every Save with the bytes
	// it wrote and how long that took (etcd's
	// etcd_disk_wal_write_bytes_total and _write_duration_seconds).
	WriteObserver func(bytes int64, d time.Duration)
}

// WAL is an open write-ahead log. Its methods are safe for concurrent use,
// but the node drives it from one goroutine.
type WAL struct {
	dir  string
	opts Options
	lg   *zap.Logger

	mu       sync.Mutex
	f        *os.File
	bw       *bufio.Writer
	size     int64 // bytes in the current segment
	seq      uint64
	segments []segment // every segment on disk, oldest first
	lastIdx  uint64    // index of the last entry written
	snap     *raftpb.SnapshotMetadata
	hs       *raftpb.HardState
	dirty    bool  // bytes written since the last Sync
	tailOff  int64 // end of the valid records of the last replayed segment
	syncs    uint64
	closed   bool
}

type segment struct {
	seq   uint64
	first uint64 // index of the first entry it may hold
	name  string
}

func segmentName(seq, first uint64) string { return fmt.Sprintf("%016x-%016x.wal", seq, first) }

func parseSegmentName(name string) (segment, bool) {
	var s segment
	if !strings.HasSuffix(name, ".wal") {
		return s, false
	}
	if _, err := fmt.Sscanf(name, "%016x-%016x.wal", &s.seq, &s.first); err != nil {
		return s, false
	}
	s.name = name
	return s, true
}

// Open opens the WAL in dir, creating it if needed, and replays it.
func Open(dir string, opts Options) (*WAL, *State, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("wal: create %q: %w", dir, err)
	}
	w := &WAL{dir: dir, opts: opts, lg: opts.Logger}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: read dir: %w", err)
	}
	for _, de := range names {
		if s, ok := parseSegmentName(de.Name()); ok {
			w.segments = append(w.segments, s)
			continue
		}
		if base, ok := strings.CutSuffix(de.Name(), tmpSuffix); ok {
			if _, ok := parseSegmentName(base); ok {
				// A segment cut did not finish creating: it was never
				// renamed into place, so it holds nothing acknowledged.
				if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
					return nil, nil, fmt.Errorf("wal: remove unfinished segment: %w", err)
				}
			}
		}
	}
	sort.Slice(w.segments, func(i, j int) bool { return w.segments[i].seq < w.segments[j].seq })
	st := &State{Snapshot: &raftpb.SnapshotMetadata{}, HardState: &raftpb.HardState{}}
	for i, s := range w.segments {
		if err := w.replay(s, i == len(w.segments)-1, st); err != nil {
			return nil, nil, err
		}
	}
	if len(st.Entries) > 0 && st.Entries[0].GetIndex() != st.Snapshot.GetIndex()+1 {
		return nil, nil, fmt.Errorf("%w: log starts at %d but the snapshot ends at %d",
			ErrCorrupt, st.Entries[0].GetIndex(), st.Snapshot.GetIndex())
	}
	w.snap, w.hs = st.Snapshot, st.HardState
	w.lastIdx = st.Snapshot.GetIndex()
	if n := len(st.Entries); n > 0 {
		w.lastIdx = st.Entries[n-1].GetIndex()
	}
	if len(w.segments) == 0 {
		if err := w.cut(); err != nil {
			return nil, nil, err
		}
	} else if err := w.openTail(); err != nil {
		return nil, nil, err
	}
	return w, st, nil
}

// replay reads one segment into st. A bad record at the end of the last
// segment is a torn write and the file is truncated there; any other bad
// record — in an earlier segment, a segment's first record, or a record
// that is damaged but not torn (see isTorn) — is ErrCorrupt, and the file
// is left as it is.
func (w *WAL) replay(s segment, last bool, st *State) error {
	path := filepath.Join(w.dir, s.name)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("wal: open segment: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	for {
		typ, payload, n, err := readRecord(r)
		if err == io.EOF {
			w.tailOff = off
			return nil
		}
		if err == nil && off == 0 && typ != typeSnapshot {
			err = fmt.Errorf("first record has type %d, not a snapshot marker", typ)
		}
		if err != nil {
			if off == 0 {
				// Every segment is created whole (cut writes it under a
				// temporary name first), so a bad first record is not a
				// torn write: this is not a WAL MetaStore wrote, or it is
				// damaged. Never truncate it.
				return fmt.Errorf("%w: %s is not a MetaStore WAL segment or is damaged at its first record: %v", ErrCorrupt, path, err)
			}
			if !last || !isTorn(path, off, err) {
				return fmt.Errorf("%w: segment %s offset %d: %v", ErrCorrupt, s.name, off, err)
			}
			w.lg.Warn("truncating torn wal tail", zap.String("path", path), zap.Int64("offset", off), zap.Error(err))
			if terr := os.Truncate(path, off); terr != nil {
				return fmt.Errorf("wal: truncate torn tail: %w", terr)
			}
			w.tailOff = off
			return nil
		}
		if err := apply(st, typ, payload); err != nil {
			return fmt.Errorf("%w: segment %s offset %d: %v", ErrCorrupt, s.name, off, err)
		}
		off += n
	}
}

// sectorBytes is the unit a disk writes atomically, at least.
const sectorBytes = 512

// isTorn reports whether the bad record at off of the segment at path is a
// write cut short by a crash: it ends the file (a short read), or a
// sector-aligned block of it is still all zeros (the segment is
// preallocated with zeros, so a sector the crash did not write reads as
// zeros; etcd's WAL applies the same rule). A record damaged any other way
// is corruption.
func isTorn(path string, off int64, err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	f, ferr := os.Open(path)
	if ferr != nil {
		return false
	}
	defer f.Close()
	var h [headerLen]byte
	if _, ferr := f.ReadAt(h[:], off); ferr != nil {
		return false
	}
	length := int64(binary.LittleEndian.Uint32(h[0:4]))
	if length > maxRecordBytes {
		length = 0 // a torn length: look at the header's own sector
	}
	end := off + headerLen + length
	buf := make([]byte, sectorBytes)
	// Split [off, end) at sector boundaries; any all-zero piece means the
	// crash came before that sector was written.
	for lo := off; lo < end; {
		hi := min(end, lo-lo%sectorBytes+sectorBytes)
		n, _ := f.ReadAt(buf[:hi-lo], lo)
		if int64(n) < hi-lo || allZero(buf[:n]) {
			return true
		}
		lo = hi
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// apply folds one record into st.
func apply(st *State, typ byte, payload []byte) error {
	switch typ {
	case typeEntry:
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(payload, e); err != nil {
			return err
		}
		idx := e.GetIndex()
		if idx <= st.Snapshot.GetIndex() {
			return nil // covered by the snapshot
		}
		if len(st.Entries) == 0 {
			// The first entry kept; segments before it may have been
			// released, and a later snapshot marker trims what it covers.
			st.Entries = append(st.Entries, e)
			break
		}
		first := st.Entries[0].GetIndex()
		if idx < first || idx > first+uint64(len(st.Entries)) {
			return fmt.Errorf("entry %d out of sequence (have %d..%d)", idx, first, first+uint64(len(st.Entries))-1)
		}
		// A later write at an index replaces the tail from there on.
		st.Entries = append(st.Entries[:idx-first], e)
	case typeHardState:
		hs := &raftpb.HardState{}
		if err := proto.Unmarshal(payload, hs); err != nil {
			return err
		}
		st.HardState = hs
	case typeSnapshot:
		m := &raftpb.SnapshotMetadata{}
		if err := proto.Unmarshal(payload, m); err != nil {
			return err
		}
		if m.GetIndex() <= st.Snapshot.GetIndex() {
			return nil // an older marker repeated at a segment start
		}
		st.Snapshot = m
		keep := st.Entries[:0]
		for _, e := range st.Entries {
			if e.GetIndex() > m.GetIndex() {
				keep = append(keep, e)
			}
		}
		st.Entries = keep
		if len(keep) > 0 && keep[0].GetIndex() != m.GetIndex()+1 {
			st.Entries = nil // a gap after the snapshot: raft will resend
		}
	default:
		return fmt.Errorf("unknown record type %d", typ)
	}
	return nil
}

// readRecord reads one record and returns its size on disk.
func readRecord(r *bufio.Reader) (typ byte, payload []byte, n int64, err error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return 0, nil, 0, io.EOF
		}
		return 0, nil, 0, fmt.Errorf("short header: %w", err)
	}
	if h == ([headerLen]byte{}) {
		// Preallocated space: no record was ever written here.
		return 0, nil, 0, io.EOF
	}
	length := binary.LittleEndian.Uint32(h[0:4])
	sum := binary.LittleEndian.Uint32(h[4:8])
	typ = h[8]
	if length > maxRecordBytes {
		return 0, nil, 0, fmt.Errorf("record length %d", length)
	}
	payload = make([]byte, length)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, 0, fmt.Errorf("short payload: %w", err)
	}
	crc := crc32.Update(crc32.Checksum([]byte{typ}, crcTable), crcTable, payload)
	if crc != sum {
		return 0, nil, 0, fmt.Errorf("checksum mismatch")
	}
	return typ, payload, int64(headerLen) + int64(length), nil
}

func (w *WAL) openTail() error {
	s := w.segments[len(w.segments)-1]
	f, err := os.OpenFile(filepath.Join(w.dir, s.name), os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("wal: open tail: %w", err)
	}
	// Drop whatever follows the last valid record (zeros of a
	// preallocation, a torn write) and reserve the segment again.
	if err := f.Truncate(w.tailOff); err != nil {
		f.Close()
		return fmt.Errorf("wal: truncate tail: %w", err)
	}
	if _, err := f.Seek(w.tailOff, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("wal: seek tail: %w", err)
	}
	preallocate(f, w.opts.SegmentBytes)
	w.f, w.bw, w.size, w.seq = f, bufio.NewWriterSize(f, 1<<20), w.tailOff, s.seq
	return nil
}

// closeSegment syncs the current segment, gives back its unused
// preallocated space and closes it.
func (w *WAL) closeSegment() error {
	if err := w.syncLocked(); err != nil {
		return err
	}
	if err := w.f.Truncate(w.size); err != nil {
		return fmt.Errorf("wal: truncate segment: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("wal: fsync: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("wal: close segment: %w", err)
	}
	return nil
}

// cut starts a new segment, beginning it with the current snapshot marker
// and hard state, and makes it durable (file and directory entry).
func (w *WAL) cut() error {
	if w.f != nil {
		if err := w.closeSegment(); err != nil {
			return err
		}
	}
	if len(w.segments) > 0 {
		w.seq = w.segments[len(w.segments)-1].seq + 1
	}
	s := segment{seq: w.seq, first: w.lastIdx + 1, name: segmentName(w.seq, w.lastIdx+1)}
	// The segment is written and synced under a temporary name and renamed
	// into place, so a segment file always starts with whole records and
	// a bad first record is never a torn write (replay refuses it).
	path := filepath.Join(w.dir, s.name)
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	preallocate(f, w.opts.SegmentBytes)
	w.f, w.bw, w.size = f, bufio.NewWriterSize(f, 1<<20), 0
	snap := w.snap
	if snap == nil {
		snap = &raftpb.SnapshotMetadata{}
	}
	if err := w.write(typeSnapshot, snap); err != nil {
		return err
	}
	if w.hs != nil {
		if err := w.write(typeHardState, w.hs); err != nil {
			return err
		}
	}
	if err := w.syncLocked(); err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("wal: create segment: %s exists", path)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	w.segments = append(w.segments, s)
	return syncDir(w.dir)
}

// tmpSuffix marks a segment being created; Open removes leftovers of a
// crash during cut (only files named exactly like its own segments).
const tmpSuffix = ".tmp"

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	return nil
}

// write appends one record to the buffer.
func (w *WAL) write(typ byte, m proto.Message) error {
	payload, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("wal: marshal: %w", err)
	}
	var h [headerLen]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Update(crc32.Checksum([]byte{typ}, crcTable), crcTable, payload))
	h[8] = typ
	if _, err := w.bw.Write(h[:]); err != nil {
		return fmt.Errorf("wal: write: %w", err)
	}
	if _, err := w.bw.Write(payload); err != nil {
		return fmt.Errorf("wal: write: %w", err)
	}
	w.size += int64(headerLen + len(payload))
	w.dirty = true
	return nil
}

// Save appends entries and, if not empty, the hard state. Nothing is
// durable until Sync. Entries must continue the log (an index at or below
// the last one replaces the tail from there, as Raft requires).
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	t0, size0 := time.Now(), w.size
	for _, e := range ents {
		if err := w.write(typeEntry, e); err != nil {
			return err
		}
		w.lastIdx = e.GetIndex()
	}
	if hs != nil && (hs.GetTerm() != 0 || hs.GetVote() != 0 || hs.GetCommit() != 0) {
		if err := w.write(typeHardState, hs); err != nil {
			return err
		}
		w.hs = proto.Clone(hs).(*raftpb.HardState)
	}
	if w.opts.WriteObserver != nil && w.size > size0 {
		w.opts.WriteObserver(w.size-size0, time.Since(t0))
	}
	if w.size >= w.opts.SegmentBytes {
		return w.cut()
	}
	return nil
}

// SaveSnapshot records that a snapshot covers the log up to m's index.
// Entries up to that index are no longer replayed.
func (w *WAL) SaveSnapshot(m *raftpb.SnapshotMetadata) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if err := w.write(typeSnapshot, m); err != nil {
		return err
	}
	if m.GetIndex() >= w.snap.GetIndex() {
		w.snap = proto.Clone(m).(*raftpb.SnapshotMetadata)
	}
	if m.GetIndex() > w.lastIdx {
		w.lastIdx = m.GetIndex()
	}
	return nil
}

// Sync makes everything written so far durable with one fsync. It is a
// no-op when nothing was written since the last Sync.
func (w *WAL) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	return w.syncLocked()
}

func (w *WAL) syncLocked() error {
	if !w.dirty {
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("wal: flush: %w", err)
	}
	t0 := time.Now()
	if failpoint.Armed(fpWalSkipSync) {
		// The failpoints build's negative control: nothing is durable.
	} else if err := datasync(w.f); err != nil {
		return fmt.Errorf("wal: fsync: %w", err)
	}
	if w.opts.SyncObserver != nil {
		w.opts.SyncObserver(time.Since(t0))
	}
	w.dirty = false
	w.syncs++
	return nil
}

// Syncs returns the number of fsyncs issued so far, for metrics.
func (w *WAL) Syncs() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syncs
}

// ReleaseTo deletes segments that hold only entries below index and no
// snapshot marker newer than the latest one. The node calls it after a
// snapshot at index is durable in the state machine.
func (w *WAL) ReleaseTo(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	index = min(index, w.snap.GetIndex())
	// Segment i may go when segment i+1 starts at or below index: every
	// entry of i is then below index, and i+1 begins with the snapshot
	// marker and hard state current at its creation.
	drop := 0
	for drop+1 < len(w.segments) && w.segments[drop+1].first <= index {
		drop++
	}
	for _, s := range w.segments[:drop] {
		if err := os.Remove(filepath.Join(w.dir, s.name)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("wal: release: %w", err)
		}
	}
	w.segments = slices.Delete(w.segments, 0, drop)
	if drop > 0 {
		return syncDir(w.dir)
	}
	return nil
}

// Close syncs and closes the WAL.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	return w.closeSegment()
}
