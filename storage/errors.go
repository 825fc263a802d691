package storage

import "errors"

// Sentinel errors. Match them with errors.Is. The messages of ErrCompacted
// and ErrFutureRev are etcd's mvcc messages; the service layer maps them to
// the matching rpctypes errors.
var (
	// ErrCompacted is returned for a revision below the compaction point.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev is returned for a revision above the current revision.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	// ErrEmptyKey is returned when a key is required but empty.
	ErrEmptyKey = errors.New("storage: key is not provided")
	// ErrKeyTooLarge is returned for a key longer than Config.MaxKeyBytes.
	ErrKeyTooLarge = errors.New("storage: key is too large")
	// ErrValueTooLarge is returned for a value longer than Config.MaxValueBytes.
	ErrValueTooLarge = errors.New("storage: value is too large")
	// ErrClosed is returned by every call on a closed store or transaction.
	ErrClosed = errors.New("storage: store is closed")
	// ErrTxnDone is returned when a transaction is used after End or Abort.
	ErrTxnDone = errors.New("storage: transaction already ended")
	// ErrCorrupt is returned when the engine holds data this package did not
	// write, or a snapshot stream fails its checksum.
	ErrCorrupt = errors.New("storage: data is corrupt")
	// ErrIncompleteRestore is returned by Open when a Restore was
	// interrupted; restore the snapshot again.
	ErrIncompleteRestore = errors.New("storage: an interrupted restore left the store incomplete")
	// ErrWatcherDuplicateID is returned when a watch ID is already in use on
	// the stream. Its text is etcd's: it reaches clients as a cancel reason.
	ErrWatcherDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	// ErrEmptyWatcherRange is returned for a watch range with end <= key,
	// and for a watch on a closed stream. Its text is etcd's.
	ErrEmptyWatcherRange = errors.New("mvcc: watcher range is empty")
	// ErrWatcherNotExist is returned when cancelling an unknown watch ID.
	ErrWatcherNotExist = errors.New("mvcc: watcher does not exist")
)
