package consensus

// The failpoints of this package: code points where a build with the
// failpoints tag (make build-failpoints, bin/metastore-failpoints) can be
// told to panic, sleep or print through gofail's GOFAIL_FAILPOINTS or
// GOFAIL_HTTP, as etcd's robustness suite does with etcd's. In the normal
// build failpoint is empty and compiles away.
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
)

var failpointNames = []string{fpRaftBeforeSave, fpRaftAfterSave, fpRaftBeforeApplySnap, fpRaftAfterApplySnap}
