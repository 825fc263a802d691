package server

import (
	"context"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/services/rpcerr"
)

// Members implements cluster.MemberSource: the static initial cluster.
func (s *Server) Members(ctx context.Context, linearizable bool) ([]*pb.Member, error) {
	if linearizable {
		ctx, cancel := requestCtx(ctx)
		defer cancel()
		if _, err := s.node.ReadIndex(ctx); err != nil {
			return nil, rpcerr.ToGRPC(s.lg, err)
		}
	}
	return s.members.List(), nil
}

// publish puts this member's name and client URLs into the replicated
// member table (etcd's ClusterMemberAttrSet), retrying until it lands.
func (s *Server) publish(ctx context.Context) {
	defer s.wg.Done()
	urls := strings.Split(s.cfg.AdvertiseClientURLs, ",")
	req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID: s.id, MemberAttributes: &membershippb.Attributes{Name: s.cfg.Name, ClientUrls: urls},
	}}
	select {
	case <-s.readyc:
	case <-ctx.Done():
		return
	}
	for !s.members.Published(s.id, urls) {
		pctx, cancel := context.WithTimeout(ctx, requestTimeout(s.cfg))
		_, err := s.propose(pctx, req)
		cancel()
		if err == nil {
			s.lg.Info("published local member to cluster through raft", zap.Strings("client-urls", urls))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
