package server

import (
	"context"
	"fmt"
	"net/url"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metastore/metastore/services/lease"
)

// leaseHost implements lease.Host and lease.Proposer for the server.
type leaseHost struct{ s *Server }

var _ lease.Host = leaseHost{}

func (h leaseHost) ProposeGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := h.s.checkQuota(ctx, leaseOverhead); err != nil {
		return nil, err
	}
	return proposeFor[*pb.LeaseGrantResponse](ctx, h.s, &pb.InternalRaftRequest{LeaseGrant: r})
}

func (h leaseHost) ProposeRevoke(ctx context.Context, id int64) (*pb.LeaseRevokeResponse, error) {
	return proposeFor[*pb.LeaseRevokeResponse](ctx, h.s, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
}

func (h leaseHost) ProposeCheckpoint(ctx context.Context, cps []*pb.LeaseCheckpoint) error {
	_, err := h.s.propose(ctx, &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{Checkpoints: cps}})
	return err
}

func (h leaseHost) ID() uint64                        { return h.s.id }
func (h leaseHost) Leader() uint64                    { return h.s.node.Leader() }
func (h leaseHost) FillHeader(hdr *pb.ResponseHeader) { h.s.FillHeader(hdr) }
func (h leaseHost) Rev() int64                        { return h.s.store.Load().Rev() }

// LeaseKeys lists the keys attached to lease id after a ReadIndex round,
// so that they include every write acknowledged before the call: the
// leader, which answers TimeToLive, may apply after the member that
// acknowledged a put (seen in CI on three members).
func (h leaseHost) LeaseKeys(id int64) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout(h.s.cfg))
	defer cancel()
	if _, err := h.s.readIndex(ctx); err != nil {
		return nil, err
	}
	return h.s.store.Load().LeaseKeys(id)
}

// PeerConn returns a (cached) connection to member id's first peer URL.
func (h leaseHost) PeerConn(id uint64) (grpc.ClientConnInterface, error) {
	s := h.s
	s.peerConnMu.Lock()
	defer s.peerConnMu.Unlock()
	if cc, ok := s.peerConns[id]; ok {
		return cc, nil
	}
	var target string
	for _, m := range s.members.List() {
		if m.ID == id && len(m.PeerURLs) > 0 {
			if s.peerAddrs != nil {
				if addrs := s.peerAddrs(id, m.PeerURLs); len(addrs) > 0 {
					target = addrs[0]
				}
				continue
			}
			u, err := url.Parse(m.PeerURLs[0])
			if err != nil {
				return nil, err
			}
			target = u.Host
		}
	}
	if target == "" {
		return nil, fmt.Errorf("no peer URL for member %x", id)
	}
	creds, err := s.peerDialCreds()
	if err != nil {
		return nil, err
	}
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	s.peerConns[id] = cc
	return cc, nil
}

// promoteLessor starts the lease clocks for term, once.
func (s *Server) promoteLessor(term uint64) {
	if s.lessorTerm.Swap(term) == term {
		return
	}
	s.lessor.Promote(time.Duration(s.cfg.ElectionTimeoutMs) * time.Millisecond)
}

// TermStarted implements consensus.TermStarter: when the leader applies
// the empty entry of its own term, everything before is applied, and its
// lessor takes over the clocks (as etcd promotes its lessor).
func (sm *stateMachine) TermStarted(_, term uint64, leading bool) {
	if leading {
		sm.s.promoteLessor(term)
	}
}

// watchLeadership demotes the lessor as soon as this member no longer
// leads (or a new term began), and promotes it after a ReadIndex round if
// the term's first entry was applied before the node reported leadership.
func (s *Server) watchLeadership(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.tickInterval() / 2)
	defer t.Stop()
	extend := time.Duration(s.cfg.ElectionTimeoutMs) * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		term := s.node.Term()
		leading := s.node.Leader() == s.id
		if pt := s.lessorTerm.Load(); pt != 0 && (!leading || term != pt) {
			if s.lessorTerm.CompareAndSwap(pt, 0) {
				s.lessor.Demote()
			}
		}
		if leading && s.lessorTerm.Load() == 0 {
			rctx, cancel := context.WithTimeout(ctx, extend)
			_, err := s.readIndex(rctx)
			cancel()
			if err == nil && s.node.Leader() == s.id && s.node.Term() == term {
				s.promoteLessor(term)
			}
		}
	}
}
