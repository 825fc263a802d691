package consensus

import (
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// StateMachine is what the node applies committed entries to. The node
// calls it from one goroutine, in log order.
type StateMachine[R any] interface {
	// AppliedIndex returns the index of the last entry whose effects the
	// state machine holds (after a restart: what it recovered). The node
	// replays the log from there.
	AppliedIndex() uint64
	// Apply applies one committed proposal payload at index and returns
	// the result handed to its proposer (if it was proposed here). A
	// request the state machine refuses (bad input, a quota) is a result,
	// not an error. An error means the state machine could not apply the
	// entry at all (a storage failure): the node stops at once, before it
	// applies anything after index, and the entry's proposer gets
	// ErrStopped, never a success. On restart the log is replayed from
	// AppliedIndex, so the entry is applied again.
	Apply(index, term uint64, data []byte) (R, error)
	// ApplyConfChange records a committed membership change; state is the
	// configuration after it. An error stops the node as for Apply.
	ApplyConfChange(index, term uint64, cc *raftpb.ConfChangeV2, state *raftpb.ConfState) error
	// SnapshotTo writes the state as of AppliedIndex to w. Snapshots can be
	// large: write them as a stream, never building them in memory.
	SnapshotTo(w io.Writer) error
	// Restore replaces the state with the snapshot taken at index, read
	// from r as a stream.
	Restore(index, term uint64, r io.Reader) error
}

// ConfChangeValidator is an optional StateMachine ability: it decides
// whether a committed membership change takes effect, as etcd validates
// them against its member table at apply time. A refused change is
// applied to Raft as an empty change (its node ID replaced by 0), the
// state machine's ApplyConfChange sees that empty change, and the
// proposer gets the refusal. The answer must be the same on every member
// and for every replay: for an index at or below AppliedIndex the state
// machine answers what it decided when it first applied it.
type ConfChangeValidator interface {
	ValidateConfChange(index uint64, cc *raftpb.ConfChangeV2) error
}

// DurableIndexer is an optional StateMachine ability: the index up to which
// applied state survives a crash. Log compaction never passes it. State
// machines without it are treated as durable up to AppliedIndex.
type DurableIndexer interface {
	DurableIndex() uint64
}

// LiveSnapshotter is an optional StateMachine ability, for state machines
// whose durable state is itself the snapshot (a database that survives
// restarts and reports its applied index), as etcd's backend is. The node
// then takes snapshots as metadata only — at the state machine's durable
// index, so no data file is ever needed to restart — and when a peer needs
// one it streams the state machine's current state (SnapshotTo, at an
// applied index at or after the snapshot's) straight to the wire. Restore
// must leave AppliedIndex at the index the streamed state covers; entries
// up to it are then not applied again. Without it every snapshot copies
// the whole state to disk.
type LiveSnapshotter interface {
	DurableIndexer
	LiveSnapshots() bool
}

// TermStarter is an optional StateMachine ability: it is told when the
// empty entry a leader appends at the start of its term is applied, and
// whether this node leads that term. On the leader that means every entry
// of the previous terms is applied too (etcd promotes its lessor there).
type TermStarter interface {
	TermStarted(index, term uint64, leading bool)
}

// Transport carries Raft messages to peers. Send must not block on the
// network; a message that cannot be delivered may be dropped (Raft
// retries). Received messages are handed to Node.Step.
type Transport interface {
	Send(msgs []*raftpb.Message)
}

// PeerManager is an optional Transport ability told about membership
// changes (context is the member's Peer.Context).
type PeerManager interface {
	AddPeer(id uint64, context []byte)
	// UpdatePeer replaces the context (addresses) of a known peer.
	UpdatePeer(id uint64, context []byte)
	RemovePeer(id uint64)
}

// RemovalReporter is an optional Transport handler ability: a transport
// whose peers refuse this member because it was removed from the cluster
// says so (etcd's peers answer such a member 410 Gone).
type RemovalReporter interface {
	ReportRemoved(by uint64)
}

// SnapshotReporter is an optional Transport ability: transports that send
// snapshots asynchronously report the outcome with Node.ReportSnapshot
// themselves. Transports without it are assumed to deliver MsgSnap
// synchronously, and the node reports success right after Send.
type SnapshotReporter interface {
	ReportsSnapshots() bool
}
