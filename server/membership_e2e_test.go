package server_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/server/internal/testcluster"
)

// binMember is one metastore process of the membership end-to-end tests.
type binMember struct {
	proc
	peer, dir string
}

func newBinMember(t *testing.T, dir, name string) *binMember {
	return &binMember{proc: proc{name: name, client: "http://" + testcluster.FreeAddr(t)},
		peer: "http://" + testcluster.FreeAddr(t), dir: filepath.Join(dir, name)}
}

// run starts the member with --initial-cluster cluster in state state.
func (m *binMember) run(t *testing.T, bin, cluster, state string, extra ...string) {
	m.args = append([]string{"--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", cluster, "--initial-cluster-state", state,
		"--heartbeat-interval", "20", "--election-timeout", "200"}, extra...)
	m.start(t, bin)
	t.Cleanup(func() {
		if m.cmd.ProcessState == nil {
			_ = m.cmd.Process.Kill()
			_ = m.cmd.Wait()
		}
	})
}

func (m *binMember) waitReady(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(m.logs.String(), "ready to serve client requests") },
		30*time.Second, 20*time.Millisecond, "%s serves: %s", m.name, m.logs)
}

// TestEtcdctlMembership drives runtime membership through the real
// etcdctl against the real binary, as an operator would: member add
// prints the environment the new member starts with, learners are added
// and promoted, peer URLs updated, and a removed member exits by itself.
func TestEtcdctlMembership(t *testing.T) {
	if testing.Short() && !ciRun() {
		t.Skip("builds etcdctl and runs server processes; runs in CI and without -short")
	}
	etcdctl, bin := buildEtcdctl(t), buildMetastore(t)
	dir := t.TempDir()
	m0 := newBinMember(t, dir, "m0")
	m0.run(t, bin, "m0="+m0.peer, "new")
	m0.waitReady(t)
	ctl := func(args ...string) (string, error) {
		out, err := exec.Command(etcdctl, append([]string{"--endpoints", m0.client}, args...)...).CombinedOutput()
		return string(out), err
	}

	// member add prints what the new member needs; it starts from exactly that.
	m1 := newBinMember(t, dir, "m1")
	out, err := ctl("member", "add", "m1", "--peer-urls", m1.peer)
	require.NoError(t, err, out)
	re := regexp.MustCompile(`^Member +([0-9a-f]+) added (?:as learner )?to cluster +([0-9a-f]+)\n\nETCD_NAME="(m\d)"\nETCD_INITIAL_CLUSTER="(.*)"\nETCD_INITIAL_ADVERTISE_PEER_URLS="(.*)"\nETCD_INITIAL_CLUSTER_STATE="existing"\n$`)
	mm := re.FindStringSubmatch(out)
	require.NotNil(t, mm, out)
	require.Equal(t, m1.peer, mm[5])
	// Serializable: with one of two voters not started there is no quorum
	// for a linearizable read (as on etcd).
	out, err = ctl("member", "list", "--consistency", "s")
	require.NoError(t, err, out)
	require.Contains(t, out, mm[1]+", unstarted, , "+m1.peer+", , false\n", "listed as etcd lists unstarted members")
	m1.run(t, bin, mm[4], "existing")
	m1.waitReady(t)
	require.Eventually(t, func() bool {
		out, _ := ctl("member", "list")
		return strings.Contains(out, mm[1]+", started, m1, "+m1.peer+", "+m1.client+", false\n")
	}, 20*time.Second, 50*time.Millisecond, "m1 publishes its name and client URL")

	// A learner: added, started, promoted.
	m2 := newBinMember(t, dir, "m2")
	var lout string
	require.Eventually(t, func() bool {
		lout, err = ctl("member", "add", "m2", "--learner", "--peer-urls", m2.peer)
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "member add --learner (etcd waits 5 s of healthy links): %s", lout)
	lm := re.FindStringSubmatch(lout)
	require.NotNil(t, lm, lout)
	require.Contains(t, lout, " added as learner to cluster ")
	m2.run(t, bin, lm[4], "existing")
	m2.waitReady(t)
	require.Eventually(t, func() bool {
		out, err = ctl("member", "promote", lm[1])
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "promote once caught up: %s", out)
	require.Equal(t, fmt.Sprintf("Member %16s promoted in cluster %16s\n", lm[1], lm[2]), out)
	out, err = ctl("member", "promote", lm[1])
	require.Error(t, err)
	require.Contains(t, out, "etcdserver: can only promote a learner member")

	// Update a peer URL (to the same address under another spelling).
	newPeer := strings.Replace(m2.peer, "127.0.0.1", "localhost", 1)
	out, err = ctl("member", "update", lm[1], "--peer-urls", newPeer)
	require.NoError(t, err, out)
	require.Equal(t, fmt.Sprintf("Member %16s updated in cluster %16s\n", lm[1], lm[2]), out)
	out, err = ctl("member", "list", "-w", "table")
	require.NoError(t, err, out)
	require.Contains(t, out, newPeer)

	// Remove m2: it exits by itself, with etcd's words and status 0.
	require.Eventually(t, func() bool {
		out, err = ctl("member", "remove", lm[1])
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "member remove: %s", out)
	require.Equal(t, fmt.Sprintf("Member %16s removed from cluster %16s\n", lm[1], lm[2]), out)
	done := make(chan error, 1)
	go func() { done <- m2.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status 0, as etcd")
	case <-time.After(20 * time.Second):
		t.Fatal("the removed member did not exit")
	}
	require.Contains(t, m2.logs.String(), "the member has been permanently removed from the cluster")
	out, err = ctl("member", "remove", lm[1])
	require.Error(t, err)
	require.Contains(t, out, "etcdserver: member not found")
	out, err = ctl("member", "list")
	require.NoError(t, err, out)
	require.Equal(t, 2, strings.Count(out, "\n"), out)
}

// TestKillLeaderDuringMembershipChange SIGKILLs the leader while a member
// is being added — once before the change can commit, once right after it
// did — and restarts it: every member ends with the same member list,
// which holds the new member exactly when its MemberAdd was acknowledged.
func TestKillLeaderDuringMembershipChange(t *testing.T) {
	if testing.Short() && !ciRun() {
		t.Skip("runs server processes; runs in CI and without -short")
	}
	bin := buildMetastore(t)
	dir := t.TempDir()
	ms := []*binMember{newBinMember(t, dir, "m0"), newBinMember(t, dir, "m1"), newBinMember(t, dir, "m2")}
	var initial []string
	var eps []string
	for _, m := range ms {
		initial = append(initial, m.name+"="+m.peer)
		eps = append(eps, strings.TrimPrefix(m.client, "http://"))
	}
	for _, m := range ms {
		m.run(t, bin, strings.Join(initial, ","), "new")
	}
	for _, m := range ms {
		m.waitReady(t)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c.Close()
	leader := func() int {
		idx := -1
		require.Eventually(t, func() bool {
			for i, ep := range eps {
				cctx, cancel := context.WithTimeout(t.Context(), time.Second)
				st, err := c.Status(cctx, ep)
				cancel()
				if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
					idx = i
					return true
				}
			}
			return false
		}, 30*time.Second, 50*time.Millisecond)
		return idx
	}
	for round, after := range []bool{false, true} {
		lead := leader()
		lc, err := clientv3.New(clientv3.Config{Endpoints: eps[lead : lead+1], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		require.NoError(t, err)
		peer := "http://" + testcluster.FreeAddr(t)
		var added uint64
		addErr := make(chan error, 1)
		go func() {
			actx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			for {
				resp, err := lc.MemberAddAsLearner(actx, []string{peer})
				if errors.Is(err, rpctypes.ErrUnhealthy) {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				if err == nil {
					added = resp.Member.ID
				}
				addErr <- err
				return
			}
		}()
		if after {
			require.NoError(t, <-addErr)
		} else {
			time.Sleep(time.Duration(round) * time.Millisecond) // as soon as it is proposed
		}
		require.NoError(t, ms[lead].cmd.Process.Signal(syscall.SIGKILL))
		_ = ms[lead].cmd.Wait()
		ackd := false
		if !after {
			ackd = <-addErr == nil
		} else {
			ackd = true
		}
		lc.Close()
		ms[lead].start(t, bin)
		ms[lead].waitReady(t)
		// Every member converges on one member list.
		var lists []string
		require.Eventually(t, func() bool {
			lists = lists[:0]
			for _, ep := range eps {
				mc, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
				if err != nil {
					return false
				}
				cctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				r, err := mc.MemberList(cctx)
				cancel()
				mc.Close()
				if err != nil {
					return false
				}
				var ids []string
				for _, m := range r.Members {
					ids = append(ids, strconv.FormatUint(m.ID, 16))
				}
				lists = append(lists, strings.Join(ids, ","))
			}
			return lists[0] == lists[1] && lists[1] == lists[2]
		}, 30*time.Second, 100*time.Millisecond, "members agree: %v", lists)
		if ackd && added != 0 {
			require.Contains(t, lists[0], strconv.FormatUint(added, 16), "an acknowledged MemberAdd is kept")
		}
		// Clean up the learner so the next round starts from three voters.
		r, err := c.MemberList(t.Context())
		require.NoError(t, err)
		for _, m := range r.Members {
			if m.IsLearner {
				_, err := c.MemberRemove(t.Context(), m.ID)
				require.NoError(t, err)
			}
		}
		pctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err = c.Put(pctx, fmt.Sprint("after-", round), "v")
		cancel()
		require.NoError(t, err)
	}
}
