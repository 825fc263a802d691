package server

import (
	"fmt"
	"math"
	"net"
	"strings"

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

func hostPorts(urls string) []string {
	var out []string
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		u = strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
		out = append(out, u)
	}
	return out
}

func (s *Server) listen() error {
	for _, hp := range hostPorts(s.cfg.ListenClientURLs) {
		l, err := net.Listen("tcp", hp)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("--listen-client-urls: %w", err)
		}
		s.clientLis = append(s.clientLis, l)
	}
	if s.cfg.ListenMetricsURLs != "" {
		for _, hp := range hostPorts(s.cfg.ListenMetricsURLs) {
			l, err := net.Listen("tcp", hp)
			if err != nil {
				s.closeListeners()
				return fmt.Errorf("--listen-metrics-urls: %w", err)
			}
			s.metricsLis = append(s.metricsLis, l)
		}
	}
	for _, hp := range hostPorts(s.cfg.ListenPeerURLs) {
		l, err := net.Listen("tcp", hp)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("--listen-peer-urls: %w", err)
		}
		s.peerLis = append(s.peerLis, l)
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, ls := range [][]net.Listener{s.clientLis, s.peerLis, s.metricsLis} {
		for _, l := range ls {
			l.Close()
		}
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
