package server

import (
	"context"
	"math"
	"net"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock"
	lpb "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/metastore/metastore/services/auth"
)

// etcd's Lock and Election services (v3lockpb, v3electionpb) are etcd's
// own implementations (go.etcd.io/etcd/server/v3/etcdserver/api/v3lock
// and v3election) over a clientv3 client of this member, as in etcd: a
// lock is the key name/<lease hex> created in a txn, owned by the lowest
// create revision, waited for by watching the deletion of the one before
// it; an election is the same with the value proclaimed. The client talks
// to this member's gRPC server over an in-memory connection, so every
// step passes the same interceptors and permission checks as any client's
// request, under the caller's identity: its token is passed on, and a
// client certificate's CommonName goes in selfCNKey, which is believed
// only on that connection (peer address selfAddr; nothing from the
// network has it).
//
// The generated types are etcd's published packages (the module the
// gateway's and etcdctl's also come from), not a copy: one definition, so
// clients built against etcd's stubs interoperate by construction.

// selfCNKey carries the caller's client-certificate CommonName to this
// member's own gRPC server.
const selfCNKey = "metastore-self-cn"

// selfAddr is the peer address of the in-memory connection; no network
// connection has it.
type selfAddr struct{}

func (selfAddr) Network() string { return "metastore-self" }
func (selfAddr) String() string  { return "metastore-self" }

type selfListener struct{ *bufconn.Listener }

func (l selfListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return selfConn{c}, nil
}

type selfConn struct{ net.Conn }

func (selfConn) RemoteAddr() net.Addr { return selfAddr{} }

// newSelfClient makes the in-memory listener (served with the other
// client listeners) and returns a clientv3 client of it.
func (s *Server) newSelfClient() (*clientv3.Client, error) {
	lis := bufconn.Listen(gatewayBufSize)
	s.selfLis = lis
	return clientv3.New(clientv3.Config{
		Endpoints: []string{"metastore-self:0"},
		Logger:    s.lg.Named("lock-election").WithOptions(zap.IncreaseLevel(zap.WarnLevel)),
		DialOptions: []grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		},
		MaxCallRecvMsgSize: math.MaxInt32,
	})
}

// selfCallContext is ctx with the caller's identity as outgoing metadata
// for this member's own gRPC server: its token, or its certificate's
// CommonName; and its require-leader flag. clientv3 keys its shared watch
// streams by the outgoing metadata, so callers with different identities
// never share one.
func (s *Server) selfCallContext(ctx context.Context) context.Context {
	var kv []string
	for _, k := range []string{rpctypes.TokenFieldNameGRPC, rpctypes.TokenFieldNameSwagger, rpctypes.MetadataRequireLeaderKey} {
		if v := metadata.ValueFromIncomingContext(ctx, k); len(v) > 0 {
			kv = append(kv, k, v[0])
		}
	}
	if len(kv) == 0 || len(kv) == 2 && kv[0] == rpctypes.MetadataRequireLeaderKey {
		if ai := s.certAuthInfo(ctx); ai != nil {
			kv = append(kv, selfCNKey, ai.Username)
		}
	}
	return metadata.NewOutgoingContext(ctx, metadata.Pairs(kv...))
}

// selfCN is the identity a request on the in-memory connection carries
// for its caller (nil for one that had none).
func (s *Server) selfCN(ctx context.Context) *auth.AuthInfo {
	if v := metadata.ValueFromIncomingContext(ctx, selfCNKey); len(v) > 0 && v[0] != "" {
		return &auth.AuthInfo{Username: v[0], Revision: s.authStore.Revision()}
	}
	return nil
}

// registerLockElection registers the Lock and Election services on the
// client server, over c.
func (s *Server) registerLockElection(c *clientv3.Client) {
	lpb.RegisterLockServer(s.clientSrv, lockServer{s, v3lock.NewLockServer(c)})
	epb.RegisterElectionServer(s.clientSrv, electionServer{s, v3election.NewElectionServer(c)})
}

type lockServer struct {
	s *Server
	lpb.LockServer
}

func (l lockServer) Lock(ctx context.Context, r *lpb.LockRequest) (*lpb.LockResponse, error) {
	return l.LockServer.Lock(l.s.selfCallContext(ctx), r)
}

func (l lockServer) Unlock(ctx context.Context, r *lpb.UnlockRequest) (*lpb.UnlockResponse, error) {
	return l.LockServer.Unlock(l.s.selfCallContext(ctx), r)
}

type electionServer struct {
	s *Server
	epb.ElectionServer
}

func (e electionServer) Campaign(ctx context.Context, r *epb.CampaignRequest) (*epb.CampaignResponse, error) {
	return e.ElectionServer.Campaign(e.s.selfCallContext(ctx), r)
}

func (e electionServer) Proclaim(ctx context.Context, r *epb.ProclaimRequest) (*epb.ProclaimResponse, error) {
	return e.ElectionServer.Proclaim(e.s.selfCallContext(ctx), r)
}

func (e electionServer) Leader(ctx context.Context, r *epb.LeaderRequest) (*epb.LeaderResponse, error) {
	return e.ElectionServer.Leader(e.s.selfCallContext(ctx), r)
}

func (e electionServer) Resign(ctx context.Context, r *epb.ResignRequest) (*epb.ResignResponse, error) {
	return e.ElectionServer.Resign(e.s.selfCallContext(ctx), r)
}

func (e electionServer) Observe(r *epb.LeaderRequest, stream epb.Election_ObserveServer) error {
	return e.ElectionServer.Observe(r, observeStream{stream, e.s.selfCallContext(stream.Context())})
}

type observeStream struct {
	epb.Election_ObserveServer
	ctx context.Context
}

func (o observeStream) Context() context.Context { return o.ctx }
