package storage

// The failpoints of this package (see consensus's): code points where a
// build with the failpoints tag can be told to panic or sleep through
// gofail. In the normal build failpoint is empty and compiles away.
const (
	// fpBeforeCommit and fpAfterCommit surround the commit of a write
	// transaction's batch, which carries the consistent index of the
	// entry it applies.
	fpBeforeCommit = "storageBeforeCommit"
	fpAfterCommit  = "storageAfterCommit"
	// fpCompactBeforeBatch and fpCompactAfterBatch surround the commit
	// of one batch of the background compaction.
	fpCompactBeforeBatch = "compactBeforeCommitBatch"
	fpCompactAfterBatch  = "compactAfterCommitBatch"
	// fpDefragBeforeCompact and fpDefragAfterCompact surround the
	// engine's full compaction that Defragment runs.
	fpDefragBeforeCompact = "defragBeforeCompact"
	fpDefragAfterCompact  = "defragAfterCompact"
)

var failpointNames = []string{fpBeforeCommit, fpAfterCommit, fpCompactBeforeBatch, fpCompactAfterBatch, fpDefragBeforeCompact, fpDefragAfterCompact}
