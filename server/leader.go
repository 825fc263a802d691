package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Requests that carry etcd's "hasleader" metadata (clientv3's
// WithRequireLeader, which Kubernetes uses for its watches) need a leader:
// without one, a new request gets etcd's ErrGRPCNoLeader at once, and open
// streams are ended with it after three election timeouts without a
// leader (etcd's monitorLeader), so clients move to another member.

// maxNoLeaderCnt is how many election timeouts without a leader end
// leader-requiring streams (etcd: 3).
const maxNoLeaderCnt = 3

func requiresLeader(ctx context.Context) bool {
	// ValueFromIncomingContext copies one key, not the whole metadata.
	ks := metadata.ValueFromIncomingContext(ctx, rpctypes.MetadataRequireLeaderKey)
	return len(ks) > 0 && ks[0] == rpctypes.MetadataHasLeader
}

// leaderStream is a stream that ends when the member has no leader.
type leaderStream struct {
	grpc.ServerStream
	ctx      context.Context
	cancel   context.CancelFunc
	noLeader atomic.Bool
}

func (ls *leaderStream) Context() context.Context { return ls.ctx }

type leaderStreams struct {
	mu sync.Mutex
	m  map[*leaderStream]struct{}
}

func (s *Server) unaryRequireLeader(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if requiresLeader(ctx) && s.node.Leader() == 0 {
		return nil, rpctypes.ErrGRPCNoLeader
	}
	return handler(ctx, req)
}

func (s *Server) streamRequireLeader(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !requiresLeader(ss.Context()) {
		return handler(srv, ss)
	}
	if s.node.Leader() == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	ctx, cancel := context.WithCancel(ss.Context())
	ls := &leaderStream{ServerStream: ss, ctx: ctx, cancel: cancel}
	s.leaderStreams.mu.Lock()
	s.leaderStreams.m[ls] = struct{}{}
	s.leaderStreams.mu.Unlock()
	defer func() {
		s.leaderStreams.mu.Lock()
		delete(s.leaderStreams.m, ls)
		s.leaderStreams.mu.Unlock()
		cancel()
	}()
	err := handler(srv, ls)
	if ls.noLeader.Load() {
		return rpctypes.ErrGRPCNoLeader
	}
	return err
}

// monitorLeader ends leader-requiring streams after maxNoLeaderCnt
// election timeouts without a leader.
func (s *Server) monitorLeader(ctx context.Context) {
	defer s.wg.Done()
	election := time.Duration(s.cfg.ElectionTimeoutMs) * time.Millisecond
	t := time.NewTicker(election)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.node.Leader() != 0 {
			n = 0
			continue
		}
		if n++; n < maxNoLeaderCnt {
			continue
		}
		s.leaderStreams.mu.Lock()
		for ls := range s.leaderStreams.m {
			ls.noLeader.Store(true)
			ls.cancel()
		}
		s.leaderStreams.m = map[*leaderStream]struct{}{}
		s.leaderStreams.mu.Unlock()
	}
}
