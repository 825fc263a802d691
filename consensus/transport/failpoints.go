package transport

import "github.com/metastore/metastore/consensus/internal/failpoint"

// The failpoints of this package (consensus/internal/failpoint).
const (
	// fpSnapshotBeforeSendChunk is on the sender, before each chunk of a
	// snapshot's data goes out (the header is sent already).
	fpSnapshotBeforeSendChunk = "snapshotBeforeSendChunk"
	// fpSnapshotBeforeReceiveChunk is on the receiver, before each chunk
	// is read off the stream: the chunks before it are being written to
	// disk, the snapshot is not complete.
	fpSnapshotBeforeReceiveChunk = "snapshotBeforeReceiveChunk"
)

func init() {
	failpoint.Register(fpSnapshotBeforeSendChunk, fpSnapshotBeforeReceiveChunk)
}
