package cluster

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// MemberSource lists the cluster's members.
type MemberSource interface {
	Members() []*pb.Member
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

// MemberList implements pb.ClusterServer. Linearizable listing (etcd's
// default) is not distinguished yet: the list is this member's view.
func (s *Server) MemberList(_ context.Context, _ *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	resp := &pb.MemberListResponse{Header: &pb.ResponseHeader{}, Members: s.src.Members()}
	s.hdr.FillHeader(resp.Header)
	return resp, nil
}
