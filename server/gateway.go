package server

import (
	"context"
	"math"
	"net"
	"net/http"
	"strings"

	gw "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/tmc/grpc-websocket-proxy/wsproxy"
	etcdservergw "go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	electiongw "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb/gw"
	lockgw "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb/gw"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
)

// etcd's HTTP/JSON gateway on /v3/: etcd's generated handlers
// (go.etcd.io/etcd/api/v3/etcdserverpb/gw) on grpc-gateway with etcd's
// marshalling (proto field names, zero values omitted, 64-bit integers as
// strings, bytes as base64), streams (watch, lease keepalive) over
// chunked responses or websockets as etcd serves them. The gateway talks
// to this member's gRPC server over an in-memory connection, so it passes
// the same interceptors and checks as any client; the token goes in the
// Authorization header.

// gatewayBufSize is the in-memory connection's buffer.
const gatewayBufSize = 1 << 20

// newGateway returns the /v3/ handler, or nil with --enable-grpc-gateway=false.
func (s *Server) newGateway() (http.Handler, error) {
	if !s.cfg.EnableGRPCGateway {
		return nil, nil
	}
	s.gwLis = bufconn.Listen(gatewayBufSize)
	s.serve(s.clientSrv, s.gwLis)
	conn, err := grpc.NewClient("passthrough:///metastore-gateway",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.gwLis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)))
	if err != nil {
		return nil, err
	}
	s.gwConn = conn
	mux := gw.NewServeMux(gw.WithMarshalerOption(gw.MIMEWildcard, &gw.HTTPBodyMarshaler{
		Marshaler: &gw.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}))
	ctx := context.Background()
	for _, register := range []func(context.Context, *gw.ServeMux, *grpc.ClientConn) error{
		etcdservergw.RegisterKVHandler, etcdservergw.RegisterWatchHandler, etcdservergw.RegisterLeaseHandler,
		etcdservergw.RegisterClusterHandler, etcdservergw.RegisterMaintenanceHandler, etcdservergw.RegisterAuthHandler,
		lockgw.RegisterLockHandler, electiongw.RegisterElectionHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			return nil, err
		}
	}
	return wsproxy.WebsocketProxy(mux,
		// Streams are POSTs, as etcd's gateway.
		wsproxy.WithRequestMutator(func(_ *http.Request, out *http.Request) *http.Request {
			out.Method = http.MethodPost
			return out
		}),
		wsproxy.WithMaxRespBodyBufferSize(math.MaxInt32),
		wsproxy.WithLogger(wsLogger{s.lg})), nil
}

// gatewayAccess is etcd's access controller in front of the gateway:
// /v3beta/ is an alias of /v3/, CORS for every origin (etcd's --cors
// default), and with client certificate auth and auth on, a request to
// the gateway with a certificate CommonName is refused (the gateway would
// not use it as the user).
func (s *Server) gatewayAccess(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v3beta/") {
			r.URL.Path = strings.Replace(r.URL.Path, "/v3beta/", "/v3/", 1)
		}
		if r.TLS != nil && s.cfg.ClientCertAuth && s.authStore.Enabled() && strings.HasPrefix(r.URL.Path, "/v3/") {
			for _, chain := range r.TLS.VerifiedChains {
				if len(chain) > 0 && chain[0].Subject.CommonName != "" {
					http.Error(w, "CommonName of client sending a request against gateway will be ignored and not used as expected", http.StatusBadRequest)
					return
				}
			}
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
		w.Header().Set("Access-Control-Allow-Headers", "accept, content-type, authorization")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type wsLogger struct{ lg *zap.Logger }

func (l wsLogger) Warnln(args ...any)  { l.lg.Sugar().Warn(args...) }
func (l wsLogger) Debugln(args ...any) { l.lg.Sugar().Debug(args...) }
