package auth

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/services/rpcerr"
)

// Backend is what the Auth service needs from the server.
type Backend interface {
	// Propose puts r through Raft, stamped with the caller's identity,
	// and returns what applying it answered.
	Propose(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error)
	// ProposeInternal is Propose for the member's own requests (a
	// simple-token signing key), which carry no caller identity.
	ProposeInternal(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error)
	// ReadIndex waits until this member has applied everything committed
	// when it was called (a linearizable read barrier).
	ReadIndex(ctx context.Context) error
	// FillHeader fills a response header (cluster, member, revision, term).
	FillHeader(h *pb.ResponseHeader)
}

// Server implements etcd's Auth gRPC service.
type Server struct {
	pb.UnimplementedAuthServer
	st         *Store
	tokens     *Tokens
	b          Backend
	bcryptCost int
	lg         *zap.Logger
}

// NewServer returns the Auth service over st; passwords are hashed with
// bcryptCost (the default when out of bcrypt's bounds, as etcd).
func NewServer(st *Store, tokens *Tokens, b Backend, bcryptCost int, lg *zap.Logger) *Server {
	if lg == nil {
		lg = zap.NewNop()
	}
	if !ValidBcryptCost(bcryptCost) {
		lg.Warn("use default bcrypt cost instead of the invalid given cost", zap.Int("given-cost", bcryptCost), zap.Int("default-cost", DefaultBcryptCost))
		bcryptCost = DefaultBcryptCost
	}
	return &Server{st: st, tokens: tokens, b: b, bcryptCost: bcryptCost, lg: lg}
}

// call proposes r and returns its answer as a T with a filled header.
func call[T interface {
	proto.Message
	GetHeader() *pb.ResponseHeader
}](ctx context.Context, s *Server, r *pb.InternalRaftRequest, setHeader func(T, *pb.ResponseHeader)) (T, error) {
	var zero T
	resp, err := s.b.Propose(ctx, r)
	if err != nil {
		return zero, rpcerr.ToGRPC(s.lg, err)
	}
	out, ok := resp.(T)
	if !ok {
		return zero, errors.New("auth: unexpected apply answer")
	}
	if out.GetHeader() == nil {
		setHeader(out, &pb.ResponseHeader{})
	}
	s.b.FillHeader(out.GetHeader())
	return out, nil
}

// AuthEnable implements pb.AuthServer.
func (s *Server) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthEnable: r}, func(m *pb.AuthEnableResponse, h *pb.ResponseHeader) { m.Header = h })
}

// AuthDisable implements pb.AuthServer.
func (s *Server) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthDisable: r}, func(m *pb.AuthDisableResponse, h *pb.ResponseHeader) { m.Header = h })
}

// AuthStatus implements pb.AuthServer; it needs no token (etcd 3.7).
func (s *Server) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthStatus: r}, func(m *pb.AuthStatusResponse, h *pb.ResponseHeader) { m.Header = h })
}

// Authenticate implements pb.AuthServer: after a linearizable read
// barrier, the password is checked here (bcrypt, outside the apply step)
// and a token issued; no Raft entry is needed, except once after auth is
// enabled to agree on the simple-token signing key.
func (s *Server) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if err := s.b.ReadIndex(ctx); err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	for {
		rev, err := s.st.CheckPassword(r.Name, r.Password)
		if err != nil {
			if !errors.Is(err, rpctypes.ErrGRPCAuthNotEnabled) {
				s.lg.Warn("invalid authentication was requested", zap.String("user", r.Name), zap.Error(err))
			}
			return nil, err
		}
		if s.tokens.NeedsKey() {
			key, err := NewTokenKey()
			if err != nil {
				return nil, err
			}
			if _, err := s.b.ProposeInternal(ctx, &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{SimpleToken: key}}); err != nil {
				return nil, rpcerr.ToGRPC(s.lg, err)
			}
			continue
		}
		token, err := s.tokens.Assign(r.Name, rev)
		if err != nil {
			return nil, err
		}
		if rev != s.st.Revision() {
			continue // the password may have changed meanwhile: check again
		}
		resp := &pb.AuthenticateResponse{Header: &pb.ResponseHeader{}, Token: token}
		s.b.FillHeader(resp.Header)
		return resp, nil
	}
}

// hashed replaces a password by its bcrypt hash (unless the caller sent
// a hash or the user has no password), so the password never enters the
// Raft log, as etcd does.
func (s *Server) hashed(password, hashed string, noPassword bool) (string, error) {
	if noPassword || hashed != "" {
		return hashed, nil
	}
	return HashPassword(password, s.bcryptCost)
}

// UserAdd implements pb.AuthServer.
func (s *Server) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	h, err := s.hashed(r.Password, r.HashedPassword, r.Options != nil && r.Options.NoPassword)
	if err != nil {
		return nil, err
	}
	req := &pb.AuthUserAddRequest{Name: r.Name, HashedPassword: h, Options: r.Options}
	return call(ctx, s, &pb.InternalRaftRequest{AuthUserAdd: req}, func(m *pb.AuthUserAddResponse, h *pb.ResponseHeader) { m.Header = h })
}

// UserGet implements pb.AuthServer.
func (s *Server) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthUserGet: r}, func(m *pb.AuthUserGetResponse, h *pb.ResponseHeader) { m.Header = h })
}

// UserList implements pb.AuthServer.
func (s *Server) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthUserList: r}, func(m *pb.AuthUserListResponse, h *pb.ResponseHeader) { m.Header = h })
}

// UserDelete implements pb.AuthServer.
func (s *Server) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthUserDelete: r}, func(m *pb.AuthUserDeleteResponse, h *pb.ResponseHeader) { m.Header = h })
}

// UserChangePassword implements pb.AuthServer.
func (s *Server) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	h, err := s.hashed(r.Password, r.HashedPassword, false)
	if err != nil {
		return nil, err
	}
	req := &pb.AuthUserChangePasswordRequest{Name: r.Name, HashedPassword: h}
	return call(ctx, s, &pb.InternalRaftRequest{AuthUserChangePassword: req}, func(m *pb.AuthUserChangePasswordResponse, h *pb.ResponseHeader) { m.Header = h })
}

// UserGrantRole implements pb.AuthServer.
func (s *Server) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthUserGrantRole: r}, func(m *pb.AuthUserGrantRoleResponse, h *pb.ResponseHeader) { m.Header = h })
}

// UserRevokeRole implements pb.AuthServer.
func (s *Server) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthUserRevokeRole: r}, func(m *pb.AuthUserRevokeRoleResponse, h *pb.ResponseHeader) { m.Header = h })
}

// RoleAdd implements pb.AuthServer.
func (s *Server) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthRoleAdd: r}, func(m *pb.AuthRoleAddResponse, h *pb.ResponseHeader) { m.Header = h })
}

// RoleGet implements pb.AuthServer.
func (s *Server) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthRoleGet: r}, func(m *pb.AuthRoleGetResponse, h *pb.ResponseHeader) { m.Header = h })
}

// RoleList implements pb.AuthServer.
func (s *Server) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthRoleList: r}, func(m *pb.AuthRoleListResponse, h *pb.ResponseHeader) { m.Header = h })
}

// RoleDelete implements pb.AuthServer.
func (s *Server) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthRoleDelete: r}, func(m *pb.AuthRoleDeleteResponse, h *pb.ResponseHeader) { m.Header = h })
}

// RoleGrantPermission implements pb.AuthServer.
func (s *Server) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthRoleGrantPermission: r}, func(m *pb.AuthRoleGrantPermissionResponse, h *pb.ResponseHeader) { m.Header = h })
}

// RoleRevokePermission implements pb.AuthServer.
func (s *Server) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return call(ctx, s, &pb.InternalRaftRequest{AuthRoleRevokePermission: r}, func(m *pb.AuthRoleRevokePermissionResponse, h *pb.ResponseHeader) { m.Header = h })
}
