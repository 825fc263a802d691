package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
)

// Quota as etcd computes it (server/storage/quota.go): a write is refused
// when the database size plus the write's cost reaches the quota.
const (
	defaultQuotaBytes = 2 << 30 // etcd's default, 2 GiB
	kvOverhead        = 256
	leaseOverhead     = 64
)

func costPut(r *pb.PutRequest) int64 { return kvOverhead + int64(len(r.Key)+len(r.Value)) }

func costTxn(r *pb.TxnRequest) int64 {
	branch := func(ops []*pb.RequestOp) int64 {
		var n int64
		for _, op := range ops {
			if p := op.GetRequestPut(); p != nil {
				n += costPut(p)
			} else if t := op.GetRequestTxn(); t != nil {
				n += costTxn(t)
			}
		}
		return n
	}
	return max(branch(r.Success), branch(r.Failure))
}

// quotaBytes is the configured quota; < 0 disables it, as in etcd.
func (s *Server) quotaBytes() int64 {
	if s.cfg.QuotaBackendBytes == 0 {
		return defaultQuotaBytes
	}
	return s.cfg.QuotaBackendBytes
}

// sizeCache keeps the database size for a short while: measuring it walks
// the engine's files. Every write reads it, so reads are lock-free and one
// caller at a time refreshes it.
type sizeCache struct {
	refresh  sync.Mutex
	physical atomic.Int64
	at       atomic.Int64 // unix nanoseconds of the measurement; 0: never
}

const sizeCacheTTL = 100 * time.Millisecond

// dbSize returns the physical database size, at most sizeCacheTTL old
// (or older while another caller is measuring it).
func (s *Server) dbSize() int64 {
	c := &s.sizes
	if time.Now().UnixNano()-c.at.Load() > int64(sizeCacheTTL) && c.refresh.TryLock() {
		if sz, err := s.store.Load().Sizes(); err == nil {
			c.physical.Store(sz.Physical)
			c.at.Store(time.Now().UnixNano())
		}
		c.refresh.Unlock()
	}
	return c.physical.Load()
}

// checkQuota refuses a write of the given cost that would take the
// database to its quota, raising the NOSPACE alarm (through Raft) so the
// whole cluster goes read-only, as etcd does.
func (s *Server) checkQuota(ctx context.Context, cost int64) error {
	q := s.quotaBytes()
	if cost == 0 || q < 0 || s.dbSize()+cost < q {
		return nil
	}
	if !s.alarms.Active(pb.AlarmType_NOSPACE) {
		req := &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: s.id, Alarm: pb.AlarmType_NOSPACE}
		if _, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: req}); err != nil {
			s.lg.Warn("failed to raise the NOSPACE alarm", zap.Error(err))
		}
	}
	return rpctypes.ErrGRPCNoSpace
}

// cappedByAlarm reports whether r is a write refused while NOSPACE is
// raised (etcd's applierV3Capped): puts, txns with puts, lease grants.
// Deletes, compactions and revokes still pass, so space can be freed.
func (s *Server) cappedByAlarm(r *pb.InternalRaftRequest) bool {
	if !s.alarms.Active(pb.AlarmType_NOSPACE) {
		return false
	}
	return r.Put != nil || r.LeaseGrant != nil || (r.Txn != nil && costTxn(r.Txn) > 0)
}
