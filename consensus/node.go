package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus/internal/failpoint"
	"github.com/metastore/metastore/consensus/wal"
)

// idLen is the length of the proposal ID prefixed to every payload this
// node proposes: the proposing node's ID and a counter.
const idLen = 16

// EntryPayload returns what the state machine applies for a normal entry:
// its data without the proposal ID this package prefixes (etcd's WAL holds
// the request alone), or nil for an entry without a payload (a term's
// empty entry). Tools that convert a WAL use it.
func EntryPayload(e *raftpb.Entry) []byte {
	if e.GetType() != raftpb.EntryNormal || len(e.GetData()) < idLen {
		return nil
	}
	return e.GetData()[idLen:]
}

// Node is a running Raft member. Its methods are safe for concurrent use.
type Node[R any] struct {
	cfg Config
	lg  *zap.Logger
	id  uint64

	rn      raft.Node
	storage *raft.MemoryStorage
	wal     *wal.WAL
	snaps   *snapshotter
	sm      StateMachine[R]
	tr      Transport

	lead    atomic.Uint64
	term    atomic.Uint64
	removed atomic.Bool
	// removedc is closed when this member learns it was removed.
	removedc    chan struct{}
	removedOnce sync.Once
	// leadTerm and leadStart: the last term this node led and the index of
	// the first entry it appended in it (the term's empty entry). A
	// linearizable read on the leader waits for leadStart to be applied:
	// raft answers a single member's ReadIndex with its commit index even
	// before it committed an entry of its term, and after a restart that
	// index (from the hard state) can be below entries it had applied and
	// acknowledged before the crash. leadTerm is the Ready loop's;
	// leadStart is read by readers.
	leadTerm  uint64
	leadStart atomic.Uint64
	// termStarted is the last term whose start TermStarted was told
	// (raft also turns a refused conf change proposal into an empty entry).
	termStarted uint64
	// afterAdvance are the membership-change proposers to answer once
	// Raft has been told of the change (Advance), so that their next
	// change is not refused as pending.
	afterAdvance []func()
	readyN       atomic.Uint64 // Ready batches handled
	leaderN      atomic.Uint64 // leader changes seen (to a leader, not to none)
	// hb and heartbeatsLate: heartbeats sent late (Ready loop only).
	hb             heartbeatWatch
	heartbeatsLate atomic.Uint64
	entriesN       atomic.Uint64 // entries appended to the log
	committed      atomic.Uint64 // proposals of this node applied

	// smApplied is the state machine's applied index at start: entries up
	// to it are replayed to Raft (membership) but not to the state machine.
	// Only whoever applies reads it: the apply loop, or the Ready loop
	// after draining it.
	smApplied uint64

	// applyc hands committed entries from the Ready loop to the apply
	// loop, in order; a job with done set is a barrier.
	applyc chan applyJob

	mu        sync.Mutex // guards the fields below
	applied   uint64
	appliedCh chan struct{} // closed and replaced when applied moves
	leadCh    chan struct{} // closed and replaced when the leader changes
	confState *raftpb.ConfState
	// appliedCS is the configuration as of applied (confState runs one
	// entry ahead while a conf change is applied): what a live snapshot's
	// metadata says.
	appliedCS  *raftpb.ConfState
	snapIndex  uint64
	waiters    map[uint64]chan R
	ccWaiters  map[uint64]chan error
	nextPropID uint64

	read readBatcher

	stopc chan struct{}
	donec chan struct{}
	// durableIdx is the last index the state machine reported durable
	// (live snapshots); durableLoop refreshes it when durableKick fires.
	durableIdx  atomic.Uint64
	durableKick chan struct{}
	// failErr is why the node stopped on its own (see Err).
	failErr atomic.Pointer[error]
	wg      sync.WaitGroup
	once    sync.Once
}

// Start opens (or creates) the node's log in cfg.Dir, restores the state
// machine from the latest snapshot if it is behind, and starts the node.
func Start[R any](cfg Config, sm StateMachine[R], tr Transport) (*Node[R], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	lg := cfg.Logger.With(zap.String("member-id", fmt.Sprintf("%x", cfg.ID)))
	w, st, err := wal.Open(filepath.Join(cfg.Dir, "wal"), wal.Options{Logger: lg, SegmentBytes: cfg.WALSegmentBytes, SyncObserver: cfg.WALSyncObserver, WriteObserver: cfg.WALWriteObserver})
	if err != nil {
		return nil, err
	}
	n := &Node[R]{
		cfg: cfg, lg: lg, id: cfg.ID, hb: newHeartbeatWatch(cfg),
		storage:    raft.NewMemoryStorage(),
		appliedCS:  &raftpb.ConfState{},
		wal:        w,
		snaps:      &snapshotter{dir: filepath.Join(cfg.Dir, "snap")},
		sm:         sm,
		tr:         tr,
		appliedCh:  make(chan struct{}),
		leadCh:     make(chan struct{}),
		confState:  &raftpb.ConfState{},
		waiters:    map[uint64]chan R{},
		ccWaiters:  map[uint64]chan error{},
		removedc:   make(chan struct{}),
		nextPropID: uint64(time.Now().UnixNano()),
		stopc:      make(chan struct{}),
		donec:      make(chan struct{}),
		applyc:     make(chan applyJob, applyQueue),
	}
	n.read.init()
	fresh := st.Snapshot.GetIndex() == 0 && len(st.Entries) == 0 && raft.IsEmptyHardState(st.HardState)
	if err := n.restore(st); err != nil {
		w.Close()
		return nil, err
	}
	if cfg.ForceNewCluster && !fresh {
		if err := n.forceNewCluster(); err != nil {
			w.Close()
			return nil, err
		}
	}
	var rs raft.Storage = n.storage
	if n.live() {
		rs = liveStorage[R]{n.storage, n}
	}
	rc := &raft.Config{
		ID:              cfg.ID,
		ElectionTick:    cfg.ElectionTicks,
		HeartbeatTick:   cfg.HeartbeatTicks,
		Storage:         rs,
		Applied:         n.applied,
		MaxSizePerMsg:   cfg.MaxSizePerMsg,
		MaxInflightMsgs: cfg.MaxInflightMsgs,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          newRaftLogger(lg),
		// Membership changes are checked by the caller (etcd's
		// --strict-reconfig-check); raft's own check stays on.
		MaxUncommittedEntriesSize: 1 << 30,
		StepDownOnRemoval:         true,
	}
	switch {
	case fresh && !cfg.Join:
		if len(cfg.Peers) == 0 {
			w.Close()
			return nil, errors.New("consensus: a new cluster needs Peers (or Join)")
		}
		peers := make([]raft.Peer, len(cfg.Peers))
		for i, p := range cfg.Peers {
			peers[i] = raft.Peer{ID: p.ID, Context: p.Context}
			if pm, ok := tr.(PeerManager); ok && p.ID != cfg.ID {
				pm.AddPeer(p.ID, p.Context)
			}
		}
		n.rn = raft.StartNode(rc, peers)
	default:
		n.rn = raft.RestartNode(rc)
	}
	lg.Info("starting raft node", zap.Uint64("raft-index", n.applied), zap.Bool("fresh", fresh))
	n.wg.Add(3)
	go n.run()
	go n.applyLoop()
	go n.readLoop()
	if n.live() {
		// What the state machine recovered is on disk already.
		n.durableIdx.Store(sm.AppliedIndex())
		n.durableKick = make(chan struct{}, 1)
		n.wg.Add(1)
		go n.durableLoop()
	}
	return n, nil
}

// restore loads the WAL state into memory storage and brings the state
// machine up to the latest snapshot if it is behind it.
func (n *Node[R]) restore(st *wal.State) error {
	// fromData: the state machine holds the snapshot's data as restored.
	fromData := false
	if m := st.Snapshot; m.GetIndex() > 0 {
		snap, err := n.snaps.loadMeta(m.GetTerm(), m.GetIndex())
		if err != nil {
			return fmt.Errorf("consensus: snapshot %d named by the wal: %w", m.GetIndex(), err)
		}
		if err := n.storage.ApplySnapshot(snap); err != nil {
			return err
		}
		n.confState = proto.Clone(m.GetConfState()).(*raftpb.ConfState)
		n.appliedCS = proto.Clone(m.GetConfState()).(*raftpb.ConfState)
		n.snapIndex = m.GetIndex()
		if n.sm.AppliedIndex() < m.GetIndex() {
			if err := n.restoreStateMachine(m.GetTerm(), m.GetIndex()); err != nil {
				return err
			}
			fromData = true
		}
	}
	if !raft.IsEmptyHardState(st.HardState) {
		if err := n.storage.SetHardState(st.HardState); err != nil {
			return err
		}
	}
	if err := n.storage.Append(st.Entries); err != nil {
		return err
	}
	// Raft replays every committed entry after the snapshot: membership
	// changes must reach Raft again even if a durable state machine already
	// holds their effects. smApplied tells the apply loop which entries the
	// state machine must not see twice.
	n.applied = n.snapIndex
	n.smApplied = max(n.sm.AppliedIndex(), n.snapIndex)
	// The state machine may be ahead of the hard state's commit index (a
	// commit-only hard state is not fsynced, as Raft allows), but never
	// ahead of the log: entries are durable before they are applied.
	last := n.snapIndex
	if k := len(st.Entries); k > 0 {
		last = st.Entries[k-1].GetIndex()
	}
	// One exception: a live snapshot's data is the leader's state as it
	// was streamed, at the snapshot's index or later, and a member that
	// installed one and stopped before the entries up to it arrived holds
	// a state ahead of its log. Restoring the snapshot's data again tells
	// the two apart: the state machine is then where the data puts it, and
	// nothing it held beyond that was lost (nothing is applied after an
	// install before its entries are in the log).
	if m := st.Snapshot; n.smApplied > last && m.GetIndex() > 0 && !fromData {
		ahead := n.smApplied
		if err := n.restoreStateMachine(m.GetTerm(), m.GetIndex()); err != nil {
			return err
		}
		fromData = true
		n.smApplied = max(n.sm.AppliedIndex(), n.snapIndex)
		if ahead > n.smApplied {
			return fmt.Errorf("consensus: state machine applied %d but the log ends at %d and its snapshot's data at %d", ahead, last, n.smApplied)
		}
		n.lg.Info("state machine ahead of the log by its snapshot's data, restored from it",
			zap.Uint64("applied", n.smApplied), zap.Uint64("log-last-index", last), zap.Uint64("snapshot-index", m.GetIndex()))
	}
	if n.smApplied > last && !fromData {
		return fmt.Errorf("consensus: state machine applied %d but the log ends at %d", n.smApplied, last)
	}
	return nil
}

// restoreStateMachine streams the snapshot data at (term, index) from disk
// into the state machine.
func (n *Node[R]) restoreStateMachine(term, index uint64) error {
	r, err := n.snaps.openData(term, index)
	if err != nil {
		return fmt.Errorf("consensus: snapshot data %d: %w", index, err)
	}
	defer r.Close()
	if err := n.sm.Restore(index, term, r); err != nil {
		return fmt.Errorf("consensus: restore state machine: %w", err)
	}
	return nil
}

// OpenSnapshot opens the data of the snapshot at (term, index) so a
// transport can stream it to a peer. The caller closes it. With a
// LiveSnapshotter it streams the state machine's current state instead.
func (n *Node[R]) OpenSnapshot(term, index uint64) (io.ReadCloser, error) {
	if !n.live() {
		return n.snaps.openData(term, index)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(n.sm.SnapshotTo(pw)) }()
	return pr, nil
}

// liveStorage is Raft's storage for a LiveSnapshotter: the snapshot Raft
// sends a peer that needs one carries the metadata of the state as
// applied now — its index and configuration — since the state streamed
// (OpenSnapshot) is the current one, at that index or later. The last
// saved snapshot's configuration may lack the very member being sent to
// (a learner added after it), which Raft on that member refuses.
type liveStorage[R any] struct {
	*raft.MemoryStorage
	n *Node[R]
}

// Snapshot implements raft.Storage.
func (s liveStorage[R]) Snapshot() (*raftpb.Snapshot, error) {
	base, err := s.MemoryStorage.Snapshot()
	if err != nil {
		return base, err
	}
	s.n.mu.Lock()
	idx := s.n.applied
	cs := proto.Clone(s.n.appliedCS).(*raftpb.ConfState)
	s.n.mu.Unlock()
	if idx <= base.GetMetadata().GetIndex() {
		return base, nil
	}
	term, err := s.MemoryStorage.Term(idx)
	if err != nil {
		return base, nil
	}
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(idx), Term: proto.Uint64(term), ConfState: cs}}, nil
}

// live reports whether the state machine snapshots itself (LiveSnapshotter).
// durableLoop asks the state machine how far its state is durable —
// for MetaStore's store a memtable flush, which can take a while — off the
// Ready goroutine, so heartbeats and fsyncs never wait behind it. Log
// truncation uses the last answer and simply waits for a newer one.
func (n *Node[R]) durableLoop() {
	defer n.wg.Done()
	d := n.sm.(DurableIndexer)
	for {
		select {
		case <-n.stopc:
			return
		case <-n.durableKick:
		}
		idx := d.DurableIndex()
		for {
			old := n.durableIdx.Load()
			if idx <= old || n.durableIdx.CompareAndSwap(old, idx) {
				break
			}
		}
	}
}

// kickDurable asks durableLoop for a fresh durable index, without waiting.
func (n *Node[R]) kickDurable() {
	select {
	case n.durableKick <- struct{}{}:
	default:
	}
}

func (n *Node[R]) live() bool {
	ls, ok := n.sm.(LiveSnapshotter)
	return ok && ls.LiveSnapshots()
}

// ReceiveSnapshot stores the data of an incoming snapshot, streamed from r,
// durably on disk, then hands m (a MsgSnap carrying only metadata) to Raft.
func (n *Node[R]) ReceiveSnapshot(ctx context.Context, m *raftpb.Message, r io.Reader) error {
	if n.removed.Load() {
		return ErrRemoved
	}
	md := m.GetSnapshot().GetMetadata()
	if m.GetType() != raftpb.MsgSnap || md == nil {
		return errors.New("consensus: ReceiveSnapshot needs a MsgSnap")
	}
	if err := n.snaps.saveData(md.GetTerm(), md.GetIndex(), func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	}); err != nil {
		return err
	}
	failpoint.Eval(fpSnapshotAfterReceive)
	return n.rn.Step(ctx, m)
}

// Stop stops the node and closes its log. Pending requests fail with
// ErrStopped.
func (n *Node[R]) Stop() {
	n.once.Do(func() {
		close(n.stopc)
		n.rn.Stop()
		n.wg.Wait()
		if err := n.wal.Close(); err != nil {
			n.lg.Warn("failed to close wal", zap.Error(err))
		}
		close(n.donec)
	})
}

// Done is closed once the node has stopped.
func (n *Node[R]) Done() <-chan struct{} { return n.donec }

// Err returns why the node stopped on its own (an *ApplyError, or a
// failure to persist), or nil if it runs or Stop stopped it.
func (n *Node[R]) Err() error {
	if e := n.failErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Removed is closed once this member knows it was removed from the
// cluster: it applied its own removal, or a peer refused it as removed.
// A removed member serves nothing more; its owner should stop it.
func (n *Node[R]) Removed() <-chan struct{} { return n.removedc }

// markRemoved records that this member was removed (by names who said so:
// this node's own log, or a peer).
func (n *Node[R]) markRemoved(by uint64) {
	n.removedOnce.Do(func() {
		n.removed.Store(true)
		n.lg.Warn("the member has been permanently removed from the cluster", zap.String("reported-by", toHex(by)))
		close(n.removedc)
	})
}

// ReportRemoved implements RemovalReporter: a peer refused this member
// because the cluster removed it.
func (n *Node[R]) ReportRemoved(by uint64) { n.markRemoved(by) }

// fail stops the node because it cannot go on: it logs err once, with the
// index of the entry it could not apply, and stops in the background (fail
// is called from the node's own goroutines, which Stop waits for).
func (n *Node[R]) fail(err error) {
	if !n.failErr.CompareAndSwap(nil, &err) {
		return
	}
	var ae *ApplyError
	if errors.As(err, &ae) {
		n.lg.Error("cannot apply committed entry; stopping this member (it applies nothing after it, and replays it on restart)",
			zap.Uint64("raft-index", ae.Index), zap.Error(ae.Err))
	} else {
		n.lg.Error("failed to persist raft state; stopping this member", zap.Error(err))
	}
	go n.Stop()
}

// ID returns this node's Raft ID.
func (n *Node[R]) ID() uint64 { return n.id }

// Leader returns the current leader's ID, 0 if none is known.
func (n *Node[R]) Leader() uint64 { return n.lead.Load() }

// Term returns the current term.
func (n *Node[R]) Term() uint64 { return n.term.Load() }

// Tick advances the logical clock by one tick (for Config.TickInterval < 0).
func (n *Node[R]) Tick() { n.rn.Tick() }

// Campaign makes this node start an election now.
func (n *Node[R]) Campaign(ctx context.Context) error { return n.rn.Campaign(ctx) }

// Step hands a message received from a peer to Raft.
func (n *Node[R]) Step(ctx context.Context, m *raftpb.Message) error {
	if n.removed.Load() {
		return ErrRemoved
	}
	return n.rn.Step(ctx, m)
}

// ReportUnreachable tells Raft that a peer could not be reached.
func (n *Node[R]) ReportUnreachable(id uint64) { n.rn.ReportUnreachable(id) }

// ReportSnapshot tells Raft whether a snapshot reached a peer.
func (n *Node[R]) ReportSnapshot(id uint64, ok bool) {
	status := raft.SnapshotFinish
	if !ok {
		status = raft.SnapshotFailure
	}
	n.rn.ReportSnapshot(id, status)
}

// AppliedIndex returns the index of the last applied entry.
func (n *Node[R]) AppliedIndex() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.applied
}

// WaitApplied waits until the entry at index is applied.
func (n *Node[R]) WaitApplied(ctx context.Context, index uint64) error {
	for {
		n.mu.Lock()
		applied, ch := n.applied, n.appliedCh
		n.mu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stopc:
			return ErrStopped
		}
	}
}

// Propose replicates data and returns the result of applying it, once it
// is committed and applied here. It fails fast with ErrNoLeader when no
// leader is known; with ctx's error, ErrTimeout or ErrTimeoutLeaderFail
// when it did not complete in time.
func (n *Node[R]) Propose(ctx context.Context, data []byte) (R, error) {
	var zero R
	if n.removed.Load() {
		return zero, ErrRemoved
	}
	if n.lead.Load() == raft.None {
		return zero, ErrNoLeader
	}
	id, ch := n.register()
	buf := make([]byte, idLen, idLen+len(data))
	binary.BigEndian.PutUint64(buf, n.id)
	binary.BigEndian.PutUint64(buf[8:], id)
	buf = append(buf, data...)
	startTerm, startLead := n.term.Load(), n.lead.Load()
	if err := n.rn.Propose(ctx, buf); err != nil {
		n.unregister(id)
		return zero, n.mapErr(ctx, err, startTerm, startLead)
	}
	select {
	case res := <-ch:
		n.committed.Add(1)
		return res, nil
	case <-ctx.Done():
		n.unregister(id)
		return zero, n.mapErr(ctx, ctx.Err(), startTerm, startLead)
	case <-n.stopc:
		n.unregister(id)
		return zero, ErrStopped
	}
}

// mapErr turns a failed wait into the error etcd would report.
func (n *Node[R]) mapErr(ctx context.Context, err error, term, lead uint64) error {
	switch {
	case errors.Is(err, raft.ErrStopped):
		return ErrStopped
	case errors.Is(err, raft.ErrProposalDropped):
		if n.lead.Load() == raft.None {
			return ErrNoLeader
		}
		return ErrTimeoutLeaderFail
	case errors.Is(err, context.DeadlineExceeded):
		if n.term.Load() != term || n.lead.Load() != lead {
			return ErrTimeoutLeaderFail
		}
		return ErrTimeout
	}
	return err
}

func (n *Node[R]) register() (uint64, chan R) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nextPropID++
	ch := make(chan R, 1)
	n.waiters[n.nextPropID] = ch
	return n.nextPropID, ch
}

func (n *Node[R]) unregister(id uint64) {
	n.mu.Lock()
	delete(n.waiters, id)
	n.mu.Unlock()
}

func (n *Node[R]) trigger(id uint64, res R) {
	n.mu.Lock()
	ch, ok := n.waiters[id]
	delete(n.waiters, id)
	n.mu.Unlock()
	if ok {
		ch <- res
	}
}

// ProposeConfChange proposes a membership change and waits until it is
// applied here and Raft knows of it. context in the change is opaque
// member data. A change the state machine refused (ConfChangeValidator)
// returns the refusal. Raft drops a change proposed while another is
// pending: it then fails when ctx ends, as etcd's does.
func (n *Node[R]) ProposeConfChange(ctx context.Context, cc raftpb.ConfChangeI) error {
	if n.removed.Load() {
		return ErrRemoved
	}
	if n.lead.Load() == raft.None {
		return ErrNoLeader
	}
	v2 := proto.Clone(cc.AsV2()).(*raftpb.ConfChangeV2)
	n.mu.Lock()
	n.nextPropID++
	id := n.nextPropID
	ch := make(chan error, 1)
	n.ccWaiters[id] = ch
	n.mu.Unlock()
	drop := func() {
		n.mu.Lock()
		delete(n.ccWaiters, id)
		n.mu.Unlock()
	}
	tag := make([]byte, idLen, idLen+len(v2.Context))
	binary.BigEndian.PutUint64(tag, n.id)
	binary.BigEndian.PutUint64(tag[8:], id)
	v2.Context = append(tag, v2.Context...)
	startTerm, startLead := n.term.Load(), n.lead.Load()
	if err := n.rn.ProposeConfChange(ctx, v2); err != nil {
		drop()
		return n.mapErr(ctx, err, startTerm, startLead)
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		drop()
		return n.mapErr(ctx, ctx.Err(), startTerm, startLead)
	case <-n.stopc:
		drop()
		return ErrStopped
	}
}

// triggerConfChange answers the proposer of a membership change (after
// the Ready that applied it is advanced).
func (n *Node[R]) triggerConfChange(id uint64, err error) {
	n.mu.Lock()
	ch, ok := n.ccWaiters[id]
	delete(n.ccWaiters, id)
	n.mu.Unlock()
	if ok {
		ch <- err
	}
}

// learnerReadyPercent is how much of the leader's log a learner must hold
// before it can be promoted (etcd's readyPercentThreshold).
const learnerReadyPercent = 0.9

// LearnerReady reports whether learner id may be promoted: its match must
// reach 90% of the leader's, as etcd requires. Only the leader can judge
// that: elsewhere it returns ErrNotLeader.
func (n *Node[R]) LearnerReady(id uint64) error {
	st := n.rn.Status()
	if st.RaftState != raft.StateLeader {
		return ErrNotLeader
	}
	pr, ok := st.Progress[id]
	if !ok || !pr.IsLearner {
		return ErrMemberNotLearner
	}
	if float64(pr.Match) < float64(st.Progress[n.id].Match)*learnerReadyPercent {
		return ErrLearnerNotReady
	}
	return nil
}

// PromoteLearner turns learner id into a voter once it has caught up
// (LearnerReady); context is the change's member data.
func (n *Node[R]) PromoteLearner(ctx context.Context, id uint64, context []byte) error {
	if err := n.LearnerReady(id); err != nil {
		return err
	}
	return n.ProposeConfChange(ctx, &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(id)},
	}, Context: context})
}

// TransferLeadership asks the current leader to hand leadership to
// transferee and waits until it has it.
func (n *Node[R]) TransferLeadership(ctx context.Context, transferee uint64) error {
	if n.lead.Load() == raft.None {
		return ErrNoLeader
	}
	for {
		n.mu.Lock()
		ch := n.leadCh
		n.mu.Unlock()
		lead := n.lead.Load()
		if lead == transferee {
			return nil
		}
		if lead != raft.None {
			// Repeated while the transfer is pending: raft ignores a
			// duplicate, and a lost request is retried.
			n.rn.TransferLeadership(ctx, lead, transferee)
		}
		select {
		case <-ch:
		case <-time.After(n.cfg.TickInterval * time.Duration(n.cfg.ElectionTicks)):
		case <-ctx.Done():
			return n.mapErr(ctx, ctx.Err(), 0, 0)
		case <-n.stopc:
			return ErrStopped
		}
	}
}

// PeerStatus is the leader's view of one peer's replication.
type PeerStatus struct {
	Match, Next  uint64
	State        string
	IsLearner    bool
	RecentActive bool
}

// Status is a snapshot of the node's Raft state.
type Status struct {
	ID, Lead, Term, Vote, Commit, Applied uint64
	RaftState                             string
	IsLearner                             bool
	Voters, Learners                      []uint64
	// Progress is only filled on the leader.
	Progress map[uint64]PeerStatus
	// ReadyBatches, LogEntries, Fsyncs and ProposalsApplied are counters
	// since start: Fsyncs/ReadyBatches shows group commit at work.
	ReadyBatches, LogEntries, Fsyncs, ProposalsApplied uint64
	// ReadRounds counts ReadIndex rounds; ReadIndex calls share them.
	ReadRounds uint64
	// LeaderChanges counts the changes to a new leader this node saw
	// (etcd's etcd_server_leader_changes_seen_total).
	LeaderChanges uint64
	// HeartbeatsLate counts the heartbeats this node, as leader, sent
	// more than two heartbeat intervals after the previous one to the
	// same peer (etcd's etcd_server_heartbeat_send_failures_total).
	HeartbeatsLate uint64
}

// Status returns the node's current state.
func (n *Node[R]) Status() Status {
	rs := n.rn.Status()
	n.mu.Lock()
	cs := proto.Clone(n.confState).(*raftpb.ConfState)
	applied := n.applied
	n.mu.Unlock()
	s := Status{
		ID: rs.ID, Lead: rs.Lead, Term: rs.HardState.GetTerm(), Vote: rs.HardState.GetVote(),
		Commit: rs.HardState.GetCommit(), Applied: applied, RaftState: rs.RaftState.String(),
		Voters: cs.GetVoters(), Learners: cs.GetLearners(),
		ReadyBatches: n.readyN.Load(), LogEntries: n.entriesN.Load(), Fsyncs: n.wal.Syncs(),
		ProposalsApplied: n.committed.Load(), ReadRounds: n.read.rounds.Load(),
		LeaderChanges: n.leaderN.Load(), HeartbeatsLate: n.heartbeatsLate.Load(),
	}
	for _, l := range cs.GetLearners() {
		if l == n.id {
			s.IsLearner = true
		}
	}
	if len(rs.Progress) > 0 {
		s.Progress = map[uint64]PeerStatus{}
		for id, pr := range rs.Progress {
			s.Progress[id] = PeerStatus{Match: pr.Match, Next: pr.Next, State: pr.State.String(), IsLearner: pr.IsLearner, RecentActive: pr.RecentActive}
		}
	}
	return s
}
