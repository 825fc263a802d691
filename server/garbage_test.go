package server_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// garbage makes random, mostly invalid requests: odd keys and ranges,
// negative and huge numbers, enum values etcd does not define, deep
// nesting.
type garbage struct{ r *rand.Rand }

func (g garbage) bytes() []byte {
	switch g.r.IntN(6) {
	case 0:
		return nil
	case 1:
		return []byte{0}
	case 2:
		return []byte{0xff, 0xff}
	}
	b := make([]byte, g.r.IntN(8))
	for i := range b {
		b[i] = byte(g.r.IntN(256))
	}
	return b
}

func (g garbage) int() int64 {
	switch g.r.IntN(6) {
	case 0:
		return 0
	case 1:
		return -1 - g.r.Int64N(100)
	case 2:
		return math.MaxInt64
	case 3:
		return math.MinInt64
	}
	return g.r.Int64N(50)
}

func (g garbage) rangeReq() *pb.RangeRequest {
	return &pb.RangeRequest{
		Key: g.bytes(), RangeEnd: g.bytes(), Limit: g.int(), Revision: g.int(),
		SortOrder: pb.RangeRequest_SortOrder(g.r.IntN(5) - 1), SortTarget: pb.RangeRequest_SortTarget(g.r.IntN(7) - 1),
		Serializable: g.r.IntN(2) == 0, KeysOnly: g.r.IntN(2) == 0, CountOnly: g.r.IntN(3) == 0,
		MinModRevision: g.int(), MaxModRevision: g.int(), MinCreateRevision: g.int(), MaxCreateRevision: g.int(),
	}
}

func (g garbage) putReq() *pb.PutRequest {
	return &pb.PutRequest{Key: g.bytes(), Value: g.bytes(), Lease: g.int(), PrevKv: g.r.IntN(2) == 0,
		IgnoreValue: g.r.IntN(4) == 0, IgnoreLease: g.r.IntN(4) == 0}
}

func (g garbage) delReq() *pb.DeleteRangeRequest {
	return &pb.DeleteRangeRequest{Key: g.bytes(), RangeEnd: g.bytes(), PrevKv: g.r.IntN(2) == 0}
}

func (g garbage) txnReq(depth int) *pb.TxnRequest {
	t := &pb.TxnRequest{}
	for range g.r.IntN(3) {
		c := &pb.Compare{Key: g.bytes(), RangeEnd: g.bytes(), Result: pb.Compare_CompareResult(g.r.IntN(6) - 1), Target: pb.Compare_CompareTarget(g.r.IntN(7) - 1)}
		switch g.r.IntN(5) {
		case 0:
			c.TargetUnion = &pb.Compare_Value{Value: g.bytes()}
		case 1:
			c.TargetUnion = &pb.Compare_Version{Version: g.int()}
		case 2:
			c.TargetUnion = &pb.Compare_ModRevision{ModRevision: g.int()}
		case 3:
			c.TargetUnion = &pb.Compare_Lease{Lease: g.int()}
		}
		t.Compare = append(t.Compare, c)
	}
	ops := func() []*pb.RequestOp {
		var out []*pb.RequestOp
		for range g.r.IntN(4) {
			op := &pb.RequestOp{}
			switch g.r.IntN(5) {
			case 0:
				op.Request = &pb.RequestOp_RequestRange{RequestRange: g.rangeReq()}
			case 1:
				op.Request = &pb.RequestOp_RequestPut{RequestPut: g.putReq()}
			case 2:
				op.Request = &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: g.delReq()}
			case 3:
				if depth < 3 {
					op.Request = &pb.RequestOp_RequestTxn{RequestTxn: g.txnReq(depth + 1)}
				}
			} // case 4: an empty op
			out = append(out, op)
		}
		return out
	}
	t.Success, t.Failure = ops(), ops()
	return t
}

// TestGarbageGetsEtcdErrors sends thousands of random requests to every
// served RPC: each answer is a success or a gRPC status with a proper
// code — never Unknown or Internal (an unmapped error or a panic) — and
// the member keeps serving afterwards, also after streams abandoned
// mid-way.
func TestGarbageGetsEtcdErrors(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	conn := c.ActiveConnection()
	kv, lease, watch, maint := pb.NewKVClient(conn), pb.NewLeaseClient(conn), pb.NewWatchClient(conn), pb.NewMaintenanceClient(conn)
	g := garbage{rand.New(rand.NewPCG(1, 2))}
	n := 3000
	if testing.Short() {
		n = 1000
	}
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			return
		}
		code := status.Code(err)
		require.NotContains(t, []codes.Code{codes.Unknown, codes.Internal}, code, "%s: %v", what, err)
	}
	for i := range n {
		timeout := 10 * time.Second
		if i%10 == 7 || i%10 == 8 {
			timeout = 300 * time.Millisecond // a stream may wait for nothing
		}
		cctx, cancel := context.WithTimeout(context.Background(), timeout)
		switch i % 10 {
		case 0, 1:
			_, err := kv.Range(cctx, g.rangeReq())
			check("range", err)
		case 2:
			_, err := kv.Put(cctx, g.putReq())
			check("put", err)
		case 3:
			_, err := kv.DeleteRange(cctx, g.delReq())
			check("delete", err)
		case 4, 5:
			_, err := kv.Txn(cctx, g.txnReq(0))
			check("txn", err)
		case 6:
			_, err := kv.Compact(cctx, &pb.CompactionRequest{Revision: g.int() % 5, Physical: g.r.IntN(2) == 0})
			check("compact", err)
		case 7:
			switch g.r.IntN(4) {
			case 0:
				_, err := lease.LeaseGrant(cctx, &pb.LeaseGrantRequest{ID: g.int(), TTL: g.int()})
				check("grant", err)
			case 1:
				_, err := lease.LeaseRevoke(cctx, &pb.LeaseRevokeRequest{ID: g.int()})
				check("revoke", err)
			case 2:
				_, err := lease.LeaseTimeToLive(cctx, &pb.LeaseTimeToLiveRequest{ID: g.int(), Keys: true})
				check("ttl", err)
			case 3:
				st, err := lease.LeaseKeepAlive(cctx)
				check("keepalive", err)
				if err == nil {
					_ = st.Send(&pb.LeaseKeepAliveRequest{ID: g.int()})
					if g.r.IntN(2) == 0 {
						_, err = st.Recv()
						check("keepalive recv", err)
					}
				}
			}
		case 8:
			st, err := watch.Watch(cctx)
			check("watch", err)
			if err == nil {
				for range g.r.IntN(4) + 1 {
					req := &pb.WatchRequest{}
					switch g.r.IntN(3) {
					case 0:
						req.RequestUnion = &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
							Key: g.bytes(), RangeEnd: g.bytes(), StartRevision: g.int(), ProgressNotify: g.r.IntN(2) == 0,
							Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_FilterType(g.r.IntN(4))},
							PrevKv:  g.r.IntN(2) == 0, WatchId: g.int(), Fragment: g.r.IntN(2) == 0,
						}}
					case 1:
						req.RequestUnion = &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: g.int()}}
					case 2:
						req.RequestUnion = &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}
					}
					_ = st.Send(req)
				}
				if g.r.IntN(2) == 0 {
					_, err := st.Recv()
					check("watch recv", err)
				}
			}
		case 9:
			_, err := maint.HashKV(cctx, &pb.HashKVRequest{Revision: g.int()})
			check("hashkv", err)
		}
		cancel() // abandons any stream mid-way
	}
	st, err := c.Status(ctx(t), ms[0].Srv.ClientAddrs()[0])
	require.NoError(t, err, "still serving")
	require.Empty(t, st.Errors)
	_, err = c.Put(ctx(t), "after", "garbage")
	require.NoError(t, err)
}
