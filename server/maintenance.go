package server

import (
	"context"

	gosemver "github.com/coreos/go-semver/semver"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"

	"github.com/metastore/metastore/services/maintenance"
	"github.com/metastore/metastore/services/rpcerr"
	"github.com/metastore/metastore/storage"
)

// Status implements maintenance.StatusSource.
func (s *Server) Status(ctx context.Context) (*pb.StatusResponse, error) {
	st := s.node.Status()
	dg := s.downgrades.Info()
	sizes, err := s.store.Load().Sizes()
	if err != nil {
		return nil, err
	}
	return &pb.StatusResponse{
		Header:           &pb.ResponseHeader{Revision: s.store.Load().Rev()},
		Version:          s.cfg.EmulatedEtcdVersion,
		DbSize:           sizes.Physical,
		DbSizeInUse:      sizes.Logical,
		Leader:           st.Lead,
		RaftIndex:        st.Commit,
		RaftTerm:         st.Term,
		RaftAppliedIndex: st.Applied,
		StorageVersion:   s.cfg.clusterVersion(),
		IsLearner:        st.IsLearner,
		DbSizeQuota:      max(s.quotaBytes(), 0),
		Errors:           s.statusErrors(st.Lead),
		DowngradeInfo:    &pb.DowngradeInfo{Enabled: dg.Enabled, TargetVersion: dg.TargetVersion},
	}, nil
}

// Downgrade implements maintenance.Downgrader: etcd's rules over the
// replicated downgrade state, against the cluster version MetaStore
// emulates.
func (s *Server) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return maintenance.Downgrade(ctx, downgradeHost{s}, r)
}

type downgradeHost struct{ s *Server }

func (h downgradeHost) ClusterVersion() *gosemver.Version {
	return gosemver.Must(gosemver.NewVersion(h.s.cfg.clusterVersion()))
}

func (h downgradeHost) ReadIndex(ctx context.Context) error {
	ctx, cancel := h.s.requestCtx(ctx)
	defer cancel()
	_, err := h.s.readIndex(ctx)
	return err
}

func (h downgradeHost) DowngradeInfo() maintenance.DowngradeInfo { return h.s.downgrades.Info() }

func (h downgradeHost) ProposeDowngrade(ctx context.Context, r *membershippb.DowngradeInfoSetRequest) error {
	_, err := h.s.propose(ctx, &pb.InternalRaftRequest{DowngradeInfoSet: r})
	return err
}

func (s *Server) statusErrors(lead uint64) []string {
	var errs []string
	if lead == 0 {
		errs = append(errs, rpctypes.ErrGRPCNoLeader.Error())
	}
	for _, a := range s.alarms.Get(pb.AlarmType_NONE) {
		errs = append(errs, a.String())
	}
	return errs
}

// HashKV implements maintenance.Hasher.
func (s *Server) HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error) {
	st := s.store.Load()
	h, err := timed(s.inst.hashRev, func() (storage.KVHash, error) { return st.HashKV(rev) })
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	return &pb.HashKVResponse{
		Header:          &pb.ResponseHeader{Revision: st.Rev()},
		Hash:            h.Hash,
		CompactRevision: h.CompactRev,
		HashRevision:    h.HashRev,
	}, nil
}

// Alarm implements maintenance.Alarmer.
func (s *Server) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	ar, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: r})
	if err != nil {
		return nil, err
	}
	resp, _ := ar.resp.(*pb.AlarmResponse)
	if resp == nil {
		resp = &pb.AlarmResponse{Header: &pb.ResponseHeader{}}
	}
	resp.Header.Revision = s.store.Load().Rev()
	return resp, nil
}

// Defragment implements maintenance.Defragmenter: a full engine compaction
// of this member's store. Unlike etcd's defrag it does not block writes.
func (s *Server) Defragment(ctx context.Context) error {
	s.lg.Info("defragmenting", zap.Int64("current-db-size-bytes", s.dbSize()))
	s.inst.defragInflight.Add(1)
	_, err := timed(s.inst.defrag, func() (struct{}, error) { return struct{}{}, s.store.Load().Defragment() })
	s.inst.defragInflight.Add(-1)
	if err != nil {
		return rpcerr.ToGRPC(s.lg, err)
	}
	s.sizes.at.Store(0) // measure again
	s.lg.Info("defragmented", zap.Int64("current-db-size-bytes", s.dbSize()))
	return nil
}

// Hash implements maintenance.Backend.
func (s *Server) Hash(ctx context.Context) (*pb.HashResponse, error) {
	var rev int64
	h, err := timed(s.inst.hash, func() (uint32, error) {
		h, r, err := s.store.Load().Hash()
		rev = r
		return h, err
	})
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	return &pb.HashResponse{Header: &pb.ResponseHeader{Revision: rev}, Hash: h}, nil
}

// MoveLeader implements maintenance.Backend as etcd: only the leader may,
// the target must be a voting member, and a transfer that does not finish
// in time is ErrGRPCTimeoutLeaderTransfer.
func (s *Server) MoveLeader(ctx context.Context, target uint64) error {
	if !s.leading() {
		return rpctypes.ErrGRPCNotLeader
	}
	voter := false
	for _, id := range s.node.Status().Voters {
		voter = voter || id == target
	}
	if !voter {
		return rpctypes.ErrGRPCBadLeaderTransferee
	}
	ctx, cancel := s.requestCtx(ctx)
	defer cancel()
	if err := s.node.TransferLeadership(ctx, target); err != nil {
		if ctx.Err() != nil {
			return rpcerr.ErrGRPCTimeoutLeaderTransfer
		}
		return rpcerr.ToGRPC(s.lg, err)
	}
	return nil
}
