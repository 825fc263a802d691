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

// Hasher computes HashKV for a revision (0: current). Errors are mapped
// to etcd's by the implementation.
type Hasher interface {
	HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error)
}

// Alarmer puts an AlarmRequest through Raft and returns the applied
// response.
type Alarmer interface {
	Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error)
}

// Defragmenter reclaims the space of deleted and compacted data on this
// member (etcd's defrag; online in MetaStore, writes are not stopped).
type Defragmenter interface {
	Defragment(ctx context.Context) error
}

// HeaderFiller fills the cluster ID, member ID and Raft term of a header.
type HeaderFiller interface {
	FillHeader(h *pb.ResponseHeader)
}

// Server is the gRPC Maintenance service.
type Server struct {
	pb.UnimplementedMaintenanceServer
	src    StatusSource
	hasher Hasher
	hdr    HeaderFiller
	alarms Alarmer
	defrag Defragmenter
}

var _ pb.MaintenanceServer = (*Server)(nil)

// NewServer returns the Maintenance service.
func NewServer(src StatusSource, hasher Hasher, alarms Alarmer, defrag Defragmenter, hdr HeaderFiller) *Server {
	return &Server{src: src, hasher: hasher, alarms: alarms, defrag: defrag, hdr: hdr}
}

// Defragment implements pb.MaintenanceServer for the member it reaches.
func (s *Server) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := s.defrag.Defragment(ctx); err != nil {
		return nil, err
	}
	resp := &pb.DefragmentResponse{Header: &pb.ResponseHeader{}}
	s.hdr.FillHeader(resp.Header)
	return resp, nil
}

// Alarm implements pb.MaintenanceServer: list, raise or clear alarms
// (through Raft, as etcd). Clearing NOSPACE takes the cluster out of its
// read-only mode once the space is back under the quota.
func (s *Server) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp, err := s.alarms.Alarm(ctx, r)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		resp = &pb.AlarmResponse{}
	}
	if resp.Header == nil {
		resp.Header = &pb.ResponseHeader{}
	}
	s.hdr.FillHeader(resp.Header)
	return resp, nil
}

// HashKV implements pb.MaintenanceServer: a hash of the MVCC history up to
// the revision, equal on every member with the same history whatever its
// physical compaction progress — the cross-member corruption check.
func (s *Server) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	resp, err := s.hasher.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, err
	}
	if resp.Header == nil {
		resp.Header = &pb.ResponseHeader{}
	}
	s.hdr.FillHeader(resp.Header)
	return resp, nil
}

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
