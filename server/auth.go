package server

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/services/auth"
)

// The auth check point of the server: the replicated auth store
// (services/auth) decides, the server finds out who calls. A request's
// identity comes from the "token" (or "authorization") gRPC metadata.
// Client requests are stamped with it when proposed (the Raft request's
// header: user and the auth revision the token was checked at), so the
// apply step refuses what the auth state changed under (etcd's
// ErrAuthOldRevision) and checks administration at apply, as etcd does.

// authInfo returns the caller's identity: nil without a token or while
// auth is off; ErrInvalidAuthToken for a token no member issued, that
// expired, or whose user was deleted or changed password.
func (s *Server) authInfo(ctx context.Context) (*auth.AuthInfo, error) {
	if !s.authStore.Enabled() {
		return nil, nil
	}
	// ValueFromIncomingContext copies one key, not the whole metadata
	// (FromIncomingContext cost 6% of a serializable range's CPU).
	ts := metadata.ValueFromIncomingContext(ctx, rpctypes.TokenFieldNameGRPC)
	if len(ts) == 0 {
		ts = metadata.ValueFromIncomingContext(ctx, rpctypes.TokenFieldNameSwagger)
	}
	if len(ts) == 0 {
		return s.certAuthInfo(ctx), nil
	}
	ai, ok := s.tokens.Info(strings.TrimPrefix(ts[0], "Bearer "))
	if !ok {
		return nil, rpctypes.ErrGRPCInvalidAuthToken
	}
	return ai, nil
}

// certAuthInfo is etcd's identity for a request without a token: the
// CommonName of the client certificate the TLS handshake verified (with
// --client-cert-auth), except on requests the gateway forwards (they come
// with the gateway's own certificate); on the Lock and Election services'
// own requests, the CommonName of the caller they serve.
func (s *Server) certAuthInfo(ctx context.Context) *auth.AuthInfo {
	p, ok := peer.FromContext(ctx)
	if ok {
		if _, self := p.Addr.(selfAddr); self {
			return s.selfCN(ctx)
		}
	}
	if !ok || p.AuthInfo == nil {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	for _, chain := range ti.State.VerifiedChains {
		if len(chain) == 0 || chain[0].Subject.CommonName == "" {
			continue
		}
		if len(metadata.ValueFromIncomingContext(ctx, "grpcgateway-accept")) > 0 {
			return nil
		}
		return &auth.AuthInfo{Username: chain[0].Subject.CommonName, Revision: s.authStore.Revision()}
	}
	return nil
}

// storeAuthorizer is the default check point (Authorizer): etcd's
// permission rules over the replicated auth store.
type storeAuthorizer struct{ s *Server }

// Enabled tells the services when they can skip the checks (and the
// lease key listings they need).
func (a storeAuthorizer) Enabled() bool { return a.s.authStore.Enabled() }

func (a storeAuthorizer) Authorize(ctx context.Context, write bool, key, end []byte) error {
	if !a.s.authStore.Enabled() {
		return nil
	}
	ai, err := a.s.authInfo(ctx)
	if err != nil {
		return err
	}
	return a.s.authStore.IsPermitted(ai, write, key, end)
}

// stampAuth records the caller of a client request (one with gRPC
// metadata) in its Raft header; the member's own requests stay unstamped.
func (s *Server) stampAuth(ctx context.Context, r *pb.InternalRaftRequest) error {
	if r.Header != nil || !fromClient(ctx) {
		return nil
	}
	ai, err := s.authInfo(ctx)
	if err != nil {
		return err
	}
	r.Header = &pb.RequestHeader{}
	if ai != nil {
		r.Header.Username, r.Header.AuthRevision = ai.Username, ai.Revision
	}
	return nil
}

// fromClient reports whether ctx is a client request's: a gRPC call's
// (asked first: it costs no copy of the metadata, which
// FromIncomingContext makes, 3% of a put's allocations) or one carrying
// incoming metadata.
func fromClient(ctx context.Context) bool {
	if grpc.ServerTransportStreamFromContext(ctx) != nil {
		return true
	}
	_, ok := metadata.FromIncomingContext(ctx)
	return ok
}

// checkAuthAtApply refuses, at apply, a client write whose credentials
// were checked before the auth state last changed (etcd's
// ErrAuthOldRevision; the client re-authenticates and retries), one
// proposed without credentials while auth came on, and a lease
// revocation that would delete keys the caller may not write (the keys
// attached may have changed since the check).
func (sm *stateMachine) checkAuthAtApply(tw leaseKeyer, r *pb.InternalRaftRequest) error {
	st := sm.s.authStore
	if r.Header == nil || !st.Enabled() {
		return nil
	}
	if r.Put == nil && r.DeleteRange == nil && r.Txn == nil && r.LeaseRevoke == nil {
		return nil
	}
	ai := &auth.AuthInfo{Username: r.Header.Username, Revision: r.Header.AuthRevision}
	if ai.Username == "" || ai.Revision == 0 {
		return rpctypes.ErrGRPCUserEmpty
	}
	if ai.Revision < st.Revision() {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	if r.LeaseRevoke != nil && st.IsAdmin(ai) != nil {
		keys, err := tw.LeaseKeys(r.LeaseRevoke.ID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := st.IsPermitted(ai, true, k, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// localLeaseKeys lists a lease's keys from this member's store: attaching
// a key to a lease is checked against the keys attached so far, and the
// apply step checks again (checkAuthAtApply's revision rule).
type localLeaseKeys struct{ s *Server }

func (l localLeaseKeys) LeaseKeys(id int64) ([][]byte, error) { return l.s.store.Load().LeaseKeys(id) }

type leaseKeyer interface {
	LeaseKeys(lease int64) ([][]byte, error)
}

// adminMethods need the root role when auth is on (etcd 3.6+).
var adminMethods = map[string]bool{
	"/etcdserverpb.KV/Compact":              true,
	"/etcdserverpb.Maintenance/Defragment":  true,
	"/etcdserverpb.Maintenance/Snapshot":    true,
	"/etcdserverpb.Maintenance/Hash":        true,
	"/etcdserverpb.Maintenance/HashKV":      true,
	"/etcdserverpb.Maintenance/MoveLeader":  true,
	"/etcdserverpb.Maintenance/Downgrade":   true,
	"/etcdserverpb.Cluster/MemberAdd":       true,
	"/etcdserverpb.Cluster/MemberRemove":    true,
	"/etcdserverpb.Cluster/MemberUpdate":    true,
	"/etcdserverpb.Cluster/MemberPromote":   true,
	"/etcdserverpb.Maintenance/AlarmChange": true, // Alarm with ACTIVATE/DEACTIVATE, see methodAuth
}

// identifiedMethods need some valid user when auth is on (etcd's
// requireAuthInfo).
var identifiedMethods = map[string]bool{
	"/etcdserverpb.Maintenance/Status":    true,
	"/etcdserverpb.Maintenance/Alarm":     true, // GET; changes are admin
	"/etcdserverpb.Lease/LeaseGrant":      true,
	"/etcdserverpb.Lease/LeaseRevoke":     true,
	"/etcdserverpb.Lease/LeaseTimeToLive": true,
	"/etcdserverpb.Lease/LeaseLeases":     true, // and read on every attached key, see below
	"/etcdserverpb.Cluster/MemberList":    true,
}

// methodAuth checks what a method needs beyond per-key permissions.
func (s *Server) methodAuth(ctx context.Context, method string, req any) error {
	if !s.authStore.Enabled() {
		return nil
	}
	if ar, ok := req.(*pb.AlarmRequest); ok && ar.Action != pb.AlarmRequest_GET {
		method = "/etcdserverpb.Maintenance/AlarmChange"
	}
	switch {
	case adminMethods[method]:
		ai, err := s.authInfo(ctx)
		if err != nil {
			return err
		}
		return s.authStore.IsAdmin(ai)
	case identifiedMethods[method]:
		ai, err := s.authInfo(ctx)
		if err != nil {
			return err
		}
		if ai == nil {
			return rpctypes.ErrGRPCUserEmpty
		}
		if method == "/etcdserverpb.Lease/LeaseLeases" {
			return s.checkLeaseLeases(ai)
		}
	}
	return nil
}

// checkLeaseLeases is etcd's rule for listing leases: root, or read
// permission on every key attached to any lease.
func (s *Server) checkLeaseLeases(ai *auth.AuthInfo) error {
	if s.authStore.IsAdmin(ai) == nil {
		return nil
	}
	st := s.store.Load()
	for _, id := range s.lessor.IDs() {
		keys, err := st.LeaseKeys(id)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := s.authStore.IsPermitted(ai, false, k, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.methodAuth(ctx, info.FullMethod, req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.methodAuth(ss.Context(), info.FullMethod, nil); err != nil {
		return err
	}
	return h(srv, ss)
}

// authBackend implements auth.Backend.
type authBackend struct{ s *Server }

func (b authBackend) Propose(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	ar, err := b.s.propose(ctx, r)
	if err != nil {
		return nil, err
	}
	return ar.resp, nil
}

func (b authBackend) ProposeInternal(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	ictx, cancel := context.WithTimeout(context.Background(), requestTimeout(b.s.cfg))
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	return b.Propose(ictx, r)
}

func (b authBackend) ReadIndex(ctx context.Context) error {
	ctx, cancel := b.s.requestCtx(ctx)
	defer cancel()
	_, err := b.s.readIndex(ctx)
	return err
}

func (b authBackend) FillHeader(h *pb.ResponseHeader) {
	b.s.FillHeader(h)
	h.Revision = b.s.store.Load().Rev()
}

// tokenTTL is --auth-token-ttl as a duration.
func (c Config) tokenTTL() time.Duration { return time.Duration(c.AuthTokenTTL) * time.Second }
