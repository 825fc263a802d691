package memory

import (
	"bytes"
	"sync"

	"github.com/tidwall/btree"

	"github.com/metastore/metastore/storage/backend"
)

// itemOverhead approximates the per-entry bookkeeping bytes, for Sizes.
const itemOverhead = 48

type item struct {
	key, value []byte
}

func less(a, b item) bool { return bytes.Compare(a.key, b.key) < 0 }

// Backend is the in-memory engine. Create it with New.
type Backend struct {
	mu      sync.RWMutex // guards tree, logical, closed
	tree    *btree.BTreeG[item]
	logical int64
	closed  bool
}

var _ backend.Backend = (*Backend)(nil)

// New returns an empty in-memory backend.
func New() *Backend {
	return &Backend{tree: newTree()}
}

func newTree() *btree.BTreeG[item] {
	return btree.NewBTreeGOptions(less, btree.Options{NoLocks: true})
}

// Get implements backend.Reader.
func (b *Backend) Get(key []byte) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, backend.ErrClosed
	}
	return get(b.tree, key)
}

func get(tr *btree.BTreeG[item], key []byte) ([]byte, error) {
	it, ok := tr.Get(item{key: key})
	if !ok {
		return nil, backend.ErrNotFound
	}
	return bytes.Clone(it.value), nil
}

// copyTree returns a shadow copy of the current tree, or nil when closed.
// IsoCopy mutates the source's copy-on-write marker, hence the write lock.
func (b *Backend) copyTree() *btree.BTreeG[item] {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	return b.tree.IsoCopy()
}

// NewIterator implements backend.Reader.
func (b *Backend) NewIterator(opts backend.IterOptions) backend.Iterator {
	tr := b.copyTree()
	if tr == nil {
		return &iterator{err: backend.ErrClosed}
	}
	return newIterator(tr, opts)
}

// NewSnapshot implements backend.Backend.
func (b *Backend) NewSnapshot() (backend.Snapshot, error) {
	tr := b.copyTree()
	if tr == nil {
		return nil, backend.ErrClosed
	}
	return &snapshot{tree: tr}, nil
}

// NewBatch implements backend.Backend.
func (b *Backend) NewBatch() backend.Batch {
	return &batch{b: b}
}

// Sync implements backend.Backend; memory is never durable, so it only
// checks that the backend is open.
func (b *Backend) Sync() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return backend.ErrClosed
	}
	return nil
}

// Compact implements backend.Backend. The B-tree frees deleted entries
// eagerly, so there is nothing to reclaim.
func (b *Backend) Compact(start, end []byte) error { return b.Sync() }

// Sizes implements backend.Backend. Physical adds an estimate of per-entry
// overhead to the logical size.
func (b *Backend) Sizes() (backend.Sizes, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return backend.Sizes{}, backend.ErrClosed
	}
	return backend.Sizes{
		Logical:  b.logical,
		Physical: b.logical + int64(b.tree.Len())*itemOverhead,
	}, nil
}

// Close implements backend.Backend and drops all data.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return backend.ErrClosed
	}
	b.closed = true
	b.tree = nil
	return nil
}

type snapshot struct {
	mu   sync.Mutex
	tree *btree.BTreeG[item]
}

func (s *snapshot) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tree == nil {
		return nil, backend.ErrClosed
	}
	return get(s.tree, key)
}

func (s *snapshot) NewIterator(opts backend.IterOptions) backend.Iterator {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tree == nil {
		return &iterator{err: backend.ErrClosed}
	}
	// Iterators over a shared snapshot each get their own shadow copy so
	// that concurrent iteration needs no locking.
	return newIterator(s.tree.IsoCopy(), opts)
}

func (s *snapshot) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tree == nil {
		return backend.ErrClosed
	}
	s.tree = nil
	return nil
}

type opKind uint8

const (
	opSet opKind = iota
	opDelete
	opDeleteRange
)

type op struct {
	kind       opKind
	key, value []byte // value is the end key for opDeleteRange
}

type batch struct {
	b    *Backend
	ops  []op
	size int
	done bool
}

func (w *batch) add(o op) {
	if w.done {
		return
	}
	w.ops = append(w.ops, o)
	w.size += len(o.key) + len(o.value)
}

func (w *batch) Set(key, value []byte) {
	w.add(op{kind: opSet, key: bytes.Clone(key), value: bytes.Clone(value)})
}

func (w *batch) Delete(key []byte) { w.add(op{kind: opDelete, key: bytes.Clone(key)}) }

func (w *batch) DeleteRange(start, end []byte) {
	w.add(op{kind: opDeleteRange, key: bytes.Clone(start), value: bytes.Clone(end)})
}

func (w *batch) Count() int { return len(w.ops) }
func (w *batch) Size() int  { return w.size }

func (w *batch) Close() { w.done, w.ops = true, nil }

func (w *batch) Commit(sync bool) error {
	if w.done {
		return backend.ErrBatchCommitted
	}
	defer w.Close()
	b := w.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return backend.ErrClosed
	}
	for _, o := range w.ops {
		switch o.kind {
		case opSet:
			if old, ok := b.tree.Set(item{key: o.key, value: o.value}); ok {
				b.logical -= int64(len(old.key) + len(old.value))
			}
			b.logical += int64(len(o.key) + len(o.value))
		case opDelete:
			b.deleteKey(o.key)
		case opDeleteRange:
			b.deleteRange(o.key, o.value)
		}
	}
	return nil
}

func (b *Backend) deleteKey(key []byte) {
	if old, ok := b.tree.Delete(item{key: key}); ok {
		b.logical -= int64(len(old.key) + len(old.value))
	}
}

func (b *Backend) deleteRange(start, end []byte) {
	if bytes.Compare(start, end) >= 0 {
		return
	}
	var doomed [][]byte
	b.tree.Ascend(item{key: start}, func(it item) bool {
		if bytes.Compare(it.key, end) >= 0 {
			return false
		}
		doomed = append(doomed, it.key)
		return true
	})
	for _, k := range doomed {
		b.deleteKey(k)
	}
}
