package server

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metastore/metastore/services/auth"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus"
	clustersvc "github.com/metastore/metastore/services/cluster"
	"github.com/metastore/metastore/services/kv"
	"github.com/metastore/metastore/storage"
)

// applyResult is what the state machine returns to a proposer.
type applyResult struct {
	resp proto.Message
	err  error
	// compacted is closed when a physical compaction finishes.
	compacted <-chan struct{}
}

// stateMachine applies committed InternalRaftRequests to the store; each
// entry's effects and its index land in one storage batch.
type stateMachine struct {
	s *Server

	// The last memtable flush DurableIndex made: of which store, covering
	// which index; and the entry bytes applied since (Apply adds them).
	durableMu    sync.Mutex
	flushedStore *storage.Store
	flushedIndex uint64
	unflushed    atomic.Int64
}

// durableFlushBytes bounds the entry bytes applied since the store's last
// memtable flush that DurableIndex lets pass without another.
const durableFlushBytes = 64 << 20

// durableFlushEntries is how many entries DurableIndex lets pass between
// two memtable flushes of the store; until then it reports the last
// flush's index again, and the Raft log keeps the entries after it. At
// etcd's default --snapshot-count (10,000) and above it is five snapshot
// counts: a flush at every snapshot made L0 files of a few MiB, and with
// keys that grow (inserts) every L0 compaction rewrote each table of the
// level below, so insert throughput fell by a third over a million keys.
// durableFlushBytes and this bound keep what a restart replays, and what
// the Raft log holds in memory, small. A count below the default asks for
// frequent snapshots (tests; followers made to catch up by one): it gets
// a flush at every snapshot, as before.
func durableFlushEntries(snapshotCount uint64) uint64 {
	if snapshotCount < 10_000 {
		return snapshotCount
	}
	return 5 * snapshotCount
}

var (
	_ consensus.StateMachine[*applyResult] = (*stateMachine)(nil)
	_ consensus.LiveSnapshotter            = (*stateMachine)(nil)
	_ consensus.ConfChangeValidator        = (*stateMachine)(nil)
)

func (sm *stateMachine) store() *storage.Store { return sm.s.store.Load() }

// AppliedIndex implements consensus.StateMachine.
func (sm *stateMachine) AppliedIndex() uint64 { return sm.store().ConsistentIndex().Index }

// DurableIndex implements consensus.DurableIndexer: the store runs without
// fsyncs, so sync it and report what that covered — or, while less than
// durableFlushEntries entries and durableFlushBytes bytes were applied
// since the last sync, report that one's index again.
func (sm *stateMachine) DurableIndex() uint64 {
	sm.durableMu.Lock()
	defer sm.durableMu.Unlock()
	st := sm.store()
	ci := st.ConsistentIndex().Index
	if st == sm.flushedStore && ci >= sm.flushedIndex &&
		ci-sm.flushedIndex < durableFlushEntries(sm.s.cfg.SnapshotCount) && sm.unflushed.Load() < durableFlushBytes {
		return sm.flushedIndex
	}
	// Bytes applied from here on are not all covered by this sync: they
	// count towards the next.
	sm.unflushed.Store(0)
	if err := st.Sync(); err != nil {
		return 0
	}
	sm.flushedStore, sm.flushedIndex = st, ci
	return ci
}

// LiveSnapshots implements consensus.LiveSnapshotter: the store is the
// snapshot. Raft snapshots are metadata only, and a follower that needs
// one gets the store's current state streamed (as etcd sends its backend),
// instead of the node copying the whole store to disk every
// --snapshot-count entries.
func (sm *stateMachine) LiveSnapshots() bool { return true }

// Apply implements consensus.StateMachine. A request the services refuse
// (etcd's validation errors, NOSPACE, lease not found, a compacted
// revision) is a result for its proposer, and the entry's index is still
// recorded. A storage failure is returned as the error: the node then
// stops this member before it applies anything after index, and it
// replays the entry from its durable consistent index on restart — a
// member never skips an entry the others applied.
func (sm *stateMachine) Apply(index, term uint64, data []byte) (*applyResult, error) {
	var r pb.InternalRaftRequest
	sm.unflushed.Add(int64(len(data)))
	if err := proto.Unmarshal(data, &r); err != nil {
		// A committed entry this member cannot read: it must not skip it.
		return nil, fmt.Errorf("decode raft request: %w", err)
	}
	ci := storage.ConsistentIndex{Index: index, Term: term}
	st := sm.store()
	if c := r.GetCompaction(); c != nil {
		t0 := time.Now()
		done, err := st.Compact(c.Revision)
		sm.s.inst.observeApply(&r, err, time.Since(t0))
		if err != nil && !isRequestError(err) {
			return nil, fmt.Errorf("compact to revision %d: %w", c.Revision, err)
		}
		if rerr := sm.recordIndex(index, term); rerr != nil {
			return nil, rerr
		}
		return &applyResult{resp: &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: st.Rev()}}, err: err, compacted: done}, nil
	}
	tw, err := st.Write()
	if err != nil {
		return nil, fmt.Errorf("begin write transaction: %w", err)
	}
	t0 := time.Now()
	resp, err := sm.applyRequest(tw, &r)
	took := time.Since(t0)
	sm.s.inst.observeApply(&r, err, took)
	if took > sm.s.cfg.WarningApplyDuration {
		sm.s.warnSlowApply(took, &r, err)
	}
	if err != nil {
		// Nothing of a refused request is applied, but its index is.
		tw.Abort()
		if !isRequestError(err) {
			return nil, err
		}
		if rerr := sm.recordIndex(index, term); rerr != nil {
			return nil, rerr
		}
		return &applyResult{err: err}, nil
	}
	tw.SetConsistentIndex(ci)
	var putBytes int
	for _, ev := range tw.Changes() {
		if ev.Type == mvccpb.PUT {
			putBytes += len(ev.Kv.Key) + len(ev.Kv.Value)
		}
	}
	rev, err := sm.s.commitTimed(tw.End)
	if err != nil {
		return nil, fmt.Errorf("commit write transaction: %w", err)
	}
	sm.s.inst.countOps(resp)
	sm.s.inst.putBytes.Add(uint64(putBytes))
	switch resp := resp.(type) {
	case *pb.PutResponse:
		resp.Header.Revision = rev
	case *pb.DeleteRangeResponse:
		resp.Header.Revision = rev
	case *pb.TxnResponse:
		resp.Header.Revision = rev
	case *pb.LeaseGrantResponse:
		resp.Header.Revision = rev
	case *pb.LeaseRevokeResponse:
		resp.Header.Revision = rev
	}
	return &applyResult{resp: resp}, nil
}

// applyRequest runs one request in tw; an error is either a request error
// (isRequestError) or a storage failure.
func (sm *stateMachine) applyRequest(tw *storage.WriteTxn, r *pb.InternalRaftRequest) (proto.Message, error) {
	a := sm.s.kvApplier
	le := sm.s.lessor
	if err := sm.checkAuthAtApply(tw, r); err != nil {
		return nil, err
	}
	if resp, err, ok := sm.s.authStore.Apply(tw, r); ok {
		return resp, err
	}
	switch {
	case sm.s.corruptRefused(r):
		return nil, rpctypes.ErrGRPCCorrupt
	case sm.s.cappedByAlarm(r):
		return nil, rpctypes.ErrGRPCNoSpace
	case r.GetAlarm() != nil:
		return sm.s.alarms.Apply(tw, r.GetAlarm()), nil
	case r.GetDowngradeInfoSet() != nil:
		sm.s.downgrades.Apply(tw, r.GetDowngradeInfoSet())
		return &pb.DowngradeResponse{}, nil
	case r.GetClusterMemberAttrSet() != nil:
		return nil, sm.s.members.ApplyAttrSet(tw, r.GetClusterMemberAttrSet())
	case r.GetLeaseGrant() != nil:
		return le.Grant(tw, r.GetLeaseGrant().ID, r.GetLeaseGrant().TTL)
	case r.GetLeaseRevoke() != nil:
		return le.Revoke(tw, r.GetLeaseRevoke().ID)
	case r.GetLeaseCheckpoint() != nil:
		return le.Checkpoint(tw, r.GetLeaseCheckpoint().Checkpoints)
	case r.GetPut() != nil:
		return a.Put(tw, r.GetPut())
	case r.GetDeleteRange() != nil:
		return a.DeleteRange(tw, r.GetDeleteRange())
	case r.GetTxn() != nil:
		return a.Txn(tw, r.GetTxn())
	default:
		return nil, errUnsupportedRequest
	}
}

// errUnsupportedRequest stops a member that finds a committed request of a
// type it does not know (written by a newer version): skipping it would
// diverge from the members that apply it.
var errUnsupportedRequest = errors.New("unsupported raft request type")

// isRequestError tells a refused request — the same on every member, so
// it is the request's answer — from a failure of this member's storage.
// Refusals are etcd's gRPC errors and storage's input errors. This is not
// services/rpcerr's table: that one also maps storage.ErrClosed (to
// ErrGRPCStopped), which here means this member cannot apply at all.
func isRequestError(err error) bool {
	for _, e := range []error{storage.ErrCompacted, storage.ErrFutureRev, storage.ErrEmptyKey,
		storage.ErrKeyTooLarge, storage.ErrValueTooLarge} {
		if errors.Is(err, e) {
			return true
		}
	}
	if kv.IsRequestError(err) || errors.Is(err, auth.ErrNoPasswordUser) {
		return true
	}
	st, ok := status.FromError(err)
	return ok && st.Code() != codes.Unknown && st.Code() != codes.Internal
}

// recordIndex advances the consistent index without other changes.
func (sm *stateMachine) recordIndex(index, term uint64) error {
	tw, err := sm.store().Write()
	if err != nil {
		return fmt.Errorf("record applied index %d: %w", index, err)
	}
	tw.SetConsistentIndex(storage.ConsistentIndex{Index: index, Term: term})
	if _, err := sm.s.commitTimed(tw.End); err != nil {
		return fmt.Errorf("record applied index %d: %w", index, err)
	}
	return nil
}

// errRefusedBefore answers the replay of a membership change the table
// refused when it first applied it.
var errRefusedBefore = errors.New("membership change refused when first applied")

// ValidateConfChange implements consensus.ConfChangeValidator with
// etcd's checks against the replicated member table.
func (sm *stateMachine) ValidateConfChange(index uint64, cc *raftpb.ConfChangeV2) error {
	if index <= sm.AppliedIndex() {
		if sm.s.members.Refused(index) {
			return errRefusedBefore
		}
		return nil
	}
	for _, ch := range cc.GetChanges() {
		c, err := toChange(ch, cc.GetContext())
		if err != nil {
			return rpctypes.ErrGRPCMemberBadURLs
		}
		if err := sm.s.members.Validate(c); err != nil {
			return err
		}
	}
	return nil
}

// ApplyConfChange implements consensus.StateMachine: the member table's
// change (or the refusal, for an empty change) and the entry's index land
// in one batch.
func (sm *stateMachine) ApplyConfChange(index, term uint64, cc *raftpb.ConfChangeV2, _ *raftpb.ConfState) error {
	tw, err := sm.store().Write()
	if err != nil {
		return fmt.Errorf("apply membership change %d: %w", index, err)
	}
	refused := true
	for _, ch := range cc.GetChanges() {
		if ch.GetNodeId() == 0 {
			continue
		}
		refused = false
		c, err := toChange(ch, cc.GetContext())
		if err == nil {
			err = sm.s.members.Apply(tw, c)
		}
		if err != nil {
			tw.Abort()
			return fmt.Errorf("apply membership change %d: %w", index, err)
		}
		if c.Type == clustersvc.Remove || c.Type == clustersvc.Update {
			sm.s.dropPeerConn(c.ID)
		}
	}
	if refused {
		sm.s.members.RecordRefused(tw, index)
	}
	tw.SetConsistentIndex(storage.ConsistentIndex{Index: index, Term: term})
	if _, err := sm.s.commitTimed(tw.End); err != nil {
		return fmt.Errorf("apply membership change %d: %w", index, err)
	}
	return nil
}

// SnapshotTo implements consensus.StateMachine.
func (sm *stateMachine) SnapshotTo(w io.Writer) error {
	sm.s.restoreMu.Lock()
	defer sm.s.restoreMu.Unlock()
	snap, err := sm.store().Snapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	t0 := time.Now()
	if _, err = snap.WriteTo(w); err == nil {
		sm.s.inst.backendSnapshot.Observe(time.Since(t0).Seconds())
	}
	return err
}

// Restore implements consensus.StateMachine: the store is replaced by the
// snapshot's content.
func (sm *stateMachine) Restore(index, term uint64, r io.Reader) error {
	s := sm.s
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	s.inst.applyingSnapshot.Add(1)
	defer s.inst.applyingSnapshot.Add(-1)
	old := s.store.Load()
	if err := old.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
		return err
	}
	eng, err := s.openEngine(filepath.Join(s.cfg.DataDir, "member", "kv"))
	if err != nil {
		return err
	}
	if err := storage.Restore(eng, r); err != nil {
		eng.Close()
		return err
	}
	eng.Close()
	st, err := s.openStore()
	if err != nil {
		return err
	}
	s.store.Store(st)
	return s.recoverServices(st)
}

// recoverServices loads the service state kept beside the key space.
func (s *Server) recoverServices(st *storage.Store) error {
	if err := s.lessor.Recover(st); err != nil {
		return err
	}
	if err := s.members.Recover(st); err != nil {
		return err
	}
	if err := s.authStore.Recover(st); err != nil {
		return err
	}
	if err := s.alarms.Recover(st); err != nil {
		return err
	}
	return s.downgrades.Recover(st)
}
