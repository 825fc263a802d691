package cluster

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// MemberSource lists the cluster's members; a linearizable listing first
// waits until this member has applied everything committed (ReadIndex).
type MemberSource interface {
	Members(ctx context.Context, linearizable bool) ([]*pb.Member, error)
}

// HeaderFiller fills the cluster ID, member ID and Raft term of a header.
type HeaderFiller interface {
	FillHeader(h *pb.ResponseHeader)
}

// Server is the gRPC Cluster service.
type Server struct {
	pb.UnimplementedClusterServer
	src MemberSource
	hdr HeaderFiller
}

var _ pb.ClusterServer = (*Server)(nil)

// NewServer returns the Cluster service.
func NewServer(src MemberSource, hdr HeaderFiller) *Server { return &Server{src: src, hdr: hdr} }

// MemberList implements pb.ClusterServer from the replicated member table
// (linearizable when the request asks, as etcd 3.5+).
func (s *Server) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	ms, err := s.src.Members(ctx, r.Linearizable)
	if err != nil {
		return nil, err
	}
	resp := &pb.MemberListResponse{Header: &pb.ResponseHeader{}, Members: ms}
	s.hdr.FillHeader(resp.Header)
	return resp, nil
}
