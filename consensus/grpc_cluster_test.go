package consensus_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus"
	"github.com/metastore/metastore/consensus/consensustest"
	"github.com/metastore/metastore/consensus/transport"
)

// grpcMember is a node on a real gRPC listener with a real disk.
type grpcMember struct {
	id   uint64
	dir  string
	addr string
	lis  net.Listener
	srv  *grpc.Server
	tr   *transport.Transport
	node *consensus.Node[uint64]
	sm   *consensustest.KV
	live atomic.Pointer[consensus.Node[uint64]] // for the load goroutines
	join bool                                   // joins an existing cluster
}

type grpcCluster struct {
	t       *testing.T
	cluster uint64
	peers   []consensus.Peer
	members map[uint64]*grpcMember
}

func newGRPCCluster(t *testing.T, size int) *grpcCluster {
	c := &grpcCluster{t: t, cluster: 0xc1, members: map[uint64]*grpcMember{}}
	dir := t.TempDir()
	for i := 1; i <= size; i++ {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		m := &grpcMember{id: uint64(i), dir: filepath.Join(dir, fmt.Sprint(i)), lis: lis, addr: lis.Addr().String()}
		c.members[m.id] = m
		c.peers = append(c.peers, consensus.Peer{ID: m.id, Context: memberContext(m)})
	}
	for _, m := range c.members {
		c.start(m, c.peers)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			c.stop(m)
		}
	})
	return c
}

// memberContext is what MetaStore stores for a member: name and peer URLs.
func memberContext(m *grpcMember) []byte {
	return consensus.MemberContext{Name: fmt.Sprint("m", m.id), PeerURLs: []string{"http://" + m.addr}}.Encode()
}

func (c *grpcCluster) start(m *grpcMember, peers []consensus.Peer) {
	if m.lis == nil {
		lis, err := net.Listen("tcp", m.addr) // same port after a restart
		require.NoError(c.t, err)
		m.lis = lis
	}
	lg := zaptest.NewLogger(c.t).Named(fmt.Sprint("m", m.id))
	m.tr = transport.New(transport.Config{ID: m.id, ClusterID: c.cluster, Logger: lg})
	for _, p := range c.peers {
		if p.ID != m.id {
			m.tr.AddPeer(p.ID, p.Context)
		}
	}
	m.srv = grpc.NewServer(transport.ServerOptions()...)
	m.tr.Register(m.srv)
	go m.srv.Serve(m.lis)
	m.sm = consensustest.NewKV()
	n, err := consensus.Start(consensus.Config{
		ID: m.id, Dir: m.dir, Peers: peers, Join: m.join, TickInterval: 20 * time.Millisecond,
		SnapshotCount: 200, SnapshotCatchUpEntries: 20, Logger: lg,
	}, m.sm, m.tr)
	require.NoError(c.t, err)
	m.tr.SetHandler(n)
	m.node = n
	m.live.Store(n)
}

func (c *grpcCluster) stop(m *grpcMember) {
	if m.node == nil {
		return
	}
	m.live.Store(nil)
	m.node.Stop()
	m.srv.Stop()
	m.tr.Close()
	m.node, m.lis = nil, nil
}

// leader waits until members ids agree on a leader other than not.
func (c *grpcCluster) leader(ctx context.Context, not uint64, ids ...uint64) uint64 {
	for {
		lead := c.members[ids[0]].node.Leader()
		ok := lead != 0 && lead != not
		for _, id := range ids[1:] {
			ok = ok && c.members[id].node.Leader() == lead
		}
		if ok {
			return lead
		}
		select {
		case <-ctx.Done():
			c.t.Fatal("no leader")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestGRPCClusterSurvivesLeaderLoss runs 3 members over loopback gRPC with
// real fsyncs, writes under load, stops the leader mid-load, and checks that
// every acknowledged write is applied everywhere once it is back.
func TestGRPCClusterSurvivesLeaderLoss(t *testing.T) {
	c := newGRPCCluster(t, 3)
	lead := c.leader(ctx(t), 0, 1, 2, 3)

	load := startLoad(t, 8, func(_ int, key string) bool {
		for id := uint64(1); id <= 3; id++ {
			n := c.members[id].live.Load()
			if n == nil {
				continue
			}
			pctx, cancel := context.WithTimeout(t.Context(), time.Second)
			_, err := n.Propose(pctx, []byte(key+"=v"))
			cancel()
			if err == nil {
				return true
			}
		}
		return false
	})
	waitAcks := func(n int64) { load.WaitAcks(n, 20*time.Second) }
	waitAcks(200) // load before the failure
	c.stop(c.members[lead])
	var rest []uint64
	for id := uint64(1); id <= 3; id++ {
		if id != lead {
			rest = append(rest, id)
		}
	}
	newLead := c.leader(ctx(t), lead, rest...)
	require.NotEqual(t, lead, newLead)
	waitAcks(load.Count() + 200) // load after the failure
	c.start(c.members[lead], nil)
	waitAcks(load.Count() + 100) // and while it catches up
	load.Stop()

	idx, err := c.members[newLead].node.ReadIndex(ctx(t))
	require.NoError(t, err)
	for id := uint64(1); id <= 3; id++ {
		require.NoError(t, c.members[id].node.WaitApplied(ctx(t), idx))
	}
	for id := uint64(1); id <= 3; id++ {
		load.RequireHasAcked(id, c.members[id].sm.Copy())
	}
	require.Equal(t, c.members[rest[0]].sm.Copy(), c.members[lead].sm.Copy())
	stats := c.members[newLead].tr.Stats()
	for id, s := range stats {
		t.Logf("peer %d: %+v", id, s)
	}
	t.Logf("%d writes acknowledged", load.Count())
}

// TestGRPCMembershipAndTransfer adds a learner over gRPC, promotes it once
// it has caught up, hands it the leadership and removes the old leader.
func TestGRPCMembershipAndTransfer(t *testing.T) {
	c := newGRPCCluster(t, 3)
	lead := c.leader(ctx(t), 0, 1, 2, 3)
	ln := c.members[lead].node
	var idx uint64
	for i := range 50 {
		idx = propose(t, ln, fmt.Sprintf("k%d=v", i))
	}

	// A fourth member starts empty and waits to be contacted.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	m4 := &grpcMember{id: 4, dir: filepath.Join(t.TempDir(), "4"), lis: lis, addr: lis.Addr().String(), join: true}
	c.members[4] = m4
	c.peers = append(c.peers, consensus.Peer{ID: 4, Context: memberContext(m4)})
	c.start(m4, nil)
	require.Zero(t, m4.node.Leader(), "a joining member waits to be contacted")

	add := func(typ raftpb.ConfChangeType) {
		require.NoError(t, c.members[lead].node.ProposeConfChange(ctx(t), &raftpb.ConfChangeV2{
			Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(4)}},
			Context: memberContext(m4),
		}))
	}
	add(raftpb.ConfChangeAddLearnerNode)
	require.Eventually(t, func() bool {
		pr, ok := c.members[lead].node.Status().Progress[4]
		return ok && pr.IsLearner && pr.Match >= idx
	}, 20*time.Second, 10*time.Millisecond, "the learner catches up before promotion")
	add(raftpb.ConfChangeAddNode)
	require.Contains(t, c.members[lead].node.Status().Voters, uint64(4))

	require.NoError(t, c.members[lead].node.TransferLeadership(ctx(t), 4))
	require.Equal(t, uint64(4), c.leader(ctx(t), 0, 4))

	old := lead
	require.NoError(t, m4.node.ProposeConfChange(ctx(t), &raftpb.ConfChangeV2{
		Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(old)}},
	}))
	require.NotContains(t, m4.node.Status().Voters, old)
	idx = propose(t, m4.node, "after=remove")
	for id := uint64(1); id <= 4; id++ {
		if id != old {
			require.NoError(t, c.members[id].node.WaitApplied(ctx(t), idx))
			require.Equal(t, 51, c.members[id].sm.Len(), "member %d", id)
		}
	}
}
