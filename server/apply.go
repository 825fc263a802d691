package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

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
type stateMachine struct{ s *Server }

func (sm *stateMachine) store() *storage.Store { return sm.s.store.Load() }

// AppliedIndex implements consensus.StateMachine.
func (sm *stateMachine) AppliedIndex() uint64 { return sm.store().ConsistentIndex().Index }

// DurableIndex implements consensus.DurableIndexer: the store runs without
// fsyncs, so sync it and report what that covered.
func (sm *stateMachine) DurableIndex() uint64 {
	st := sm.store()
	ci := st.ConsistentIndex().Index
	if err := st.Sync(); err != nil {
		return 0
	}
	return ci
}

// LiveSnapshots implements consensus.LiveSnapshotter: the store is the
// snapshot. Raft snapshots are metadata only, and a follower that needs
// one gets the store's current state streamed (as etcd sends its backend),
// instead of the node copying the whole store to disk every
// --snapshot-count entries.
func (sm *stateMachine) LiveSnapshots() bool { return true }

// Apply implements consensus.StateMachine.
func (sm *stateMachine) Apply(index, term uint64, data []byte) any {
	var r pb.InternalRaftRequest
	if err := proto.Unmarshal(data, &r); err != nil {
		sm.recordIndex(index, term)
		return &applyResult{err: fmt.Errorf("decode raft request: %w", err)}
	}
	ci := storage.ConsistentIndex{Index: index, Term: term}
	st := sm.store()
	if c := r.GetCompaction(); c != nil {
		done, err := st.Compact(c.Revision)
		sm.recordIndex(index, term)
		return &applyResult{resp: &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: st.Rev()}}, err: err, compacted: done}
	}
	tw, err := st.Write()
	if err != nil {
		return &applyResult{err: err}
	}
	a := sm.s.kvApplier
	le := sm.s.lessor
	var resp proto.Message
	switch {
	case sm.s.cappedByAlarm(&r):
		err = rpctypes.ErrGRPCNoSpace
	case r.GetAlarm() != nil:
		resp = sm.s.alarms.Apply(tw, r.GetAlarm())
	case r.GetClusterMemberAttrSet() != nil:
		sm.s.members.ApplyAttrSet(tw, r.GetClusterMemberAttrSet())
	case r.GetLeaseGrant() != nil:
		resp, err = le.Grant(tw, r.GetLeaseGrant().ID, r.GetLeaseGrant().TTL)
	case r.GetLeaseRevoke() != nil:
		resp, err = le.Revoke(tw, r.GetLeaseRevoke().ID)
	case r.GetLeaseCheckpoint() != nil:
		resp, err = le.Checkpoint(tw, r.GetLeaseCheckpoint().Checkpoints)
	case r.GetPut() != nil:
		resp, err = a.Put(tw, r.GetPut())
	case r.GetDeleteRange() != nil:
		resp, err = a.DeleteRange(tw, r.GetDeleteRange())
	case r.GetTxn() != nil:
		resp, err = a.Txn(tw, r.GetTxn())
	default:
		err = errors.New("unsupported raft request")
	}
	if err != nil {
		// Nothing of a failed request is applied, but its index is.
		tw.Abort()
		sm.recordIndex(index, term)
		return &applyResult{err: err}
	}
	tw.SetConsistentIndex(ci)
	rev, err := tw.End()
	if err != nil {
		return &applyResult{err: err}
	}
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
	return &applyResult{resp: resp}
}

// recordIndex advances the consistent index without other changes.
func (sm *stateMachine) recordIndex(index, term uint64) {
	if tw, err := sm.store().Write(); err == nil {
		tw.SetConsistentIndex(storage.ConsistentIndex{Index: index, Term: term})
		_, _ = tw.End()
	}
}

// ApplyConfChange implements consensus.StateMachine.
func (sm *stateMachine) ApplyConfChange(index, term uint64, _ *raftpb.ConfChangeV2, _ *raftpb.ConfState) {
	sm.recordIndex(index, term)
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
	_, err = snap.WriteTo(w)
	return err
}

// Restore implements consensus.StateMachine: the store is replaced by the
// snapshot's content.
func (sm *stateMachine) Restore(index, term uint64, r io.Reader) error {
	s := sm.s
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
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
	return s.alarms.Recover(st)
}

// propose puts r through Raft and returns what applying it produced.
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (*applyResult, error) {
	r.Header = &pb.RequestHeader{ID: s.nextID.Add(1)}
	data, err := proto.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(data) > int(s.cfg.MaxRequestBytes) {
		return nil, rpctypes.ErrGRPCRequestTooLarge // as etcd: the whole Raft request counts
	}
	ctx, cancel := requestCtx(ctx)
	defer cancel()
	res, err := s.node.Propose(ctx, data)
	if err != nil {
		return nil, err
	}
	ar := res.(*applyResult)
	return ar, ar.err
}

// kvBackend implements kv.Backend: reads locally, writes through Raft.
type kvBackend struct{ s *Server }

func (b *kvBackend) propose(ctx context.Context, r *pb.InternalRaftRequest) (*applyResult, error) {
	return b.s.propose(ctx, r)
}

// read runs f on the local store, after a ReadIndex round unless the
// request is serializable.
func (b *kvBackend) read(ctx context.Context, serializable bool, f func(*storage.ReadTxn) error) error {
	if !serializable {
		ctx, cancel := requestCtx(ctx)
		defer cancel()
		if _, err := b.s.node.ReadIndex(ctx); err != nil {
			return err
		}
	}
	rd, err := b.s.store.Load().Read()
	if err != nil {
		return err
	}
	defer rd.End()
	return f(rd)
}

func (b *kvBackend) View(ctx context.Context, serializable bool, f func(kv.RangeReader) error) error {
	return b.read(ctx, serializable, func(rd *storage.ReadTxn) error { return f(rd) })
}

func (b *kvBackend) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	var resp *pb.RangeResponse
	err := b.read(ctx, r.Serializable, func(rd *storage.ReadTxn) error {
		var err error
		resp, err = kv.Range(rd, r, true)
		return err
	})
	return resp, err
}

func (b *kvBackend) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := b.s.checkQuota(ctx, costPut(r)); err != nil {
		return nil, err
	}
	ar, err := b.propose(ctx, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	return ar.resp.(*pb.PutResponse), nil
}

func (b *kvBackend) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	ar, err := b.propose(ctx, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	return ar.resp.(*pb.DeleteRangeResponse), nil
}

func (b *kvBackend) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if kv.IsTxnReadOnly(r) {
		// As etcd: no Raft entry, a ReadIndex round unless serializable.
		var resp *pb.TxnResponse
		err := b.read(ctx, kv.IsTxnSerializable(r), func(rd *storage.ReadTxn) error {
			var err error
			resp, err = kv.ReadOnlyTxn(rd, rd.Rev(), r)
			return err
		})
		return resp, err
	}
	if err := b.s.checkQuota(ctx, costTxn(r)); err != nil {
		return nil, err
	}
	ar, err := b.propose(ctx, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	return ar.resp.(*pb.TxnResponse), nil
}

func (b *kvBackend) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	ar, err := b.propose(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	if r.Physical && ar.compacted != nil {
		select {
		case <-ar.compacted:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return ar.resp.(*pb.CompactionResponse), nil
}
