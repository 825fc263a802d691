package server

import (
	"context"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

// requestTimeout is etcd's ReqTimeout: 5 s plus two election timeouts.
func requestTimeout(cfg Config) time.Duration {
	return 5*time.Second + 2*time.Duration(cfg.ElectionTimeoutMs)*time.Millisecond
}

// requestCtx bounds a request by etcd's ReqTimeout, whatever the client's
// own deadline: as etcd, a proposal lost with a failed leader, or a
// ReadIndex no leader answers, gets "request timed out" and the client
// retries, instead of waiting as long as the client would.
func (s *Server) requestCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, requestTimeout(s.cfg))
}

// propose puts r through Raft and returns what applying it produced on
// this member.
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (ar *applyResult, err error) {
	if err := s.stampAuth(ctx, r); err != nil {
		return nil, err
	}
	// As etcd: timed from here to the answer; success means the request
	// was applied, whatever it answered.
	defer func(t0 time.Time) {
		s.inst.observeRequest(requestKind(r), ar != nil, time.Since(t0))
	}(time.Now())
	data, err := proto.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(data) > int(s.cfg.MaxRequestBytes) {
		return nil, rpctypes.ErrGRPCRequestTooLarge // as etcd: the whole Raft request counts
	}
	ctx, cancel := s.requestCtx(ctx)
	defer cancel()
	s.inst.proposalsPending.Add(1)
	ar, err = s.node.Propose(ctx, data)
	s.inst.proposalsPending.Add(-1)
	if err != nil {
		s.inst.proposalsFailed.Add(1)
		return nil, err
	}
	return ar, ar.err
}

// proposeFor is propose for requests that answer with a response of type
// T (the apply step's answer to that request kind); it is the one place
// the response's type is checked.
func proposeFor[T proto.Message](ctx context.Context, s *Server, r *pb.InternalRaftRequest) (T, error) {
	var zero T
	ar, err := s.propose(ctx, r)
	if err != nil {
		return zero, err
	}
	resp, ok := ar.resp.(T)
	if !ok {
		return zero, fmt.Errorf("server: apply answered %T, want %T", ar.resp, zero)
	}
	return resp, nil
}
