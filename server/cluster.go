package server

import (
	"context"
	"errors"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus"
	clustersvc "github.com/metastore/metastore/services/cluster"
	"github.com/metastore/metastore/services/rpcerr"
)

// healthInterval is how long a peer link must have been up to count as
// connected for a membership change's quorum check (etcd's
// HealthInterval; tests shorten it).
var healthInterval = 5 * time.Second

// errMemberRemoved is why a removed member stops (etcd's words).
var errMemberRemoved = errors.New("the member has been permanently removed from the cluster")

// Members implements cluster.MemberSource from the replicated table.
func (s *Server) Members(ctx context.Context, linearizable bool) ([]*pb.Member, error) {
	if linearizable {
		ctx, cancel := s.requestCtx(ctx)
		defer cancel()
		if _, err := s.readIndex(ctx); err != nil {
			return nil, rpcerr.ToGRPC(s.lg, err)
		}
	}
	return s.members.List(), nil
}

// ClusterMembers implements cluster.PeerBackend: what a joining member
// reads from its peers.
func (s *Server) ClusterMembers(context.Context) (*pb.MemberListResponse, error) {
	resp := &pb.MemberListResponse{Header: &pb.ResponseHeader{}, Members: s.members.List()}
	s.FillHeader(resp.Header)
	return resp, nil
}

// AddMember implements cluster.Backend.
func (s *Server) AddMember(ctx context.Context, m *pb.Member) ([]*pb.Member, error) {
	if err := s.mayAddMember(m); err != nil {
		return nil, err
	}
	typ := raftpb.ConfChangeAddNode
	if m.IsLearner {
		typ = raftpb.ConfChangeAddLearnerNode
	}
	return s.configure(ctx, typ, m.ID, consensus.MemberContext{PeerURLs: m.PeerURLs})
}

// RemoveMember implements cluster.Backend. Removing the leader hands its
// leadership to another voter first, so the cluster does not wait an
// election timeout for a new one.
func (s *Server) RemoveMember(ctx context.Context, id uint64) ([]*pb.Member, error) {
	if err := s.mayRemoveMember(id); err != nil {
		return nil, err
	}
	if id == s.node.Leader() && s.members.Member(id) != nil {
		if to, ok := s.transferee(id); ok {
			tctx, cancel := context.WithTimeout(ctx, s.cfg.electionTimeout())
			err := s.node.TransferLeadership(tctx, to)
			cancel()
			if err != nil {
				s.lg.Warn("could not hand leadership over before removing the leader", zap.Error(err))
			}
		}
	}
	return s.configure(ctx, raftpb.ConfChangeRemoveNode, id, consensus.MemberContext{})
}

// UpdateMember implements cluster.Backend.
func (s *Server) UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error) {
	return s.configure(ctx, raftpb.ConfChangeUpdateNode, id, consensus.MemberContext{PeerURLs: peerURLs})
}

// PromoteMember implements cluster.Backend. Only the leader knows whether
// the learner caught up: a follower forwards the request to it.
func (s *Server) PromoteMember(ctx context.Context, id uint64) ([]*pb.Member, error) {
	ms, err := s.PromoteLocal(ctx, id)
	if !errors.Is(err, rpctypes.ErrGRPCNotLeader) {
		return ms, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout(s.cfg))
	defer cancel()
	for {
		if lead := s.node.Leader(); lead != 0 && lead != s.id {
			if cc, cerr := (leaseHost{s}).PeerConn(lead); cerr == nil {
				ms, err = clustersvc.ForwardPromote(ctx, cc, id)
				if err == nil || !retryablePromote(err) {
					return ms, err
				}
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, rpctypes.ErrGRPCTimeout
			}
			return nil, rpctypes.ErrGRPCCanceled
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// retryablePromote tells a forwarding failure worth another try (no
// leader there, a link down) from the leader's answer.
func retryablePromote(err error) bool {
	for _, e := range []error{rpctypes.ErrGRPCLearnerNotReady, rpctypes.ErrGRPCMemberNotFound,
		rpctypes.ErrGRPCMemberNotLearner, rpctypes.ErrMemberNotEnoughStarted, rpctypes.ErrGRPCPermissionDenied} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// PromoteLocal implements cluster.PeerBackend: the leader promotes a
// learner that caught up (90% of its log, as etcd), elsewhere it answers
// ErrGRPCNotLeader.
func (s *Server) PromoteLocal(ctx context.Context, id uint64) ([]*pb.Member, error) {
	st := s.node.Status()
	if st.RaftState != "StateLeader" {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	// Judge on the table as of everything committed (etcd's
	// waitAppliedIndex): the learner may have been added just now.
	wctx, cancel := context.WithTimeout(ctx, requestTimeout(s.cfg))
	err := s.node.WaitApplied(wctx, st.Commit)
	cancel()
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	m := s.members.Member(id)
	if m == nil {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if !m.IsLearner {
		return nil, rpctypes.ErrGRPCMemberNotLearner
	}
	switch err := s.node.LearnerReady(id); {
	case errors.Is(err, consensus.ErrNotLeader):
		return nil, rpctypes.ErrGRPCNotLeader
	case errors.Is(err, consensus.ErrLearnerNotReady):
		s.lg.Warn("rejecting promote learner: learner is not ready", zap.String("learner-id", toHex(id)))
		return nil, rpctypes.ErrGRPCLearnerNotReady
	case err != nil:
		return nil, rpctypes.ErrGRPCMemberNotLearner
	}
	if s.cfg.StrictReconfigCheck && !s.readyToPromote() {
		return nil, rpctypes.ErrMemberNotEnoughStarted
	}
	ms, err := s.configure(ctx, raftpb.ConfChangeAddNode, id, consensus.MemberContext{IsPromote: true})
	if err == nil {
		s.inst.learnerPromotions.Add(1)
	}
	return ms, err
}

// configure proposes one membership change and waits until it is applied
// here; it returns the members after it, or the change's refusal.
func (s *Server) configure(ctx context.Context, typ raftpb.ConfChangeType, id uint64, mc consensus.MemberContext) ([]*pb.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout(s.cfg))
	defer cancel()
	cc := &raftpb.ConfChangeV2{
		Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(id)}},
		Context: mc.Encode(),
	}
	if err := s.node.ProposeConfChange(ctx, cc); err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	s.lg.Info("applied a configuration change through raft",
		zap.String("raft-conf-change", typ.String()), zap.String("raft-conf-change-node-id", toHex(id)))
	return s.members.List(), nil
}

// votingMembers returns the members that vote.
func (s *Server) votingMembers() []*pb.Member {
	var out []*pb.Member
	for _, m := range s.members.List() {
		if !m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}

// connectedSince reports whether this member's link to id has been up
// since before t (etcd's isConnectedSince); this member counts as
// connected to itself.
func (s *Server) connectedSince(id uint64, t time.Time) bool {
	if id == s.id {
		return true
	}
	a := s.tr.ActiveSince(id)
	return !a.IsZero() && a.Before(t)
}

func (s *Server) numConnected(ms []*pb.Member) int {
	since := time.Now().Add(-healthInterval)
	n := 0
	for _, m := range ms {
		if s.connectedSince(m.ID, since) {
			n++
		}
	}
	return n
}

// mayAddMember is etcd's --strict-reconfig-check for MemberAdd: a new
// voter must not leave the cluster without a started quorum, and this
// member must be connected to a quorum of the grown cluster.
func (s *Server) mayAddMember(m *pb.Member) error {
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	voters := s.votingMembers()
	if !m.IsLearner {
		started := 0
		for _, v := range voters {
			if clustersvc.Started(v) {
				started++
			}
		}
		total := len(voters) + 1
		if !(started == 1 && total == 2) && started < total/2+1 {
			s.lg.Warn("rejecting member add request; not enough healthy members", zap.Int("started", started), zap.Int("members", total))
			return rpctypes.ErrMemberNotEnoughStarted
		}
	}
	if len(voters) > 1 && s.numConnected(voters) < (len(voters)+1)/2+1 {
		s.lg.Warn("rejecting member add request; local member has not been connected to majority peers, reconfigure breaks active quorum")
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// mayRemoveMember is etcd's --strict-reconfig-check for MemberRemove.
func (s *Server) mayRemoveMember(id uint64) error {
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	if m := s.members.Member(id); m != nil && m.IsLearner {
		return nil
	}
	voters := s.votingMembers()
	members, started := 0, 0
	for _, v := range voters {
		if v.ID == id {
			continue
		}
		members++
		if clustersvc.Started(v) {
			started++
		}
	}
	if started < members/2+1 {
		s.lg.Warn("rejecting member remove request; not enough healthy members", zap.String("requested-member-remove-id", toHex(id)))
		return rpctypes.ErrMemberNotEnoughStarted
	}
	if id != s.id && s.tr.ActiveSince(id).IsZero() {
		return nil // a member that is down is not part of the active quorum
	}
	if active := s.numConnected(voters); active-1 < 1+(len(voters)-1)/2 {
		s.lg.Warn("rejecting member remove request; local member has not been connected to all peers, reconfigure breaks active quorum",
			zap.Int("active-peers", active))
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// readyToPromote is etcd's IsReadyToPromoteMember: the learner counts as
// a started voter.
func (s *Server) readyToPromote() bool {
	members, started := 1, 1
	for _, v := range s.votingMembers() {
		members++
		if clustersvc.Started(v) {
			started++
		}
	}
	return started >= members/2+1
}

// transferee picks the voter (other than except) whose link has been up
// longest, as etcd's longestConnected.
func (s *Server) transferee(except uint64) (uint64, bool) {
	var best uint64
	var oldest time.Time
	for _, m := range s.votingMembers() {
		if m.ID == s.id || m.ID == except {
			continue
		}
		if t := s.tr.ActiveSince(m.ID); !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			best, oldest = m.ID, t
		}
	}
	return best, best != 0
}

// handOverLeadership moves leadership to a connected voter before this
// member stops, as etcd does on a graceful stop: the cluster's term moves
// by one instead of waiting an election timeout.
func (s *Server) handOverLeadership() {
	if s.node.Leader() != s.id || s.members.IsLearner(s.id) {
		return
	}
	to, ok := s.transferee(s.id)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.electionTimeout())
	defer cancel()
	if err := s.node.TransferLeadership(ctx, to); err != nil {
		s.lg.Warn("leadership transfer failed", zap.String("transferee", toHex(to)), zap.Error(err))
		return
	}
	s.lg.Info("leadership transfer finished", zap.String("transferee", toHex(to)))
}

// autoPromote is MetaStore's --experimental-learner-auto-promote: the
// leader promotes a learner as soon as its log holds everything committed
// when it is looked at and its link is up, in one membership change.
func (s *Server) autoPromote(ctx context.Context) {
	defer s.wg.Done()
	if !s.cfg.LearnerAutoPromote {
		return
	}
	t := time.NewTicker(s.cfg.tickInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.node.Status()
		if st.RaftState != "StateLeader" {
			continue
		}
		for id, pr := range st.Progress {
			if !pr.IsLearner || !pr.RecentActive || pr.Match < st.Commit {
				continue
			}
			if s.cfg.StrictReconfigCheck && !s.readyToPromote() {
				continue
			}
			if _, err := s.configure(ctx, raftpb.ConfChangeAddNode, id, consensus.MemberContext{IsPromote: true}); err != nil {
				s.lg.Info("learner auto-promotion did not apply", zap.String("learner-id", toHex(id)), zap.Error(err))
				continue
			}
			s.lg.Info("promoted a caught-up learner", zap.String("learner-id", toHex(id)))
		}
	}
}

// watchRemoval stops this member once it knows the cluster removed it,
// after a delay that lets the change reach the others (as etcd's
// stopWithDelay).
func (s *Server) watchRemoval(ctx context.Context) {
	defer s.wg.Done()
	select {
	case <-ctx.Done():
		return
	case <-s.node.Removed():
	}
	s.removed.Store(true)
	s.lg.Warn(errMemberRemoved.Error())
	if s.members.Member(s.id) == nil {
		// It applied its own removal: a moment lets the answer to a
		// MemberRemove it was asked reach the client, and a removed
		// leader's commit index the others (etcd waits a second). One a
		// peer refused stops at once.
		wait := 500 * time.Millisecond
		if s.node.Status().RaftState == "StateLeader" {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	go s.node.Stop()
}

// toChange decodes one change of a committed ConfChangeV2.
func toChange(ch *raftpb.ConfChangeSingle, context []byte) (clustersvc.Change, error) {
	c := clustersvc.Change{ID: ch.GetNodeId()}
	var mc consensus.MemberContext
	if len(context) > 0 {
		var err error
		if mc, err = consensus.ParseMemberContext(context); err != nil {
			return c, err
		}
	}
	c.Name, c.PeerURLs = mc.Name, mc.PeerURLs
	switch ch.GetType() {
	case raftpb.ConfChangeAddNode:
		c.Type = clustersvc.AddMember
		if mc.IsPromote || len(mc.PeerURLs) == 0 {
			c.Type = clustersvc.Promote
		}
	case raftpb.ConfChangeAddLearnerNode:
		c.Type = clustersvc.AddLearner
	case raftpb.ConfChangeRemoveNode:
		c.Type = clustersvc.Remove
	case raftpb.ConfChangeUpdateNode:
		c.Type = clustersvc.Update
	}
	return c, nil
}

// publish puts this member's name and client URLs into the replicated
// member table (etcd's ClusterMemberAttrSet), retrying until it lands.
func (s *Server) publish(ctx context.Context) {
	defer s.wg.Done()
	urls := strings.Split(s.cfg.AdvertiseClientURLs, ",")
	req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID: s.id, MemberAttributes: &membershippb.Attributes{Name: s.cfg.Name, ClientUrls: urls},
	}}
	select {
	case <-s.readyc:
	case <-ctx.Done():
		return
	}
	for !s.members.Published(s.id, urls) {
		pctx, cancel := context.WithTimeout(ctx, requestTimeout(s.cfg))
		_, err := s.propose(pctx, req)
		cancel()
		if err == nil {
			s.lg.Info("published local member to cluster through raft", zap.Strings("client-urls", urls))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// snapshotMethod is the one stream a learner serves (etcd's rule).
const snapshotMethod = "/etcdserverpb.Maintenance/Snapshot"

// unaryLearner refuses on a learner what etcd's learners refuse: all but
// Status and serializable Range.
func (s *Server) unaryLearner(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.members.IsLearner(s.id) && !learnerServes(req) {
		return nil, rpctypes.ErrGRPCNotSupportedForLearner
	}
	return handler(ctx, req)
}

func learnerServes(req any) bool {
	switch r := req.(type) {
	case *pb.StatusRequest:
		return true
	case *pb.RangeRequest:
		return r.Serializable
	}
	return false
}

// streamLearner refuses every stream but Snapshot on a learner.
func (s *Server) streamLearner(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if s.members.IsLearner(s.id) && info.FullMethod != snapshotMethod {
		return rpctypes.ErrGRPCNotSupportedForLearner
	}
	return handler(srv, ss)
}

// dropPeerConn closes the cached client connection to a member whose
// peer URLs changed or that left.
func (s *Server) dropPeerConn(id uint64) {
	s.peerConnMu.Lock()
	cc := s.peerConns[id]
	delete(s.peerConns, id)
	s.peerConnMu.Unlock()
	if cc != nil {
		cc.Close()
	}
}

// RaftStatus returns this member's Raft state (leader, term, voters,
// learners; the leader's view of each peer's replication).
func (s *Server) RaftStatus() consensus.Status { return s.node.Status() }
