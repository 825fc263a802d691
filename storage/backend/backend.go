package backend

import "errors"

var (
	// ErrNotFound is returned by Reader.Get when the key does not exist.
	ErrNotFound = errors.New("backend: key not found")
	// ErrClosed is returned by every call made after Backend.Close.
	ErrClosed = errors.New("backend: closed")
	// ErrBatchCommitted is returned when a batch is used after Commit or Close.
	ErrBatchCommitted = errors.New("backend: batch already committed or closed")
)

// Reader reads an ordered key space. Readers are safe for concurrent use.
type Reader interface {
	// Get returns a copy of the value stored under key, or ErrNotFound.
	// The returned slice is owned by the caller.
	Get(key []byte) ([]byte, error)
	// NewIterator returns an iterator over keys in [opts.LowerBound,
	// opts.UpperBound). A nil bound is unbounded on that side. The iterator
	// sees a consistent view taken when it is created: writes that commit
	// afterwards are not visible to it. The caller must Close it.
	NewIterator(opts IterOptions) Iterator
}

// IterOptions bounds an iterator. Bounds are copied by NewIterator.
type IterOptions struct {
	// LowerBound is the inclusive lower bound; nil means no lower bound.
	LowerBound []byte
	// UpperBound is the exclusive upper bound; nil means no upper bound.
	UpperBound []byte
}

// Iterator walks keys in byte order in both directions. Positioning methods
// return whether the iterator is valid afterwards. An Iterator is not safe
// for concurrent use.
type Iterator interface {
	// SeekGE moves to the first key >= key.
	SeekGE(key []byte) bool
	// SeekLT moves to the last key < key.
	SeekLT(key []byte) bool
	// First moves to the first key within bounds.
	First() bool
	// Last moves to the last key within bounds.
	Last() bool
	// Next moves forward by one key.
	Next() bool
	// Prev moves backward by one key.
	Prev() bool
	// Valid reports whether the iterator is positioned at a key.
	Valid() bool
	// Key returns the current key. The slice is only valid until the next
	// positioning call or Close; copy it to keep it.
	Key() []byte
	// Value returns the current value, with the same lifetime as Key.
	Value() []byte
	// Error returns the first error the iterator met, if any.
	Error() error
	// Close releases the iterator. It returns the iterator's error, if any.
	Close() error
}

// Batch collects writes that a Backend applies atomically: after a crash
// either all of a committed batch is visible or none of it. A Batch is not
// safe for concurrent use. Keys and values are copied when added.
type Batch interface {
	// Set stores value under key.
	Set(key, value []byte)
	// Delete removes key; deleting a missing key is not an error.
	Delete(key []byte)
	// DeleteRange removes every key in [start, end).
	DeleteRange(start, end []byte)
	// Count returns the number of operations in the batch.
	Count() int
	// Size returns the approximate number of bytes the batch holds.
	Size() int
	// Commit applies the batch atomically. With sync set, it returns only
	// after the batch is durable on stable storage (fsync). A batch can be
	// committed once; Commit releases it.
	Commit(sync bool) error
	// Close releases an uncommitted batch, discarding its writes. Calling
	// Close after Commit is a no-op.
	Close()
}

// Snapshot is a consistent, read-only, point-in-time view of a Backend.
// It stays valid until Close, regardless of later writes.
type Snapshot interface {
	Reader
	// Close releases the snapshot.
	Close() error
}

// Sizes reports how much space a Backend uses.
type Sizes struct {
	// Physical is the number of bytes the backend occupies on its medium
	// (files on disk, or memory held for the in-memory engine).
	Physical int64
	// Logical is an estimate of the bytes of live keys and values.
	Logical int64
}

// Backend is an ordered byte-key store. All methods are safe for concurrent
// use. After Close every method returns ErrClosed (iterators created from
// a closed backend are invalid and report ErrClosed).
type Backend interface {
	Reader
	// NewBatch returns an empty write batch.
	NewBatch() Batch
	// NewSnapshot returns a consistent read view of the current state.
	NewSnapshot() (Snapshot, error)
	// Sync makes every batch committed so far durable. Callers that commit
	// with sync=false use it for group commit: many batches, one fsync.
	Sync() error
	// Compact asks the engine to reclaim space for keys in [start, end);
	// nil bounds are open. It is a hint that never changes visible data.
	Compact(start, end []byte) error
	// Sizes returns the current space usage.
	Sizes() (Sizes, error)
	// Close releases all resources. Snapshots and iterators must be closed
	// first.
	Close() error
}
