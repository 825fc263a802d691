package consensus

import (
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus/internal/failpoint"
)

// run is the Ready loop; see the package documentation for its steps.
func (n *Node[R]) run() {
	defer n.wg.Done()
	var tick <-chan time.Time
	if n.cfg.TickInterval > 0 {
		t := time.NewTicker(n.cfg.TickInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-n.stopc:
			return
		case <-tick:
			n.rn.Tick()
		case rd := <-n.rn.Ready():
			if err := n.handle(rd); err != nil {
				if n.stopping() {
					return // Stop is under way: nothing failed
				}
				// A node that cannot persist or apply must not keep voting
				// or acking.
				n.fail(err)
				return
			}
			n.rn.Advance()
			for _, f := range n.afterAdvance {
				f()
			}
			n.afterAdvance = n.afterAdvance[:0]
		}
	}
}

// handle processes one Ready. The only fsync is the WAL Sync in step 2.
func (n *Node[R]) handle(rd raft.Ready) error {
	n.readyN.Add(1)
	if rd.SoftState != nil {
		n.setLeader(rd.SoftState.Lead)
	}
	if rd.HardState != nil {
		n.term.Store(rd.HardState.GetTerm())
	}
	if len(rd.ReadStates) > 0 {
		n.read.deliver(rd.ReadStates)
	}
	if n.lead.Load() == n.id {
		for _, e := range rd.Entries {
			if t := e.GetTerm(); t > n.leadTerm {
				n.leadTerm = t
				n.leadStart.Store(e.GetIndex())
			}
		}
	}
	// A leader may send its appends while it persists the same entries
	// (Raft thesis §10.2.1): its own fsync then overlaps the followers'.
	// Its hard state was made durable by earlier Readys. Everyone else
	// persists first.
	leaderSent := false
	if n.lead.Load() == n.id && rd.SoftState == nil {
		n.send(rd.Messages)
		leaderSent = true
	}
	snap := rd.Snapshot
	hasSnap := snap != nil && !raft.IsEmptySnap(snap)
	if hasSnap {
		// The snapshot replaces the state machine: everything queued
		// before it is applied first.
		if err := n.drainApply(); err != nil {
			return err
		}
		// The data arrived through ReceiveSnapshot and is on disk already.
		if err := n.snaps.saveMeta(snap); err != nil {
			return err
		}
		if err := n.wal.SaveSnapshot(snap.GetMetadata()); err != nil {
			return err
		}
	}
	failpoint.Eval(fpRaftBeforeSave)
	if err := n.wal.Save(rd.HardState, rd.Entries); err != nil {
		return err
	}
	if rd.MustSync || hasSnap {
		if err := n.wal.Sync(); err != nil {
			return err
		}
	}
	failpoint.Eval(fpRaftAfterSave)
	if hasSnap {
		failpoint.Eval(fpRaftBeforeApplySnap)
		if err := n.applySnapshot(snap); err != nil {
			return err
		}
		failpoint.Eval(fpRaftAfterApplySnap)
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return err
	}
	n.entriesN.Add(uint64(len(rd.Entries)))
	if !leaderSent {
		n.send(rd.Messages)
	}
	if err := n.queueApply(rd.CommittedEntries); err != nil {
		return err
	}
	return n.maybeSnapshot()
}

// applyQueue is how many Readys' committed entries may wait for the apply
// loop before the Ready loop waits for it (back-pressure).
const applyQueue = 64

// applyJob is one Ready's committed entries, or a barrier (done set).
type applyJob struct {
	ents []*raftpb.Entry
	done chan error
}

// queueApply hands committed entries to the apply loop, so the next Ready
// is persisted and replicated while these are applied (as etcd's apply
// runs beside its Raft loop). Membership changes are applied here, after
// everything queued before them: Raft must know the new configuration
// before this Ready is advanced.
func (n *Node[R]) queueApply(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	for _, e := range ents {
		if t := e.GetType(); t == raftpb.EntryConfChange || t == raftpb.EntryConfChangeV2 {
			if err := n.drainApply(); err != nil {
				return err
			}
			return n.apply(ents)
		}
	}
	select {
	case n.applyc <- applyJob{ents: ents}:
		return nil
	case <-n.stopc:
		return ErrStopped
	}
}

// stopping reports whether Stop has begun.
func (n *Node[R]) stopping() bool {
	select {
	case <-n.stopc:
		return true
	default:
		return false
	}
}

// drainApply waits until the apply loop applied everything queued.
func (n *Node[R]) drainApply() error {
	done := make(chan error, 1)
	select {
	case n.applyc <- applyJob{done: done}:
	case <-n.stopc:
		return ErrStopped
	}
	select {
	case err := <-done:
		return err
	case <-n.stopc:
		return ErrStopped
	}
}

// applyLoop applies queued committed entries in order. An error stops the
// node: a state machine that cannot apply must not fall silently behind.
func (n *Node[R]) applyLoop() {
	defer n.wg.Done()
	var failed error
	for {
		select {
		case <-n.stopc:
			return
		case job := <-n.applyc:
			if job.done != nil {
				job.done <- failed
				continue
			}
			if failed != nil {
				continue
			}
			if err := n.apply(job.ents); err != nil {
				failed = err
				if errors.Is(err, ErrStopped) && n.stopping() {
					continue // Stop is under way: nothing failed
				}
				n.fail(err)
			}
		}
	}
}

func (n *Node[R]) setLeader(lead uint64) {
	if n.lead.Swap(lead) == lead {
		return
	}
	if lead != 0 {
		n.leaderN.Add(1)
	}
	n.hb.reset()
	n.lg.Info("leader changed", zap.String("leader", toHex(lead)))
	n.mu.Lock()
	close(n.leadCh)
	n.leadCh = make(chan struct{})
	n.mu.Unlock()
	n.read.leaderChanged()
}

func (n *Node[R]) send(msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	if n.removed.Load() {
		return
	}
	now := time.Now()
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgHeartbeat {
			n.heartbeatSent(m.GetTo(), now)
		}
	}
	n.tr.Send(msgs)
	if r, ok := n.tr.(SnapshotReporter); ok && r.ReportsSnapshots() {
		return
	}
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			n.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
		}
	}
}

// applySnapshot installs a snapshot received from the leader.
func (n *Node[R]) applySnapshot(snap *raftpb.Snapshot) error {
	m := snap.GetMetadata()
	if err := n.storage.ApplySnapshot(snap); err != nil {
		return err
	}
	if err := n.restoreStateMachine(m.GetTerm(), m.GetIndex()); err != nil {
		return err
	}
	// A live snapshot may cover entries after its index: the state
	// machine must not see those again.
	n.smApplied = max(n.smApplied, n.sm.AppliedIndex(), m.GetIndex())
	n.mu.Lock()
	n.confState = proto.Clone(m.GetConfState()).(*raftpb.ConfState)
	n.appliedCS = proto.Clone(m.GetConfState()).(*raftpb.ConfState)
	n.snapIndex = m.GetIndex()
	n.mu.Unlock()
	n.setApplied(m.GetIndex())
	n.lg.Info("applied snapshot", zap.Uint64("raft-index", m.GetIndex()), zap.Uint64("raft-term", m.GetTerm()))
	return nil
}

func (n *Node[R]) setApplied(index uint64) {
	n.mu.Lock()
	n.advanceApplied(index)
	n.mu.Unlock()
}

// advanceApplied moves applied to index; n.mu is held.
func (n *Node[R]) advanceApplied(index uint64) {
	if index > n.applied {
		n.applied = index
		close(n.appliedCh)
		n.appliedCh = make(chan struct{})
	}
}

// apply hands committed entries to the state machine in order.
func (n *Node[R]) apply(ents []*raftpb.Entry) error {
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= n.AppliedIndex() {
			continue
		}
		replayed := idx <= n.smApplied // the state machine already holds it
		switch e.GetType() {
		case raftpb.EntryNormal:
			if replayed {
				break
			}
			data := e.GetData()
			if len(data) < idLen {
				// The leader's empty entry at the start of a term (or a
				// conf change raft refused as pending, which is empty too:
				// only a term's first counts).
				if e.GetTerm() <= n.termStarted {
					break
				}
				n.termStarted = e.GetTerm()
				if ts, ok := n.sm.(TermStarter); ok {
					ts.TermStarted(idx, e.GetTerm(), n.lead.Load() == n.id && n.term.Load() == e.GetTerm())
				}
				break
			}
			res, err := n.sm.Apply(idx, e.GetTerm(), data[idLen:])
			if err != nil {
				return &ApplyError{Index: idx, Err: err}
			}
			if binary.BigEndian.Uint64(data) == n.id {
				n.trigger(binary.BigEndian.Uint64(data[8:]), res)
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			if err := n.applyConfChange(e, replayed); err != nil {
				return err
			}
			// The index and its configuration move together (liveStorage).
			n.mu.Lock()
			n.appliedCS = proto.Clone(n.confState).(*raftpb.ConfState)
			n.advanceApplied(idx)
			n.mu.Unlock()
			continue
		}
		n.setApplied(idx)
	}
	return nil
}

// applyConfChange applies a membership change to Raft and the transport,
// and to the state machine unless it is a replay of one it already holds.
func (n *Node[R]) applyConfChange(e *raftpb.Entry, replayed bool) error {
	var cc raftpb.ConfChangeI
	if e.GetType() == raftpb.EntryConfChange {
		v1 := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), v1); err != nil {
			return err
		}
		cc = v1
	} else {
		v2 := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), v2); err != nil {
			return err
		}
		cc = v2
	}
	v2 := proto.Clone(cc.AsV2()).(*raftpb.ConfChangeV2)
	var proposer, propID uint64
	if ctx := v2.GetContext(); len(ctx) >= idLen && e.GetType() == raftpb.EntryConfChangeV2 {
		proposer, propID = binary.BigEndian.Uint64(ctx), binary.BigEndian.Uint64(ctx[8:])
		v2.Context = ctx[idLen:]
	}
	var refusal error
	if v, ok := n.sm.(ConfChangeValidator); ok {
		refusal = v.ValidateConfChange(e.GetIndex(), v2)
	}
	if refusal != nil {
		// Raft ignores changes of node 0 (etcd's raft.None), so the
		// entry's configuration is the one before it.
		n.lg.Info("refused a membership change", zap.Uint64("raft-index", e.GetIndex()), zap.Error(refusal))
		v2 = &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(0)}}}
		cc = v2
	}
	cs := n.rn.ApplyConfChange(cc)
	n.mu.Lock()
	n.confState = proto.Clone(cs).(*raftpb.ConfState)
	n.mu.Unlock()
	for _, ch := range v2.GetChanges() {
		id := ch.GetNodeId()
		if id == 0 {
			continue
		}
		switch ch.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			if pm, ok := n.tr.(PeerManager); ok && id != n.id {
				pm.AddPeer(id, v2.GetContext())
			}
		case raftpb.ConfChangeUpdateNode:
			if pm, ok := n.tr.(PeerManager); ok && id != n.id {
				pm.UpdatePeer(id, v2.GetContext())
			}
		case raftpb.ConfChangeRemoveNode:
			if id == n.id {
				n.markRemoved(n.id)
			} else if pm, ok := n.tr.(PeerManager); ok {
				pm.RemovePeer(id)
			}
		}
	}
	if !replayed {
		if err := n.sm.ApplyConfChange(e.GetIndex(), e.GetTerm(), v2, cs); err != nil {
			return &ApplyError{Index: e.GetIndex(), Err: err}
		}
	}
	if proposer == n.id {
		n.afterAdvance = append(n.afterAdvance, func() { n.triggerConfChange(propID, refusal) })
	}
	return nil
}

// maybeSnapshot snapshots the state machine and compacts the log every
// SnapshotCount applied entries, keeping SnapshotCatchUpEntries and never
// compacting past what the state machine has made durable.
func (n *Node[R]) maybeSnapshot() error {
	n.mu.Lock()
	applied, snapIndex := n.applied, n.snapIndex
	cs := proto.Clone(n.confState).(*raftpb.ConfState)
	n.mu.Unlock()
	if applied-snapIndex < n.cfg.SnapshotCount {
		return nil
	}
	if !n.live() {
		// The state machine's snapshot is taken as of applied; raft's
		// snapshot index must match it, so the apply loop is drained and
		// stays idle (the Ready loop feeds it) until the snapshot is saved.
		if err := n.drainApply(); err != nil {
			return err
		}
		n.mu.Lock()
		applied = n.applied
		n.mu.Unlock()
	}
	durable := applied
	if n.live() {
		// The flush runs in durableLoop; use what it last reported.
		n.kickDurable()
		durable = min(durable, n.durableIdx.Load())
	} else if d, ok := n.sm.(DurableIndexer); ok {
		durable = min(durable, d.DurableIndex())
	}
	if durable <= snapIndex {
		return nil
	}
	if n.live() {
		// Metadata only, at the durable index: after a restart the state
		// machine is at or past it, and peers get the live state.
		applied = durable
	}
	term, err := n.storage.Term(applied)
	if err != nil {
		return err
	}
	if !n.live() {
		// Raft keeps only the metadata; the data streams to disk.
		if err := n.snaps.saveData(term, applied, n.sm.SnapshotTo); err != nil {
			return err
		}
	}
	snap, err := n.storage.CreateSnapshot(applied, cs, nil)
	if err != nil {
		return err
	}
	if err := n.snaps.saveMeta(snap); err != nil {
		return err
	}
	if err := n.wal.SaveSnapshot(snap.GetMetadata()); err != nil {
		return err
	}
	if err := n.wal.Sync(); err != nil {
		return err
	}
	n.mu.Lock()
	n.snapIndex = applied
	n.mu.Unlock()
	compactTo := uint64(1)
	if durable > n.cfg.SnapshotCatchUpEntries {
		compactTo = durable - n.cfg.SnapshotCatchUpEntries
	}
	if compactTo > 1 {
		if err := n.storage.Compact(compactTo); err != nil && err != raft.ErrCompacted {
			return err
		}
	}
	if err := n.wal.ReleaseTo(min(compactTo, applied)); err != nil {
		return err
	}
	n.lg.Info("saved snapshot and compacted log", zap.Uint64("raft-index", applied), zap.Uint64("compact-index", compactTo))
	return nil
}

func toHex(id uint64) string { return strconv.FormatUint(id, 16) }
