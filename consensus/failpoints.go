package consensus

import "github.com/metastore/metastore/consensus/internal/failpoint"

// The failpoints of this package (consensus/internal/failpoint): code
// points where the failpoints build (bin/metastore-failpoints) can be told
// to panic or sleep through gofail's GOFAIL_FAILPOINTS or GOFAIL_HTTP.
const (
	// fpRaftBeforeSave is before a Ready's entries and hard state are
	// written to the WAL.
	fpRaftBeforeSave = "raftBeforeSave"
	// fpRaftAfterSave is after they are written and synced, before any
	// message that depends on them is sent or any entry applied.
	fpRaftAfterSave = "raftAfterSave"
	// fpRaftBeforeApplySnap and fpRaftAfterApplySnap surround the
	// installation of a snapshot received from the leader.
	fpRaftBeforeApplySnap = "raftBeforeApplySnap"
	fpRaftAfterApplySnap  = "raftAfterApplySnap"
	// fpSnapshotAfterReceive is on a follower once a snapshot received
	// from the leader is durable on disk, before Raft is told of it.
	fpSnapshotAfterReceive = "snapshotAfterReceive"
)

func init() {
	failpoint.Register(fpRaftBeforeSave, fpRaftAfterSave, fpRaftBeforeApplySnap, fpRaftAfterApplySnap, fpSnapshotAfterReceive)
}
