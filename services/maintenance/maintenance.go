package maintenance

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Backend is what the service needs from the server. Errors are mapped
// to etcd's by the implementation.
type Backend interface {
	// Status reports the member's status (everything but the header's
	// cluster, member and term, which HeaderFiller adds).
	Status(ctx context.Context) (*pb.StatusResponse, error)
	// HashKV hashes the MVCC history up to rev (0: current).
	HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error)
	// Hash hashes the member's whole store.
	Hash(ctx context.Context) (*pb.HashResponse, error)
	// Alarm puts an AlarmRequest through Raft and returns the applied
	// response.
	Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error)
	// Defragment reclaims the space of deleted and compacted data on this
	// member (online in MetaStore: writes are not stopped).
	Defragment(ctx context.Context) error
	// MoveLeader hands leadership to target; only the leader may.
	MoveLeader(ctx context.Context, target uint64) error
}

// HeaderFiller fills the cluster ID, member ID and Raft term of a header.
type HeaderFiller interface {
	FillHeader(h *pb.ResponseHeader)
}

// Server is the gRPC Maintenance service.
type Server struct {
	pb.UnimplementedMaintenanceServer
	b   Backend
	hdr HeaderFiller
}

var _ pb.MaintenanceServer = (*Server)(nil)

// NewServer returns the Maintenance service.
func NewServer(b Backend, hdr HeaderFiller) *Server {
	return &Server{b: b, hdr: hdr}
}

// Hash implements pb.MaintenanceServer: a hash of the member's whole store
// at the revision it reports (for tests and tools; HashKV is the one to
// compare members with).
func (s *Server) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	resp, err := s.b.Hash(ctx)
	if err != nil {
		return nil, err
	}
	s.hdr.FillHeader(resp.Header)
	return resp, nil
}

// MoveLeader implements pb.MaintenanceServer: called on the leader, it
// hands leadership to the target member and returns once it leads.
func (s *Server) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := s.b.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, err
	}
	resp := &pb.MoveLeaderResponse{Header: &pb.ResponseHeader{}}
	s.hdr.FillHeader(resp.Header)
	return resp, nil
}

// Defragment implements pb.MaintenanceServer for the member it reaches.
func (s *Server) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := s.b.Defragment(ctx); err != nil {
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
	resp, err := s.b.Alarm(ctx, r)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		resp = &pb.AlarmResponse{}
	}
	resp.Header = s.header(resp.Header)
	return resp, nil
}

// HashKV implements pb.MaintenanceServer: a hash of the MVCC history up to
// the revision, equal on every member with the same history whatever its
// physical compaction progress — the cross-member corruption check.
func (s *Server) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	resp, err := s.b.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, err
	}
	resp.Header = s.header(resp.Header)
	return resp, nil
}

// Status implements pb.MaintenanceServer.
func (s *Server) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := s.b.Status(ctx)
	if err != nil {
		return nil, err
	}
	resp.Header = s.header(resp.Header)
	return resp, nil
}

// Downgrader is implemented by a Backend that runs downgrades (the rules
// are Downgrade's).
type Downgrader interface {
	Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error)
}

// Downgrade implements pb.MaintenanceServer: VALIDATE, ENABLE or CANCEL a
// cluster downgrade (Unimplemented for a Backend without Downgrader).
func (s *Server) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	d, ok := s.b.(Downgrader)
	if !ok {
		return s.UnimplementedMaintenanceServer.Downgrade(ctx, r)
	}
	resp, err := d.Downgrade(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = s.header(resp.Header)
	return resp, nil
}

// header fills h (made if missing) with the member's header fields.
func (s *Server) header(h *pb.ResponseHeader) *pb.ResponseHeader {
	if h == nil {
		h = &pb.ResponseHeader{}
	}
	s.hdr.FillHeader(h)
	return h
}
