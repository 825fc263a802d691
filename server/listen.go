package server

import (
	"fmt"
	"math"
	"net"
	"strings"

	etcdtransport "go.etcd.io/etcd/client/pkg/v3/transport"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// clientServerOptions are etcd's gRPC server settings: requests up to
// --max-request-bytes plus 512 KiB of framing, responses up to 2 GiB,
// --max-concurrent-streams, and the keepalive policy.
func clientServerOptions(cfg Config) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(cfg.MaxRequestBytes) + 512*1024),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentStreams)),
	}
	if cfg.GRPCKeepAliveMinTime > 0 {
		opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.GRPCKeepAliveMinTime}))
	}
	if cfg.GRPCKeepAliveInterval > 0 && cfg.GRPCKeepAliveTimeout > 0 {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.GRPCKeepAliveInterval, Timeout: cfg.GRPCKeepAliveTimeout}))
	}
	return opts
}

func (s *Server) serve(srv *grpc.Server, l net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(l)
	}()
}

// listenURL listens on one URL of a list: tcp for http(s), a unix socket
// for unix(s); the TLS schemes through etcd's TLS listener with ti (CRLs,
// allowed CNs and hostnames checked after each handshake).
func (s *Server) listenURL(raw string, ti *etcdtransport.TLSInfo) (net.Listener, error) {
	raw = strings.TrimSpace(raw)
	scheme, hp, _ := strings.Cut(raw, "://")
	network := "tcp"
	if scheme == "unix" || scheme == "unixs" {
		// unix://host:port names a socket "host:port" in the working
		// directory, unix:///path a socket at path (etcd: host + path).
		network = "unix"
	}
	l, err := net.Listen(network, hp)
	if err != nil {
		return nil, err
	}
	if scheme != "https" && scheme != "unixs" {
		return l, nil
	}
	tl, err := etcdtransport.NewTLSListener(l, ti)
	if err != nil {
		l.Close()
		return nil, err
	}
	if s.tlsLis == nil {
		s.tlsLis = map[net.Listener]bool{}
	}
	s.tlsLis[tl] = true
	return tl, nil
}

func (s *Server) listen() error {
	for _, set := range []struct {
		flag, urls string
		ti         *etcdtransport.TLSInfo
		into       *[]net.Listener
	}{
		{"--listen-client-urls", s.cfg.ListenClientURLs, s.clientTLS, &s.clientLis},
		{"--listen-metrics-urls", s.cfg.ListenMetricsURLs, s.clientTLS, &s.metricsLis},
		{"--listen-client-http-urls", s.cfg.ListenClientHTTPURLs, s.clientTLS, &s.clientHTTPLis},
		{"--listen-peer-urls", s.cfg.ListenPeerURLs, s.peerTLS, &s.peerLis},
	} {
		if set.urls == "" {
			continue
		}
		for _, u := range strings.Split(set.urls, ",") {
			l, err := s.listenURL(u, set.ti)
			if err != nil {
				s.closeListeners()
				return fmt.Errorf("%s: %w", set.flag, err)
			}
			*set.into = append(*set.into, l)
		}
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, ls := range [][]net.Listener{s.clientLis, s.peerLis, s.metricsLis, s.clientHTTPLis} {
		for _, l := range ls {
			l.Close()
		}
	}
	if s.gwLis != nil {
		s.gwLis.Close()
	}
	if s.selfLis != nil {
		s.selfLis.Close()
	}
}

// ClientAddrs returns the addresses the client listeners are bound to.
func (s *Server) ClientAddrs() []string {
	var out []string
	for _, l := range s.clientLis {
		out = append(out, l.Addr().String())
	}
	return out
}
