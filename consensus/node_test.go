package consensus_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus"
	"github.com/metastore/metastore/consensus/consensustest"
	"github.com/metastore/metastore/consensus/wal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func propose(t *testing.T, n *consensus.Node[uint64], data string) uint64 {
	t.Helper()
	res, err := n.Propose(ctx(t), []byte(data))
	require.NoError(t, err)
	return res
}

func TestSingleNodeRestartKeepsLog(t *testing.T) {
	c := consensustest.NewCluster(t, 1, consensustest.Options{})
	c.WaitLeader(ctx(t))
	m := c.Members[1]
	var last uint64
	for i := range 20 {
		last = propose(t, m.Node, fmt.Sprintf("k%d=v%d", i, i))
	}
	require.Equal(t, 20, m.SM.Len())
	st := m.Node.Status()
	require.EqualValues(t, 1, st.Lead)
	require.LessOrEqual(t, st.Fsyncs, st.ReadyBatches, "at most one fsync per Ready batch")

	c.Stop(1)
	c.Restart(1) // the in-memory state machine starts empty: the log replays
	c.WaitLeader(ctx(t))
	require.NoError(t, m.Node.WaitApplied(ctx(t), last))
	require.Equal(t, 20, m.SM.Len())
	v, _ := m.SM.Get("k19")
	require.Equal(t, "v19", v)
	require.Greater(t, propose(t, m.Node, "after=restart"), last)
}

func TestReplicationAndFollowerProposals(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{})
	lead := c.WaitLeader(ctx(t))
	var idx uint64
	for id := uint64(1); id <= 3; id++ { // followers forward proposals
		idx = propose(t, c.Members[id].Node, fmt.Sprintf("from%d=x", id))
	}
	c.WaitApplied(ctx(t), idx, 1, 2, 3)
	for id := uint64(1); id <= 3; id++ {
		require.Equal(t, c.Members[lead].SM.Copy(), c.Members[id].SM.Copy())
	}
	st := c.Members[lead].Node.Status()
	require.Equal(t, "StateLeader", st.RaftState)
	require.Len(t, st.Progress, 3)
	require.ElementsMatch(t, []uint64{1, 2, 3}, st.Voters)
}

func TestLeaderIsolationAndCatchUp(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{})
	old := c.WaitLeader(ctx(t))
	propose(t, c.Members[old].Node, "before=1")
	c.Net.Isolate(old, 1, 2, 3)
	var rest []uint64
	for id := uint64(1); id <= 3; id++ {
		if id != old {
			rest = append(rest, id)
		}
	}
	var lead uint64
	require.Eventually(t, func() bool {
		a, b := c.Members[rest[0]].Node.Leader(), c.Members[rest[1]].Node.Leader()
		lead = a
		return a == b && a != 0 && a != old
	}, 10*time.Second, 5*time.Millisecond, "the majority elects a new leader")
	var idx uint64
	for i := range 10 {
		idx = propose(t, c.Members[lead].Node, fmt.Sprintf("during%d=x", i))
	}
	// The isolated old leader cannot commit anything.
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Members[old].Node.Propose(short, []byte("lost=1"))
	require.Error(t, err)
	c.Net.Heal()
	c.WaitApplied(ctx(t), idx, 1, 2, 3)
	require.Equal(t, c.Members[lead].SM.Log(), c.Members[old].SM.Log(), "logs are identical after healing")
	_, ok := c.Members[lead].SM.Get("lost")
	require.False(t, ok)
}

func TestNoLeaderError(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{})
	lead := c.WaitLeader(ctx(t))
	follower := lead%3 + 1
	c.Net.Isolate(follower, 1, 2, 3)
	require.Eventually(t, func() bool { return c.Members[follower].Node.Leader() == 0 }, 10*time.Second, 10*time.Millisecond)
	_, err := c.Members[follower].Node.Propose(ctx(t), []byte("x=1"))
	require.ErrorIs(t, err, consensus.ErrNoLeader)
	_, err = c.Members[follower].Node.ReadIndex(ctx(t))
	require.ErrorIs(t, err, consensus.ErrNoLeader)
}

func TestSnapshotCatchUp(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{SnapshotCount: 50, CatchUp: 10})
	lead := c.WaitLeader(ctx(t))
	lagging := lead%3 + 1
	c.Stop(lagging)
	var idx uint64
	for i := range 300 {
		idx = propose(t, c.Members[lead].Node, fmt.Sprintf("k%d=%d", i, i))
	}
	c.Restart(lagging)
	c.WaitApplied(ctx(t), idx, lagging)
	m := c.Members[lagging]
	require.Positive(t, m.SM.Restores(), "the follower caught up from a snapshot")
	require.Equal(t, c.Members[lead].SM.Copy(), m.SM.Copy())

	// The leader itself restarts from its snapshot plus the log tail.
	c.Stop(lead)
	c.Restart(lead)
	c.WaitApplied(ctx(t), idx, lead)
	require.Equal(t, 300, c.Members[lead].SM.Len())
}

func TestReadIndexIsLinearizableAndBatched(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{})
	lead := c.WaitLeader(ctx(t))
	follower := lead%3 + 1
	idx := propose(t, c.Members[lead].Node, "x=1")
	got, err := c.Members[follower].Node.ReadIndex(ctx(t))
	require.NoError(t, err)
	require.GreaterOrEqual(t, got, idx)
	v, ok := c.Members[follower].SM.Get("x")
	require.True(t, ok, "ReadIndex returns once the write is applied locally")
	require.Equal(t, "1", v)

	before := c.Members[follower].Node.Status().ReadRounds
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			_, err := c.Members[follower].Node.ReadIndex(ctx(t))
			require.NoError(t, err)
		})
	}
	wg.Wait()
	rounds := c.Members[follower].Node.Status().ReadRounds - before
	require.Less(t, rounds, uint64(200), "concurrent readers share rounds")
	t.Logf("200 concurrent reads took %d ReadIndex rounds", rounds)
}

func TestLearnerPromoteRemove(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{})
	lead := c.WaitLeader(ctx(t))
	ln := c.Members[lead].Node
	idx := propose(t, ln, "a=1")

	c.AddMember(4)
	require.NoError(t, ln.ProposeConfChange(ctx(t), &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: proto.Uint64(4)},
	}, Context: []byte("m4")}))
	require.NoError(t, c.Members[4].Node.WaitApplied(ctx(t), idx))
	st := ln.Status()
	require.Contains(t, st.Learners, uint64(4))
	require.True(t, st.Progress[4].IsLearner)
	require.Eventually(t, func() bool { return ln.Status().Progress[4].Match >= idx }, 10*time.Second, 10*time.Millisecond,
		"the learner catches up, visible in the leader's progress")

	require.ErrorIs(t, ln.PromoteLearner(ctx(t), lead%3+1, nil), consensus.ErrMemberNotLearner)
	follower := lead%3 + 1
	require.ErrorIs(t, c.Members[follower].Node.PromoteLearner(ctx(t), 4, nil), consensus.ErrNotLeader)
	require.NoError(t, ln.PromoteLearner(ctx(t), 4, nil))
	require.Contains(t, ln.Status().Voters, uint64(4))
	require.ElementsMatch(t, []uint64{1, 2, 3, 4}, c.Members[lead].SM.Members())

	victim := lead%3 + 1
	require.NoError(t, ln.ProposeConfChange(ctx(t), &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(victim)},
	}}))
	require.NotContains(t, ln.Status().Voters, victim)
	idx = propose(t, ln, "after=remove")
	var others []uint64
	for id := uint64(1); id <= 4; id++ {
		if id != victim {
			others = append(others, id)
		}
	}
	c.WaitApplied(ctx(t), idx, others...)
	// The removed member can no longer commit anything (it learns of its
	// removal only if it applies the entry; the server's transport also
	// refuses it).
	short, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := c.Members[victim].Node.Propose(short, []byte("x=1"))
	require.Error(t, err)
}

func TestTransferLeadership(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{})
	lead := c.WaitLeader(ctx(t))
	target := lead%3 + 1
	propose(t, c.Members[lead].Node, "x=1")
	require.NoError(t, c.Members[lead].Node.TransferLeadership(ctx(t), target))
	require.Equal(t, target, c.WaitLeader(ctx(t)))
	require.GreaterOrEqual(t, c.Members[target].Node.Status().LeaderChanges, uint64(2), "the first leader, then the new one")
	propose(t, c.Members[target].Node, "y=2")
}

func TestWholeClusterRestart(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{SnapshotCount: 40, CatchUp: 5})
	lead := c.WaitLeader(ctx(t))
	var idx uint64
	for i := range 100 {
		idx = propose(t, c.Members[lead].Node, fmt.Sprintf("k%d=%d", i, i))
	}
	c.WaitApplied(ctx(t), idx, 1, 2, 3)
	for id := uint64(1); id <= 3; id++ {
		c.Stop(id)
	}
	for id := uint64(1); id <= 3; id++ {
		c.Restart(id)
	}
	lead = c.WaitLeader(ctx(t))
	c.WaitApplied(ctx(t), idx, 1, 2, 3)
	for id := uint64(1); id <= 3; id++ {
		require.Equal(t, 100, c.Members[id].SM.Len(), "member %d", id)
	}
	propose(t, c.Members[lead].Node, "after=restart")
}

func TestConfigValidate(t *testing.T) {
	err := consensus.Config{ElectionTicks: 1, HeartbeatTicks: 1, Join: true, Peers: []consensus.Peer{{ID: 0}}}.Validate()
	require.Error(t, err)
	for _, want := range []string{"ID must not be 0", "Dir is required", "peer ID", "exclusive", "ElectionTicks (1)"} {
		require.Contains(t, err.Error(), want)
	}
	require.NoError(t, consensus.Config{ID: 1, Dir: "x"}.Validate())
}

// TestManualTicksDecideElections turns the clocks off: nobody campaigns
// until the test ticks one member past its election timeout.
func TestManualTicksDecideElections(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{ManualTick: true})
	for id := uint64(1); id <= 3; id++ {
		require.Zero(t, c.Members[id].Node.Leader(), "no election without ticks")
	}
	// Raft refuses to campaign before the bootstrap configuration (one
	// entry per member) is applied.
	c.WaitApplied(ctx(t), 3, 1, 2, 3)
	c.Tick(2*10, 2) // twice the election timeout, on member 2 only
	require.Equal(t, uint64(2), c.WaitLeader(ctx(t)))
	idx := propose(t, c.Members[2].Node, "x=1") // commits without further ticks
	c.WaitApplied(ctx(t), idx, 1, 2, 3)
}

// TestDelayAndDrop commits through a slow link and a lossy one.
func TestDelayAndDrop(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{})
	lead := c.WaitLeader(ctx(t))
	slow, lossy := lead%3+1, (lead+1)%3+1
	c.Net.Delay(lead, slow, 30*time.Millisecond)
	c.Net.Drop(lead, lossy, 0.3)
	c.Net.Drop(lossy, lead, 0.3)
	var idx uint64
	for i := range 30 {
		idx = propose(t, c.Members[lead].Node, fmt.Sprintf("k%d=v", i))
	}
	c.WaitApplied(ctx(t), idx, 1, 2, 3)
	require.Equal(t, c.Members[lead].SM.Copy(), c.Members[slow].SM.Copy())
	require.Equal(t, c.Members[lead].SM.Copy(), c.Members[lossy].SM.Copy())
}

func TestPromoteRefusesLaggingLearner(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{})
	lead := c.WaitLeader(ctx(t))
	ln := c.Members[lead].Node
	for i := range 100 {
		propose(t, ln, fmt.Sprintf("k%d=v", i))
	}
	c.AddMember(4)
	c.Net.Isolate(4, 1, 2, 3) // it cannot catch up
	require.NoError(t, ln.ProposeConfChange(ctx(t), &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: proto.Uint64(4)},
	}}))
	require.ErrorIs(t, ln.PromoteLearner(ctx(t), 4, nil), consensus.ErrLearnerNotReady)
	c.Net.Heal()
	require.Eventually(t, func() bool { return ln.PromoteLearner(ctx(t), 4, nil) == nil }, 20*time.Second, 20*time.Millisecond)
	require.Contains(t, ln.Status().Voters, uint64(4))
}

func TestMemberContext(t *testing.T) {
	mc := consensus.MemberContext{Name: "infra1", PeerURLs: []string{"http://127.0.0.1:2380"}}
	got, err := consensus.ParseMemberContext(mc.Encode())
	require.NoError(t, err)
	require.Equal(t, mc, got)
	got, err = consensus.ParseMemberContext([]byte("http://a:1, http://b:2"))
	require.NoError(t, err)
	require.Equal(t, []string{"http://a:1", "http://b:2"}, got.PeerURLs)
	_, err = consensus.ParseMemberContext(nil)
	require.Error(t, err)
	require.Equal(t, consensus.DefaultTickInterval, consensus.DefaultConfig().TickInterval)
	require.EqualValues(t, 10, consensus.DefaultConfig().ElectionTicks, "etcd: 1000 ms election timeout at 100 ms ticks")
}

// TestDurableStateMachineRestart: a state machine that keeps its state (and
// applied index) across restarts must not see entries twice, and Raft must
// still learn the membership from the replayed log — else a restarted
// member has no voters and can never elect a leader.
func TestDurableStateMachineRestart(t *testing.T) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprint("members=", size), func(t *testing.T) {
			c := consensustest.NewCluster(t, size, consensustest.Options{DurableSM: true})
			lead := c.WaitLeader(ctx(t))
			var idx uint64
			for i := range 20 {
				idx = propose(t, c.Members[lead].Node, fmt.Sprintf("k%d=v", i))
			}
			var ids []uint64
			for id := range c.Members {
				ids = append(ids, id)
			}
			c.WaitApplied(ctx(t), idx, ids...)
			before := len(c.Members[1].SM.Log())
			for _, id := range ids {
				c.Stop(id)
			}
			for _, id := range ids {
				c.Restart(id)
			}
			lead = c.WaitLeader(ctx(t))
			require.ElementsMatch(t, ids, c.Members[lead].Node.Status().Voters)
			idx = propose(t, c.Members[lead].Node, "after=restart")
			c.WaitApplied(ctx(t), idx, ids...)
			require.Len(t, c.Members[1].SM.Log(), before+1, "no entry applied twice")
		})
	}
}

// Committed entries are applied beside the Ready loop: while the state
// machine is slow, the node keeps persisting and committing new
// proposals (the apply of one batch overlaps the fsync of the next), and
// everything is applied in order once it catches up.
func TestApplyRunsBesideTheReadyLoop(t *testing.T) {
	c := consensustest.NewCluster(t, 1, consensustest.Options{})
	c.WaitLeader(ctx(t))
	m := c.Members[1]
	base := propose(t, m.Node, "before=1")
	release := m.SM.Hold()
	defer release()
	errc := make(chan error, 10)
	for i := range 10 {
		go func() {
			_, err := m.Node.Propose(ctx(t), fmt.Appendf(nil, "k%d=v", i))
			errc <- err
		}()
	}
	require.Eventually(t, func() bool { return m.Node.Status().Commit >= base+10 },
		10*time.Second, 5*time.Millisecond, "proposals commit while the state machine is stuck")
	require.Equal(t, base, m.Node.Status().Applied, "nothing applied meanwhile")
	release()
	for range 10 {
		require.NoError(t, <-errc)
	}
	require.NoError(t, m.Node.WaitApplied(ctx(t), base+10))
	require.Equal(t, 11, m.SM.Len())
	log := m.SM.Log()
	require.Len(t, log, 11)
}

// A member whose state machine cannot apply a committed entry (a storage
// failure) stops before applying anything after it; the entry's proposer
// gets ErrStopped, never a result. The others go on. Restarted, the
// member replays the entry from its applied index and ends with the same
// state as the others.
func TestApplyFailureStopsTheMemberAndRestartReplays(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{DurableSM: true})
	lead := c.WaitLeader(ctx(t))
	f := uint64(1)
	if f == lead {
		f = 2
	}
	m := c.Members[f]
	before := propose(t, m.Node, "a=1")
	c.WaitApplied(ctx(t), before, 1, 2, 3)
	m.SM.FailAt(before+2, errors.New("injected: disk I/O error"))
	require.Equal(t, before+1, propose(t, m.Node, "b=2"))
	_, err := m.Node.Propose(ctx(t), []byte("c=3"))
	require.ErrorIs(t, err, consensus.ErrStopped, "the proposer of the failed entry never sees a success")
	select {
	case <-m.Node.Done():
	case <-ctx(t).Done():
		t.Fatal("the member did not stop")
	}
	var ae *consensus.ApplyError
	require.ErrorAs(t, m.Node.Err(), &ae)
	require.Equal(t, before+2, ae.Index)
	require.Equal(t, before+1, m.SM.AppliedIndex(), "nothing after the failed entry was applied")
	_, ok := m.SM.Get("c")
	require.False(t, ok)

	// The others go on.
	last := propose(t, c.Members[lead].Node, "d=4")
	c.Stop(f)
	c.Restart(f)
	c.WaitApplied(ctx(t), last, 1, 2, 3)
	require.NoError(t, c.Members[f].Node.Err())
	require.Equal(t, c.Members[lead].SM.Copy(), c.Members[f].SM.Copy())
	v, _ := c.Members[f].SM.Get("c")
	require.Equal(t, "3", v, "the failed entry was applied on restart")
}

// slowDurableKV is a live-snapshot state machine whose DurableIndex (a
// memtable flush in MetaStore) blocks until released.
type slowDurableKV struct {
	*consensustest.KV
	gate  chan struct{}
	calls atomic.Int64
}

func (s *slowDurableKV) LiveSnapshots() bool { return true }
func (s *slowDurableKV) DurableIndex() uint64 {
	s.calls.Add(1)
	<-s.gate
	return s.AppliedIndex()
}

// The durable-index flush runs beside the Ready loop: while it is stuck,
// proposals keep committing (heartbeats and fsyncs do not wait for it).
func TestDurableIndexFlushDoesNotBlockTheReadyLoop(t *testing.T) {
	sm := &slowDurableKV{KV: consensustest.NewKV(), gate: make(chan struct{})}
	net := consensustest.NewNetwork()
	n, err := consensus.Start(consensus.Config{
		ID: 1, Dir: t.TempDir(), Peers: []consensus.Peer{{ID: 1, Context: []byte("m1")}},
		TickInterval: 10 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1,
		SnapshotCount: 5, SnapshotCatchUpEntries: 2, ReadIndexTimeout: 2 * time.Second,
		Logger: zaptest.NewLogger(t),
	}, sm, net.Transport(1))
	require.NoError(t, err)
	net.Register(1, n)
	var released sync.Once
	release := func() { released.Do(func() { close(sm.gate) }) }
	defer net.Close()
	defer n.Stop()
	defer release()
	require.Eventually(t, func() bool { return n.Leader() == 1 }, 10*time.Second, 10*time.Millisecond)
	for i := range 10 {
		propose(t, n, fmt.Sprintf("k%d=v", i))
	}
	require.Eventually(t, func() bool { return sm.calls.Load() > 0 }, 10*time.Second, 5*time.Millisecond,
		"a snapshot asked for the durable index")
	// The flush is stuck; the node still commits.
	for i := range 30 {
		propose(t, n, fmt.Sprintf("during%d=v", i))
	}
	release()
	for i := range 10 {
		propose(t, n, fmt.Sprintf("after%d=v", i))
	}
	require.Equal(t, 50, sm.Len())
}

// TestConfChangeRefused: a change the state machine refuses leaves Raft's
// configuration as it was, its proposer gets the refusal, the next change
// can be proposed at once, and a restart replays the refusal.
func TestConfChangeRefused(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{DurableSM: true})
	lead := c.WaitLeader(ctx(t))
	for _, m := range c.Members {
		m.SM.Refuse(9)
	}
	ln := c.Members[lead].Node
	err := ln.ProposeConfChange(ctx(t), &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(9)},
	}})
	require.ErrorIs(t, err, consensustest.ErrRefused)
	require.ElementsMatch(t, []uint64{1, 2, 3}, ln.Status().Voters)
	// Right after the answer another change is accepted: Raft was told.
	c.AddMember(4)
	require.NoError(t, ln.ProposeConfChange(ctx(t), &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: proto.Uint64(4)},
	}}))
	require.NoError(t, ln.ProposeConfChange(ctx(t), &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(4)},
	}}))
	idx := propose(t, ln, "after=changes")
	follower := lead%3 + 1
	c.WaitApplied(ctx(t), idx, follower)
	c.Stop(follower)
	c.Restart(follower)
	c.WaitApplied(ctx(t), idx, follower)
	st := c.Members[follower].Node.Status()
	require.ElementsMatch(t, []uint64{1, 2, 3}, st.Voters, "the replay refuses node 9 again")
	require.Empty(t, st.Learners)
}

// TestForceNewCluster restarts one member of three alone: it keeps its
// data, becomes leader of a one-member configuration and commits.
func TestForceNewCluster(t *testing.T) {
	c := consensustest.NewCluster(t, 3, consensustest.Options{DurableSM: true})
	lead := c.WaitLeader(ctx(t))
	idx := propose(t, c.Members[lead].Node, "a=1")
	c.WaitApplied(ctx(t), idx)
	for id := range c.Members {
		c.Stop(id)
	}
	c.RestartForced(1)
	n := c.Members[1].Node
	require.Equal(t, uint64(1), c.WaitLeader(ctx(t), 1))
	st := n.Status()
	require.Equal(t, []uint64{1}, st.Voters)
	v, ok := c.Members[1].SM.Get("a")
	require.True(t, ok)
	require.Equal(t, "1", v)
	propose(t, n, "b=2")
	c.Stop(1)
	c.Restart(1)
	require.Equal(t, uint64(1), c.WaitLeader(ctx(t), 1), "alone after a plain restart too")
	require.Equal(t, []uint64{1}, c.Members[1].Node.Status().Voters)
}

// TestSingleNodeReadAfterRestartSeesAcknowledgedWrites: a crash can leave
// the WAL's hard state with a commit index below entries the member had
// applied and acknowledged (raft does not sync a commit-only change).
// Restarted, a single member's ReadIndex must still cover them: raft
// answers a lone member with its commit index even before an entry of its
// new term is committed, so the node waits for that entry. Before, a
// linearizable read right after the restart could see an older revision
// than one already acknowledged (the robustness suite's slow-wal fault on
// one member).
func TestSingleNodeReadAfterRestartSeesAcknowledgedWrites(t *testing.T) {
	c := consensustest.NewCluster(t, 1, consensustest.Options{})
	c.WaitLeader(ctx(t))
	m := c.Members[1]
	var last uint64
	for i := range 20 {
		last = propose(t, m.Node, fmt.Sprintf("k%d=v%d", i, i))
	}
	c.Stop(1)
	// What a crash before the last commit index reached the disk leaves.
	w, st, err := wal.Open(filepath.Join(m.Dir, "wal"), wal.Options{})
	require.NoError(t, err)
	hs := proto.Clone(st.HardState).(*raftpb.HardState)
	hs.Commit = proto.Uint64(3)
	require.NoError(t, w.Save(hs, nil))
	require.NoError(t, w.Sync())
	require.NoError(t, w.Close())

	// Reads from the first moment: the window is the persisting of the
	// Ready that makes the member leader of its new term.
	c.Restart(1)
	for {
		rctx, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
		idx, err := m.Node.ReadIndex(rctx)
		cancel()
		if err != nil {
			continue
		}
		require.GreaterOrEqual(t, idx, last, "a read index below an acknowledged write")
		require.Equal(t, 20, m.SM.Len(), "the read would miss acknowledged writes")
		return
	}
}
