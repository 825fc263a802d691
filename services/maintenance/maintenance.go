package maintenance

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// StatusSource reports a member's status (everything but the header's
// cluster, member and term, which HeaderFiller adds).
type StatusSource interface {
	Status(ctx context.Context) (*pb.StatusResponse, error)
}

// HeaderFiller fills the cluster ID, member ID and Raft term of a header.
type HeaderFiller interface {
	FillHeader(h *pb.ResponseHeader)
}

// Server is the gRPC Maintenance service.
type Server struct {
	pb.UnimplementedMaintenanceServer
	src StatusSource
	hdr HeaderFiller
}

var _ pb.MaintenanceServer = (*Server)(nil)

// NewServer returns the Maintenance service.
func NewServer(src StatusSource, hdr HeaderFiller) *Server { return &Server{src: src, hdr: hdr} }

// Status implements pb.MaintenanceServer.
func (s *Server) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := s.src.Status(ctx)
	if err != nil {
		return nil, err
	}
	if resp.Header == nil {
		resp.Header = &pb.ResponseHeader{}
	}
	s.hdr.FillHeader(resp.Header)
	return resp, nil
}
