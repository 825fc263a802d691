package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/server/internal/testcluster"
)

// loadWriter writes keys through c until stopped and remembers every
// write the cluster acknowledged.
type loadWriter struct {
	c     *clientv3.Client
	mu    sync.Mutex
	acked []string
	fails atomic.Int64
	stop  chan struct{}
	done  chan struct{}
}

func startLoad(t *testing.T, c *clientv3.Client, prefix string) *loadWriter {
	w := &loadWriter{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			k := fmt.Sprintf("%s%06d", prefix, i)
			cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := w.c.Put(cctx, k, "v")
			cancel()
			if err != nil {
				w.fails.Add(1)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			w.mu.Lock()
			w.acked = append(w.acked, k)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *loadWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *loadWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitProgress waits until n more writes were acknowledged.
func (w *loadWriter) waitProgress(t *testing.T, n int) {
	t.Helper()
	start := w.count()
	require.Eventually(t, func() bool { return w.count() >= start+n }, 20*time.Second, 5*time.Millisecond, "writes go on")
}

// requireAllAcked asserts that every acknowledged write is on every member
// (a serializable read of each member's own state, after it caught up),
// and that the members hash the key space alike.
func requireAllAcked(t *testing.T, ms testcluster.Members, w *loadWriter, prefix string) {
	t.Helper()
	w.mu.Lock()
	acked := append([]string(nil), w.acked...)
	w.mu.Unlock()
	c := testcluster.Client(t, ms...)
	rev, err := c.Get(ctx(t), "sync-point")
	require.NoError(t, err)
	for _, m := range ms {
		mc := testcluster.Client(t, m)
		require.Eventually(t, func() bool {
			r, err := mc.Get(ctx(t), "sync-point", clientv3.WithSerializable())
			return err == nil && r.Header.Revision >= rev.Header.Revision
		}, 20*time.Second, 10*time.Millisecond, "%s catches up", m.Cfg.Name)
		r, err := mc.Get(ctx(t), prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSerializable(),
			clientv3.WithRev(rev.Header.Revision))
		require.NoError(t, err)
		have := map[string]bool{}
		for _, kv := range r.Kvs {
			have[string(kv.Key)] = true
		}
		for _, k := range acked {
			require.True(t, have[k], "%s lost acknowledged write %s", m.Cfg.Name, k)
		}
	}
	testcluster.RequireSameHashKV(t, ms, rev.Header.Revision)
}

func memberIDs(t *testing.T, c *clientv3.Client) map[uint64]bool {
	t.Helper()
	r, err := c.MemberList(ctx(t))
	require.NoError(t, err)
	out := map[uint64]bool{}
	for _, m := range r.Members {
		out[m.ID] = m.IsLearner
	}
	return out
}

// join adds m through c (retrying while the cluster is not healthy enough
// for --strict-reconfig-check), starts it and waits until it serves.
func join(t *testing.T, c *clientv3.Client, m *testcluster.Member, learner bool) uint64 {
	t.Helper()
	var id uint64
	require.Eventually(t, func() bool {
		var err error
		id, err = testcluster.AddMember(ctx(t), c, m, learner)
		if errors.Is(err, rpctypes.ErrUnhealthy) || errors.Is(err, rpctypes.ErrMemberNotEnoughStarted) {
			return false
		}
		require.NoError(t, err)
		return true
	}, 20*time.Second, 50*time.Millisecond)
	m.Start()
	m.WaitReady()
	require.Equal(t, id, m.Srv.ID(), "the joined member takes the ID MemberAdd gave it")
	return id
}

func removeMember(t *testing.T, c *clientv3.Client, id uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := c.MemberRemove(ctx(t), id)
		switch {
		case errors.Is(err, rpctypes.ErrUnhealthy):
			return false
		case errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
			errors.Is(err, rpctypes.ErrLeaderChanged), errors.Is(err, rpctypes.ErrNoLeader):
			// Removing the leader moves leadership: the answer may be lost
			// (as with etcd), the removal not. Ask again; a second removal
			// of a removed member is ErrMemberNotFound.
			return false
		case errors.Is(err, rpctypes.ErrMemberNotFound):
			return true
		}
		require.NoError(t, err)
		return true
	}, 30*time.Second, 50*time.Millisecond)
}

func waitStopped(t *testing.T, m *testcluster.Member) {
	t.Helper()
	select {
	case <-m.Srv.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop after its removal", m.Cfg.Name)
	}
	require.True(t, m.Srv.Removed(), "%s knows it was removed", m.Cfg.Name)
	require.NoError(t, m.Srv.Err())
}

// TestMembershipGrowAndShrinkUnderLoad grows a cluster 1 → 3 → 5 and
// shrinks it 5 → 3 → 1 (the leader among the removed) while a client
// writes: after every step each acknowledged write is on every member and
// they hash alike.
func TestMembershipGrowAndShrinkUnderLoad(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms...)
	w := startLoad(t, c, "load/")
	w.waitProgress(t, 50)
	for i := 1; i < 5; i++ {
		m := ms.NewMember(t, fmt.Sprint("m", i))
		join(t, c, m, false)
		ms = append(ms, m)
		c.SetEndpoints(ms.Endpoints()...)
		w.waitProgress(t, 50)
		if i == 2 || i == 4 {
			requireAllAcked(t, ms, w, "load/")
			require.Len(t, memberIDs(t, c), len(ms))
		}
	}
	for len(ms) > 1 {
		// Remove the leader first, then followers.
		victim := 0
		for i, m := range ms {
			if m.Srv.ID() == ms[0].Srv.RaftStatus().Lead {
				victim = i
			}
		}
		gone := ms[victim]
		rest := append(append(testcluster.Members{}, ms[:victim]...), ms[victim+1:]...)
		c.SetEndpoints(rest.Endpoints()...)
		removeMember(t, testcluster.Client(t, rest[0]), gone.Srv.ID())
		waitStopped(t, gone)
		ms = rest
		w.waitProgress(t, 50)
		if len(ms) == 3 || len(ms) == 1 {
			requireAllAcked(t, ms, w, "load/")
			require.Len(t, memberIDs(t, c), len(ms))
		}
	}
	w.halt()
	requireAllAcked(t, ms, w, "load/")
	t.Logf("%d writes acknowledged, %d failed or timed out during changes", w.count(), w.fails.Load())
}

// TestReplaceWipedMember replaces a member that lost its data dir, under
// load: remove it, add it back on the same peer URL, start it on an empty
// data dir with --initial-cluster-state existing.
func TestReplaceWipedMember(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 3)
	c := testcluster.Client(t, ms...)
	w := startLoad(t, c, "r/")
	w.waitProgress(t, 100)
	lost := ms[2]
	oldID := lost.Srv.ID()
	lost.Stop()
	require.NoError(t, os.RemoveAll(lost.Cfg.DataDir))
	c.SetEndpoints(ms[:2].Endpoints()...)
	removeMember(t, c, oldID)
	w.waitProgress(t, 50)

	m := ms[:2].NewMember(t, lost.Cfg.Name)
	m.Cfg.ListenPeerURLs, m.Cfg.InitialAdvertisePeerURLs = lost.Cfg.ListenPeerURLs, lost.Cfg.InitialAdvertisePeerURLs
	id := join(t, c, m, false)
	require.NotEqual(t, oldID, id)
	ms = testcluster.Members{ms[0], ms[1], m}
	c.SetEndpoints(ms.Endpoints()...)
	w.waitProgress(t, 100)
	w.halt()
	requireAllAcked(t, ms, w, "r/")
	ids := memberIDs(t, c)
	require.Len(t, ids, 3)
	require.NotContains(t, ids, oldID)
}

// TestRemovedMemberStopsWhenStarted removes a member that is down; started
// again on its data dir it learns from its peers that it was removed and
// stops, without rejoining.
func TestRemovedMemberStopsWhenStarted(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 3)
	c := testcluster.Client(t, ms[0], ms[1])
	_, err := c.Put(ctx(t), "k", "v")
	require.NoError(t, err)
	down := ms[2]
	id := down.Srv.ID()
	down.Stop()
	removeMember(t, c, id)
	_, err = c.Put(ctx(t), "after", "v")
	require.NoError(t, err)
	down.Start()
	waitStopped(t, down)
	require.NotContains(t, memberIDs(t, c), id)
	testcluster.RequireSameHashKV(t, ms[:2], 0)
}

// TestRemoveLeaderHandsOver removes the leader: leadership moves first (a
// term's step, no election timeout), the removed leader stops, and
// writes go on.
func TestRemoveLeaderHandsOver(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 3)
	c := testcluster.Client(t, ms...)
	var lead *testcluster.Member
	require.Eventually(t, func() bool {
		for _, m := range ms {
			if m.Srv.ID() == m.Srv.RaftStatus().Lead {
				lead = m
			}
		}
		return lead != nil
	}, 10*time.Second, 10*time.Millisecond)
	term := lead.Srv.RaftStatus().Term
	time.Sleep(300 * time.Millisecond) // links count as connected
	var rest testcluster.Members
	for _, m := range ms {
		if m != lead {
			rest = append(rest, m)
		}
	}
	// Through a follower: it hands the leader's leadership over first.
	removeMember(t, testcluster.Client(t, rest[0]), lead.Srv.ID())
	waitStopped(t, lead)
	c.SetEndpoints(rest.Endpoints()...)
	_, err := c.Put(ctx(t), "k", "v")
	require.NoError(t, err)
	st := rest[0].Srv.RaftStatus()
	require.NotEqual(t, lead.Srv.ID(), st.Lead)
	require.Equal(t, term+1, st.Term, "leadership was handed over, not won in an election after a timeout")
}

// TestGracefulStopHandsOverLeadership stops the leader: it hands
// leadership to a voter first, so the term moves by one.
func TestGracefulStopHandsOverLeadership(t *testing.T) {
	ms := testcluster.Start(t, 3)
	time.Sleep(300 * time.Millisecond)
	for _, m := range ms {
		if st := m.Srv.RaftStatus(); st.Lead == m.Srv.ID() {
			m.Stop()
			for _, o := range ms {
				if o != m {
					require.Eventually(t, func() bool {
						s := o.Srv.RaftStatus()
						return s.Lead != 0 && s.Lead != m.Srv.ID()
					}, 10*time.Second, 5*time.Millisecond)
					require.Equal(t, st.Term+1, o.Srv.RaftStatus().Term)
				}
			}
			return
		}
	}
	t.Fatal("no leader")
}

// TestLearners adds a learner and checks etcd's rules: promoting it before
// it caught up fails, a learner serves only Status and serializable
// reads, promotion works from any member once it caught up, and the
// errors of bad changes are etcd's.
func TestLearners(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 3)
	c := testcluster.Client(t, ms...)
	for i := range 200 {
		_, err := c.Put(ctx(t), fmt.Sprint("k", i), "v")
		require.NoError(t, err)
	}
	l := ms.NewMember(t, "learner")
	var id uint64
	require.Eventually(t, func() bool {
		var err error
		id, err = testcluster.AddMember(ctx(t), c, l, true)
		return err == nil
	}, 20*time.Second, 50*time.Millisecond)
	_, err := c.MemberPromote(ctx(t), id)
	require.ErrorIs(t, err, rpctypes.ErrMemberLearnerNotReady, "it has not started: nothing replicated")
	other := ms.NewMember(t, "learner2")
	_, err = testcluster.AddMember(ctx(t), c, other, true)
	require.ErrorIs(t, err, rpctypes.ErrTooManyLearners, "--max-learners 1")

	l.Start()
	l.WaitReady()
	lc := testcluster.Client(t, l)
	require.Eventually(t, func() bool {
		r, err := lc.Get(ctx(t), "k199", clientv3.WithSerializable())
		return err == nil && len(r.Kvs) == 1
	}, 20*time.Second, 10*time.Millisecond, "the learner replicates")
	_, err = lc.Get(ctx(t), "k1")
	requireLearnerRefused(t, err)
	_, err = lc.Put(ctx(t), "k", "v")
	requireLearnerRefused(t, err)
	_, err = lc.Status(ctx(t), l.Srv.ClientAddrs()[0])
	require.NoError(t, err)
	_, err = lc.MemberList(ctx(t))
	requireLearnerRefused(t, err)
	wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wr := <-lc.Watch(wctx, "k")
	requireLearnerRefused(t, wr.Err())

	// Promotion through a follower is forwarded to the leader.
	var follower *testcluster.Member
	for _, m := range ms {
		if m.Srv.RaftStatus().Lead != m.Srv.ID() {
			follower = m
		}
	}
	fc := testcluster.Client(t, follower)
	require.Eventually(t, func() bool {
		_, err := fc.MemberPromote(ctx(t), id)
		return err == nil
	}, 20*time.Second, 20*time.Millisecond)
	require.False(t, memberIDs(t, c)[id], "promoted")
	promotions := 0.0
	for _, m := range ms {
		_, body := httpGet(t, "http://"+m.Srv.ClientAddrs()[0]+"/metrics")
		promotions += metricValue(body, "etcd_server_learner_promote_successes")
	}
	require.Equal(t, 1.0, promotions, "counted once, by the leader that promoted it")
	_, err = c.MemberPromote(ctx(t), id)
	require.ErrorIs(t, err, rpctypes.ErrMemberNotLearner)
	require.Eventually(t, func() bool {
		_, err = lc.Put(ctx(t), "k", "v")
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "a voter serves writes once it applied its promotion: %v", err)

	// Bad changes get etcd's errors and change nothing.
	before := memberIDs(t, c)
	_, err = c.MemberAdd(ctx(t), []string{ms[1].Cfg.InitialAdvertisePeerURLs})
	require.ErrorIs(t, err, rpctypes.ErrPeerURLExist)
	_, err = pb.NewClusterClient(c.ActiveConnection()).MemberAdd(ctx(t), &pb.MemberAddRequest{PeerURLs: []string{"not a url"}})
	require.ErrorIs(t, err, rpctypes.ErrGRPCMemberBadURLs, "clientv3 checks URLs itself: this is the raw RPC")
	_, err = c.MemberRemove(ctx(t), 12345)
	require.ErrorIs(t, err, rpctypes.ErrMemberNotFound)
	_, err = c.MemberPromote(ctx(t), 12345)
	require.ErrorIs(t, err, rpctypes.ErrMemberNotFound)
	_, err = c.MemberUpdate(ctx(t), 12345, []string{"http://127.0.0.1:1"})
	require.ErrorIs(t, err, rpctypes.ErrMemberNotFound)
	_, err = c.MemberUpdate(ctx(t), id, []string{ms[0].Cfg.InitialAdvertisePeerURLs})
	require.ErrorIs(t, err, rpctypes.ErrPeerURLExist)
	require.Equal(t, before, memberIDs(t, c))

	// A member update moves a member's peer URL.
	ms = append(ms, l)
	all := testcluster.Client(t, ms...)
	_, err = all.MemberUpdate(ctx(t), id, []string{l.Cfg.InitialAdvertisePeerURLs})
	require.NoError(t, err)
	testcluster.RequireSameHashKV(t, ms, 0)
}

// TestLearnerAutoPromote: with --experimental-learner-auto-promote a
// learner becomes a voter once it caught up; without, it stays a learner.
func TestLearnerAutoPromote(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	for _, auto := range []bool{true, false} {
		t.Run(fmt.Sprint("auto=", auto), func(t *testing.T) {
			ms := testcluster.Start(t, 1, func(c *server.Config) { c.LearnerAutoPromote = auto })
			c := testcluster.Client(t, ms...)
			for i := range 100 {
				_, err := c.Put(ctx(t), fmt.Sprint("k", i), "v")
				require.NoError(t, err)
			}
			l := ms.NewMember(t, "learner")
			id := join(t, c, l, true)
			if auto {
				require.Eventually(t, func() bool { return !memberIDs(t, c)[id] }, 20*time.Second, 20*time.Millisecond)
				// The leader applied the promotion; the new voter may
				// not have yet, and until then it refuses writes as a
				// learner, as etcd's does.
				lc := testcluster.Client(t, l)
				var err error
				deadline := time.Now().Add(10 * time.Second)
				for {
					if _, err = lc.Put(ctx(t), "voter", "yes"); err == nil || time.Now().After(deadline) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				require.NoError(t, err, "put through the promoted member")
				return
			}
			time.Sleep(time.Second)
			require.True(t, memberIDs(t, c)[id], "still a learner")
		})
	}
}

// TestStrictReconfigCheck: etcd's --strict-reconfig-check refusals, and
// none with the check off.
func TestStrictReconfigCheck(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 3)
	c := testcluster.Client(t, ms[0], ms[1])
	time.Sleep(300 * time.Millisecond)
	ms[2].Stop()
	_, err := c.MemberAdd(ctx(t), []string{"http://127.0.0.1:1"})
	require.ErrorIs(t, err, rpctypes.ErrUnhealthy, "with one of three down a new voter would leave no quorum connected")
	_, err = c.MemberAddAsLearner(ctx(t), []string{"http://127.0.0.1:1"})
	require.ErrorIs(t, err, rpctypes.ErrUnhealthy)

	one := testcluster.Start(t, 1)
	oc := testcluster.Client(t, one...)
	_, err = oc.MemberRemove(ctx(t), one[0].Srv.ID())
	require.ErrorIs(t, err, rpctypes.ErrMemberNotEnoughStarted, "the last voter stays")
	resp, err := oc.MemberAddAsLearner(ctx(t), []string{"http://127.0.0.1:1"})
	require.NoError(t, err)
	_, err = oc.MemberPromote(ctx(t), resp.Member.ID)
	require.ErrorIs(t, err, rpctypes.ErrMemberLearnerNotReady)
	require.Len(t, memberIDs(t, oc), 2)
	_, err = oc.MemberRemove(ctx(t), resp.Member.ID)
	require.NoError(t, err, "a learner is removed without a quorum check")
}

// TestForceNewCluster restarts one member of a cluster that lost the
// others with --force-new-cluster: it serves alone, with its data, and
// can grow again.
func TestForceNewCluster(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 3)
	c := testcluster.Client(t, ms...)
	for i := range 50 {
		_, err := c.Put(ctx(t), fmt.Sprint("k", i), "v")
		require.NoError(t, err)
	}
	c.Close()
	// The survivor must hold every acknowledged write: as the operator's
	// guide says, pick the member with the highest Raft index. Here they
	// all catch up first.
	testcluster.RequireSameHashKV(t, ms, 0)
	for _, m := range ms {
		m.Stop()
	}
	survivor := ms[0]
	survivor.Cfg.ForceNewCluster = true
	survivor.Start()
	survivor.WaitReady()
	sc := testcluster.Client(t, survivor)
	r, err := sc.Get(ctx(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.EqualValues(t, 50, r.Count)
	_, err = sc.Put(ctx(t), "alone", "yes")
	require.NoError(t, err)
	require.Equal(t, map[uint64]bool{survivor.Srv.ID(): false}, memberIDs(t, sc))

	// Restarted without the flag it stays a one-member cluster, and grows.
	survivor.Cfg.ForceNewCluster = false
	survivor.Restart()
	sc = testcluster.Client(t, survivor)
	m := testcluster.Members{survivor}.NewMember(t, "again")
	join(t, sc, m, false)
	testcluster.RequireSameHashKV(t, testcluster.Members{survivor, m}, 0)
}

// TestJoinRefusesMismatchedCluster: a new member whose --initial-cluster
// does not describe the running cluster refuses to start with etcd's
// message.
func TestJoinRefusesMismatchedCluster(t *testing.T) {
	ms := testcluster.Start(t, 1)
	m := ms.NewMember(t, "new")
	m.Cfg.InitialCluster = ms[0].Cfg.InitialCluster + ",new=" + m.Cfg.InitialAdvertisePeerURLs
	_, err := server.New(m.Cfg, zap.NewNop())
	require.ErrorContains(t, err, "error validating peerURLs")
	require.ErrorContains(t, err, "member count is unequal")

	// Added, but started under another peer URL than MemberAdd's.
	c := testcluster.Client(t, ms...)
	_, err = testcluster.AddMember(ctx(t), c, m, true)
	require.NoError(t, err)
	m.Cfg.InitialCluster = ms[0].Cfg.InitialCluster + ",new=http://127.0.0.1:9"
	_, err = server.New(m.Cfg, zap.NewNop())
	require.ErrorContains(t, err, "PeerURLs: no match found for existing member")
}

func requireLearnerRefused(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, rpctypes.ErrorDesc(rpctypes.ErrGRPCNotSupportedForLearner), rpctypes.ErrorDesc(err))
}

// TestConcurrentMembershipChanges proposes two changes at once: Raft
// takes one change at a time, so each either applies or fails (a second
// one proposed while the first is pending times out, as on etcd); the
// member list is exactly the changes that were acknowledged, and writes
// go on.
func TestConcurrentMembershipChanges(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 3, func(c *server.Config) { c.MaxLearners = 2 })
	c := testcluster.Client(t, ms...)
	time.Sleep(300 * time.Millisecond)
	before := memberIDs(t, c)
	var wg sync.WaitGroup
	ids := make([]uint64, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			r, err := c.MemberAddAsLearner(ctx(t), []string{fmt.Sprintf("http://127.0.0.1:%d", 1+i)})
			if err == nil {
				ids[i] = r.Member.ID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	after := memberIDs(t, c)
	want := len(before)
	for i, err := range errs {
		if err == nil {
			want++
			require.Contains(t, after, ids[i])
			continue
		}
		require.ErrorIs(t, err, rpctypes.ErrTimeout, "a change dropped as pending times out, as on etcd")
	}
	require.Len(t, after, want, "exactly the acknowledged changes: %v", errs)
	require.Greater(t, want, len(before), "at least one applied")
	_, err := c.Put(ctx(t), "k", "v")
	require.NoError(t, err)
}

// TestJoinFromSnapshot: a member joining after the log was compacted gets
// the leader's live snapshot — whose configuration must name the new
// member, added after the last saved snapshot, or Raft on the new member
// refuses it (the join then never completed).
func TestJoinFromSnapshot(t *testing.T) {
	defer server.SetHealthInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 1, func(c *server.Config) { c.SnapshotCount, c.SnapshotCatchUpEntries = 100, 10 })
	c := testcluster.Client(t, ms...)
	for i := range 400 {
		_, err := c.Put(ctx(t), fmt.Sprint("k", i), "v")
		require.NoError(t, err)
	}
	for _, learner := range []bool{true, false} {
		m := ms.NewMember(t, fmt.Sprint("new-", learner))
		join(t, c, m, learner)
		mc := testcluster.Client(t, m)
		require.Eventually(t, func() bool {
			r, err := mc.Get(ctx(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
			return err == nil && r.Count == 400
		}, 20*time.Second, 10*time.Millisecond, "the new member holds every key")
		ms = append(ms, m)
		if learner {
			require.Eventually(t, func() bool { _, err := c.MemberPromote(ctx(t), m.Srv.ID()); return err == nil }, 20*time.Second, 20*time.Millisecond)
		}
		for i := range 150 { // past the next snapshot
			_, err := c.Put(ctx(t), fmt.Sprint("more", i), "v")
			require.NoError(t, err)
		}
	}
	testcluster.RequireSameHashKV(t, ms, 0)
}
