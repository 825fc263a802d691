package lease

import (
	"context"
	"errors"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/pkg/v3/idutil"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/services/rpcerr"
)

// Host is what the lease service needs from the server it runs in.
type Host interface {
	Proposer
	// ProposeGrant puts a grant (with its ID chosen) through Raft. The
	// response's header revision is the store's right after the grant was
	// applied on this member (see Proposer.ProposeRevoke).
	ProposeGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	// ID is this member's ID; Leader the current leader's (0: none).
	ID() uint64
	Leader() uint64
	// FillHeader fills cluster ID, member ID and Raft term; Rev is the
	// current store revision.
	FillHeader(h *pb.ResponseHeader)
	Rev() int64
	// LeaseKeys lists the keys attached to a lease, in key order.
	LeaseKeys(id int64) ([][]byte, error)
	// PeerConn returns a connection to member id's peer listener, where
	// RegisterForwarding registered the forwarding service.
	PeerConn(id uint64) (grpc.ClientConnInterface, error)
}

// Enabler is an optional Authorizer ability: while Enabled reports false
// every request is allowed, so a revocation does not list the lease's keys.
type Enabler interface{ Enabled() bool }

func enabled(a Authorizer) bool {
	e, ok := a.(Enabler)
	return !ok || e.Enabled()
}

// Authorizer is the authorization check point: the caller may read
// (write=false) or write the keys in [key, end). Revoking a lease needs
// write permission on its keys, TimeToLive with keys read permission.
type Authorizer interface {
	Authorize(ctx context.Context, write bool, key, end []byte) error
}

// Server is the gRPC Lease service.
type Server struct {
	pb.UnimplementedLeaseServer
	le      *Lessor
	h       Host
	auth    Authorizer
	ids     *idutil.Generator
	timeout time.Duration
	lg      *zap.Logger
}

var _ pb.LeaseServer = (*Server)(nil)

// NewServer returns the Lease service over le. requestTimeout bounds the
// forwarding of a keepalive or TimeToLive to the leader; auth may be nil
// (everything allowed).
func NewServer(le *Lessor, h Host, auth Authorizer, requestTimeout time.Duration, lg *zap.Logger) *Server {
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Server{
		le: le, h: h, auth: auth, timeout: requestTimeout, lg: lg,
		ids: idutil.NewGenerator(uint16(h.ID()), time.Now()),
	}
}

// fill fills the header of a read (KeepAlive, TimeToLive, Leases): the
// revision is the store's current one, as etcd's.
func (s *Server) fill(h *pb.ResponseHeader) {
	s.h.FillHeader(h)
	h.Revision = s.h.Rev()
}

// fillApplied fills the header of a write (Grant, Revoke) without touching
// its revision, which the apply step set to the store's revision right
// after the write, as etcd's applier does. Reading the revision again here
// would report a later write's revision: a revoke that deleted keys at 298
// answered 300 once two more writes were applied before the handler woke,
// and no order of the history explains that.
func (s *Server) fillApplied(h *pb.ResponseHeader) {
	rev := h.Revision
	s.h.FillHeader(h)
	h.Revision = rev
}

// errNotPrimary crosses the forwarding service when the member asked is
// not (or no longer) the leader; the follower retries.
var errNotPrimary = status.Error(codes.Unavailable, ErrNotPrimary.Error())

func sameStatus(err, want error) bool {
	a, ok := status.FromError(err)
	return ok && a.Code() == status.Code(want) && a.Message() == status.Convert(want).Message()
}

// LeaseGrant implements pb.LeaseServer. With ID 0 the server chooses a
// positive ID, as etcd does.
func (s *Server) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	for r.ID == 0 {
		r.ID = int64(s.ids.Next() & (1<<63 - 1))
	}
	if r.TTL > MaxTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	resp, err := s.h.ProposeGrant(ctx, r)
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	s.fillApplied(resp.Header)
	return resp, nil
}

// LeaseRevoke implements pb.LeaseServer.
func (s *Server) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if s.auth != nil && enabled(s.auth) {
		keys, err := s.h.LeaseKeys(r.ID)
		if err != nil {
			return nil, rpcerr.ToGRPC(s.lg, err)
		}
		for _, k := range keys {
			if err := s.auth.Authorize(ctx, true, k, nil); err != nil {
				return nil, rpcerr.ToGRPC(s.lg, err)
			}
		}
	}
	resp, err := s.h.ProposeRevoke(ctx, r.ID)
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	s.fillApplied(resp.Header)
	return resp, nil
}

// renewLocal renews on this member's lessor; ErrNotPrimary if it is not
// the leader's.
func (s *Server) renewLocal(ctx context.Context, id int64) (int64, error) {
	ttl, clear, err := s.le.Renew(id)
	if errors.Is(err, ErrNotPrimary) {
		return -1, errNotPrimary
	}
	if err != nil {
		return -1, err
	}
	if clear {
		if err := s.h.ProposeCheckpoint(ctx, []*pb.LeaseCheckpoint{{ID: id}}); err != nil {
			return -1, err
		}
	}
	return ttl, nil
}

// forward runs f against the leader (locally when this member is the
// primary) until it succeeds, fails for good, or the request timeout ends.
func forward[T any](ctx context.Context, s *Server, local func(context.Context) (T, error), remote func(context.Context, grpc.ClientConnInterface) (T, error)) (T, error) {
	var zero T
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for {
		var v T
		err := errNotPrimary
		switch lead := s.h.Leader(); {
		case s.le.IsPrimary() || lead == s.h.ID():
			v, err = local(cctx)
		case lead != 0:
			var cc grpc.ClientConnInterface
			if cc, err = s.h.PeerConn(lead); err == nil {
				v, err = remote(cctx, cc)
			}
		}
		if err == nil || (!sameStatus(err, errNotPrimary) && status.Code(err) != codes.Unavailable && cctx.Err() == nil) {
			return v, err
		}
		select {
		case <-cctx.Done():
			if ctx.Err() != nil {
				return zero, ctx.Err()
			}
			return zero, rpctypes.ErrGRPCTimeout
		case <-time.After(50 * time.Millisecond): // throttle, as etcd
		}
	}
}

func (s *Server) renew(ctx context.Context, id int64) (int64, error) {
	return forward(ctx, s,
		func(ctx context.Context) (int64, error) { return s.renewLocal(ctx, id) },
		func(ctx context.Context, cc grpc.ClientConnInterface) (int64, error) {
			return forwardRenewTo(ctx, cc, id)
		})
}

// LeaseKeepAlive implements pb.LeaseServer. An unknown lease gets TTL 0 in
// the stream, not an error; the header is filled before the renewal, so
// its revision is never after a revoke of the lease.
func (s *Server) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	errc := make(chan error, 1)
	go func() { errc <- s.keepAlive(stream) }()
	select {
	case err := <-errc:
		return err
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
}

func (s *Server) keepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &pb.LeaseKeepAliveResponse{ID: req.ID, Header: &pb.ResponseHeader{}}
		s.fill(resp.Header)
		ttl, err := s.renew(stream.Context(), req.ID)
		if sameStatus(err, rpctypes.ErrGRPCLeaseNotFound) {
			ttl, err = 0, nil
		}
		if err != nil {
			return rpcerr.ToGRPC(s.lg, err)
		}
		resp.TTL = ttl
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (s *Server) timeToLiveLocal(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if !s.le.IsPrimary() {
		return nil, errNotPrimary
	}
	inf, ok := s.le.Lookup(r.ID)
	if !ok {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: &pb.ResponseHeader{}, ID: r.ID, TTL: inf.TTL, GrantedTTL: inf.GrantedTTL}
	if r.Keys {
		keys, err := s.h.LeaseKeys(r.ID)
		if err != nil {
			return nil, err
		}
		resp.Keys = keys
	}
	if !s.le.IsPrimary() {
		// Demoted during the lookup: the remaining TTL may be wrong.
		return nil, rpctypes.ErrGRPCLeaderChanged
	}
	return resp, nil
}

// LeaseTimeToLive implements pb.LeaseServer: the leader answers (a
// follower forwards); an unknown lease gets TTL -1, not an error.
func (s *Server) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := forward(ctx, s,
		func(ctx context.Context) (*pb.LeaseTimeToLiveResponse, error) { return s.timeToLiveLocal(ctx, r) },
		func(ctx context.Context, cc grpc.ClientConnInterface) (*pb.LeaseTimeToLiveResponse, error) {
			return forwardTimeToLiveTo(ctx, cc, r)
		})
	if sameStatus(err, rpctypes.ErrGRPCLeaseNotFound) {
		resp, err = &pb.LeaseTimeToLiveResponse{Header: &pb.ResponseHeader{}, ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	if s.auth != nil {
		for _, k := range resp.Keys {
			if err := s.auth.Authorize(ctx, false, k, nil); err != nil {
				return nil, rpcerr.ToGRPC(s.lg, err)
			}
		}
	}
	if resp.Header == nil {
		resp.Header = &pb.ResponseHeader{}
	}
	s.fill(resp.Header)
	return resp, nil
}

// LeaseLeases implements pb.LeaseServer from this member's table.
func (s *Server) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	ids := s.le.IDs()
	resp := &pb.LeaseLeasesResponse{Header: &pb.ResponseHeader{}, Leases: make([]*pb.LeaseStatus, len(ids))}
	for i, id := range ids {
		resp.Leases[i] = &pb.LeaseStatus{ID: id}
	}
	s.fill(resp.Header)
	return resp, nil
}
