package cluster

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/types"
)

// MemberSource lists the cluster's members; a linearizable listing first
// waits until this member has applied everything committed (ReadIndex).
type MemberSource interface {
	Members(ctx context.Context, linearizable bool) ([]*pb.Member, error)
}

// Backend carries out membership changes through Raft: each returns the
// member list once the change is applied here, or etcd's gRPC error.
type Backend interface {
	MemberSource
	AddMember(ctx context.Context, m *pb.Member) ([]*pb.Member, error)
	RemoveMember(ctx context.Context, id uint64) ([]*pb.Member, error)
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error)
	PromoteMember(ctx context.Context, id uint64) ([]*pb.Member, error)
}

// HeaderFiller fills the cluster ID, member ID and Raft term of a header.
type HeaderFiller interface {
	FillHeader(h *pb.ResponseHeader)
}

// Server is the gRPC Cluster service.
type Server struct {
	pb.UnimplementedClusterServer
	be  Backend
	hdr HeaderFiller
	now func() time.Time
}

var _ pb.ClusterServer = (*Server)(nil)

// NewServer returns the Cluster service.
func NewServer(be Backend, hdr HeaderFiller) *Server {
	return &Server{be: be, hdr: hdr, now: time.Now}
}

func (s *Server) header() *pb.ResponseHeader {
	h := &pb.ResponseHeader{}
	s.hdr.FillHeader(h)
	return h
}

// MemberID is the ID etcd gives a member MemberAdd adds: SHA-1 of its
// sorted peer URLs and the time in seconds, first 8 bytes.
func MemberID(peerURLs []string, now time.Time) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	sum := sha1.Sum(fmt.Appendf([]byte(strings.Join(urls, "")), "%d", now.Unix()))
	return binary.BigEndian.Uint64(sum[:8])
}

// MemberAdd implements pb.ClusterServer: the new member is listed with no
// name and no client URLs until it starts and publishes them.
func (s *Server) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	urls, err := types.NewURLs(r.PeerURLs)
	if err != nil {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	m := &pb.Member{ID: MemberID(urls.StringSlice(), s.now()), PeerURLs: urls.StringSlice(), IsLearner: r.IsLearner}
	ms, err := s.be.AddMember(ctx, m)
	if err != nil {
		return nil, err
	}
	return &pb.MemberAddResponse{Header: s.header(), Member: m, Members: ms}, nil
}

// MemberRemove implements pb.ClusterServer.
func (s *Server) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	ms, err := s.be.RemoveMember(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{Header: s.header(), Members: ms}, nil
}

// MemberUpdate implements pb.ClusterServer: it changes a member's peer
// URLs. As etcd's, the URLs are not checked beyond the other members'.
func (s *Server) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	ms, err := s.be.UpdateMember(ctx, r.ID, r.PeerURLs)
	if err != nil {
		return nil, err
	}
	return &pb.MemberUpdateResponse{Header: s.header(), Members: ms}, nil
}

// MemberPromote implements pb.ClusterServer.
func (s *Server) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	ms, err := s.be.PromoteMember(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	return &pb.MemberPromoteResponse{Header: s.header(), Members: ms}, nil
}

// MemberList implements pb.ClusterServer from the replicated member table
// (linearizable when the request asks, as etcd 3.5+).
func (s *Server) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	ms, err := s.be.Members(ctx, r.Linearizable)
	if err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Header: s.header(), Members: ms}, nil
}
