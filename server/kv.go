package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/services/kv"
	"github.com/metastore/metastore/storage"
)

// kvBackend implements kv.Backend: reads locally, writes through Raft.
type kvBackend struct{ s *Server }

func (b *kvBackend) propose(ctx context.Context, r *pb.InternalRaftRequest) (*applyResult, error) {
	return b.s.propose(ctx, r)
}

// read runs f on the local store, after a ReadIndex round unless the
// request is serializable.
func (b *kvBackend) read(ctx context.Context, serializable bool, f func(*storage.ReadTxn) error) error {
	if !serializable {
		ctx, cancel := b.s.requestCtx(ctx)
		defer cancel()
		if _, err := b.s.readIndex(ctx); err != nil {
			return err
		}
	}
	rd, err := b.s.store.Load().Read()
	if err != nil {
		return err
	}
	b.s.inst.openReads.Add(1)
	defer b.s.inst.openReads.Add(-1)
	defer rd.End()
	return f(rd)
}

func (b *kvBackend) View(ctx context.Context, serializable bool, f func(kv.RangeReader) error) error {
	return b.read(ctx, serializable, func(rd *storage.ReadTxn) error { return f(rd) })
}

func (b *kvBackend) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	var resp *pb.RangeResponse
	t0 := time.Now()
	err := b.read(ctx, r.Serializable, func(rd *storage.ReadTxn) error {
		var err error
		resp, err = kv.Range(rd, r, true)
		return err
	})
	b.s.inst.observeRange(err == nil, time.Since(t0))
	b.s.inst.observeRequest("Range", err == nil, time.Since(t0))
	if err == nil {
		b.s.inst.countOps(resp)
	}
	return resp, err
}

func (b *kvBackend) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := b.s.checkQuota(ctx, costPut(r)); err != nil {
		return nil, err
	}
	return proposeFor[*pb.PutResponse](ctx, b.s, &pb.InternalRaftRequest{Put: r})
}

func (b *kvBackend) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return proposeFor[*pb.DeleteRangeResponse](ctx, b.s, &pb.InternalRaftRequest{DeleteRange: r})
}

func (b *kvBackend) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if kv.IsTxnReadOnly(r) {
		// As etcd: no Raft entry, a ReadIndex round unless serializable.
		var resp *pb.TxnResponse
		t0 := time.Now()
		err := b.read(ctx, kv.IsTxnSerializable(r), func(rd *storage.ReadTxn) error {
			var err error
			resp, err = kv.ReadOnlyTxn(rd, rd.Rev(), r)
			return err
		})
		b.s.inst.observeRequest("ReadonlyTxn", err == nil, time.Since(t0))
		if err == nil {
			b.s.inst.countOps(resp)
		}
		return resp, err
	}
	if err := b.s.checkQuota(ctx, costTxn(r)); err != nil {
		return nil, err
	}
	return proposeFor[*pb.TxnResponse](ctx, b.s, &pb.InternalRaftRequest{Txn: r})
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
