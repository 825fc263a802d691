package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/robustness/model"
	"go.etcd.io/etcd/tests/v3/robustness/report"
	"go.uber.org/zap"

	"github.com/metastore/metastore/compat-tests/internal/powerfs"
	"github.com/metastore/metastore/compat-tests/internal/procs"
)

// fault is one entry of the fault table: what it does to a running
// cluster, on which sizes, and on which of them etcd runs it too as the
// reference.
type fault struct {
	name  string
	sizes []int
	// etcd lists the sizes the reference runs (every size when nil).
	etcd []int
	args []string // extra member flags
	// failpoints runs MetaStore's members from bin/metastore-failpoints.
	failpoints bool
	// network puts the peer links behind the test's proxies (procs.Net).
	network bool
	// power puts every member's data dir on a powerfs of its own, so that
	// the fault can cut one member's power (faultEnv.powerCut).
	power bool
	// inject applies the fault and returns once the cluster is whole
	// again: every member running and serving.
	inject func(context.Context, *faultEnv) error
}

func (f fault) reference(size int) bool {
	if f.etcd == nil {
		return true
	}
	for _, s := range f.etcd {
		if s == size {
			return true
		}
	}
	return false
}

// faults is the table TestRobustness runs; docs/robustness.md reports it.
var faults = []fault{
	{name: "none", sizes: []int{1, 3}, etcd: []int{3}, inject: func(context.Context, *faultEnv) error { return nil }},
	{name: "kill-random", sizes: []int{1, 3}, etcd: []int{3}, inject: func(ctx context.Context, e *faultEnv) error {
		return e.killAndRestart(ctx, e.rng.IntN(e.n))
	}},
	{name: "kill-leader", sizes: []int{3}, inject: func(ctx context.Context, e *faultEnv) error {
		i, err := e.leader(ctx)
		if err != nil {
			return err
		}
		return e.killAndRestart(ctx, i)
	}},
	{name: "kill-all", sizes: []int{3}, etcd: []int{}, inject: func(ctx context.Context, e *faultEnv) error {
		all := make([]int, e.n)
		for i := range all {
			all[i] = i
		}
		return e.killAndRestart(ctx, all...)
	}},
	{name: "replace-member", sizes: []int{3}, inject: func(ctx context.Context, e *faultEnv) error {
		// An operator replaces a machine: a random member (the leader,
		// as often as not) is removed, its data dir emptied, and a new
		// member added under its name and URLs, which catches up from
		// the others under the traffic.
		i := e.rng.IntN(e.n)
		t0 := time.Now()
		if err := e.c.Replace(ctx, i); err != nil {
			return err
		}
		if err := e.serving(ctx, i); err != nil {
			return err
		}
		e.recovery = max(e.recovery, time.Since(t0))
		return nil
	}},
	{name: "pause-leader", sizes: []int{1, 3}, etcd: []int{3}, inject: func(ctx context.Context, e *faultEnv) error {
		i, err := e.leader(ctx)
		if err != nil {
			return err
		}
		return e.pause(ctx, i, 2*time.Second+time.Duration(e.rng.Int64N(int64(3*time.Second))))
	}},
	{name: "pause-follower-snapshot", sizes: []int{3}, etcd: []int{}, args: []string{"--snapshot-count=100", "--snapshot-catchup-entries=100"},
		inject: func(ctx context.Context, e *faultEnv) error {
			// Paused for 4 s (about 1,000 entries), a follower falls behind
			// what the leader keeps (100 entries after a snapshot every
			// 100): it must catch up by snapshot, its watchers with it.
			i, err := e.follower(ctx)
			if err != nil {
				return err
			}
			// Under a slow traffic (CI's parallel runs) 4 s may leave it
			// within what the leader keeps: then it is paused again, longer.
			var serr error
			for try := 1; try <= 3; try++ {
				if err := e.pause(ctx, i, time.Duration(try)*4*time.Second); err != nil {
					return err
				}
				if serr = e.snapshotApplied(i, 10*time.Second); serr == nil {
					return nil
				}
			}
			return serr
		}},
	{name: "power-cut-random", sizes: []int{1, 3}, etcd: []int{}, power: true, inject: func(ctx context.Context, e *faultEnv) error {
		// A random member loses its power: SIGKILLed, every write its
		// data dir had not fsynced is gone, and it starts again.
		return e.powerCut(ctx, e.rng.IntN(e.n))
	}},
	{name: "power-cut-leader-partitioned", sizes: []int{3}, etcd: []int{}, power: true, network: true,
		inject: func(ctx context.Context, e *faultEnv) error {
			// The leader is cut off; once the others elect another, it
			// (still taking proposals it cannot commit) loses its power,
			// and starts again as the links heal.
			i, err := e.leader(ctx)
			if err != nil {
				return err
			}
			if err := e.linksNamed(); err != nil {
				return err
			}
			t0 := time.Now()
			e.c.Net.Isolate(i, procs.Link{Blackhole: true})
			if err := e.waitOtherLeader(ctx, i, t0); err != nil {
				e.c.Net.Heal()
				return err
			}
			time.Sleep(time.Duration(500+e.rng.IntN(1000)) * time.Millisecond)
			return e.powerCutThen(ctx, e.c.Net.Heal, i)
		}},
	{name: "power-cut-all-lagging", sizes: []int{3}, etcd: []int{}, power: true, network: true,
		inject: func(ctx context.Context, e *faultEnv) error {
			// A follower falls behind, cut off; then every member loses its
			// power at once, and all start again as the links heal: the
			// lagging log must not win an election over a longer one.
			i, err := e.follower(ctx)
			if err != nil {
				return err
			}
			if err := e.linksNamed(); err != nil {
				return err
			}
			e.c.Net.Isolate(i, procs.Link{Blackhole: true})
			time.Sleep(time.Duration(1000+e.rng.IntN(1000)) * time.Millisecond)
			all := make([]int, e.n)
			for j := range all {
				all[j] = j
			}
			return e.powerCutThen(ctx, e.c.Net.Heal, all...)
		}},
	{name: "power-cut-follower-snapshot", sizes: []int{3}, etcd: []int{}, power: true, network: true,
		args: []string{"--snapshot-count=100", "--snapshot-catchup-entries=100"},
		inject: func(ctx context.Context, e *faultEnv) error {
			// A follower catches up by snapshot, and loses its power as
			// soon as it logs the install: what it installed (and told
			// the leader it has) must have been durable.
			i, err := e.follower(ctx)
			if err != nil {
				return err
			}
			if err := e.cutOff(i, 4*time.Second); err != nil {
				return err
			}
			if err := e.snapshotApplied(i, 30*time.Second); err != nil {
				return err
			}
			return e.powerCut(ctx, i)
		}},
	crashAt("raftBeforeSave", 20, 200),
	crashAt("raftAfterSave", 20, 200),
	crashAt("storageBeforeCommit", 20, 200),
	crashAt("storageAfterCommit", 20, 200),
	crashAt("compactBeforeCommitBatch", 1, 5),
	crashAt("compactAfterCommitBatch", 1, 5),
	crashInSnapshot("raftBeforeApplySnap", "panic"),
	crashInSnapshot("raftAfterApplySnap", "panic"),
	crashInSnapshot("snapshotBeforeReceiveChunk", "1*off->panic"), // after the first chunk
	crashInSnapshot("snapshotAfterReceive", "panic"),
	{name: "crash-snapshotBeforeSendChunk", sizes: []int{3}, etcd: []int{}, failpoints: true, network: true,
		args: []string{"--snapshot-count=100", "--snapshot-catchup-entries=100"},
		inject: func(ctx context.Context, e *faultEnv) error {
			// The leader dies sending a snapshot to a follower that fell
			// behind; the follower gets one from the next leader.
			lead, err := e.leader(ctx)
			if err != nil {
				return err
			}
			f := (lead + 1 + e.rng.IntN(e.n-1)) % e.n
			if err := e.c.Arm(lead, "snapshotBeforeSendChunk", "panic"); err != nil {
				return err
			}
			if err := e.cutOff(f, 4*time.Second); err != nil {
				return err
			}
			if err := e.crashedThere(ctx, lead, "snapshotBeforeSendChunk"); err != nil {
				return err
			}
			return e.snapshotApplied(f, 30*time.Second)
		}},
	crashInDefrag("defragBeforeCompact"),
	crashInDefrag("defragAfterCompact"),
	{name: "defrag", sizes: []int{1, 3}, etcd: []int{3}, inject: func(ctx context.Context, e *faultEnv) error {
		// Every member defragmented in turn under the traffic (its
		// compactions run on).
		t0 := time.Now()
		for i := range e.n {
			if err := e.defragment(ctx, i); err != nil {
				return err
			}
		}
		e.recovery = max(e.recovery, time.Since(t0))
		return nil
	}},
	{name: "slow-wal", sizes: []int{1, 3}, etcd: []int{}, failpoints: true, inject: func(ctx context.Context, e *faultEnv) error {
		// The leader restarts with every Raft log write taking 50 ms
		// longer (a slow disk) for the rest of the run.
		i, err := e.leader(ctx)
		if err != nil {
			return err
		}
		e.c.Kill(i)
		t0 := time.Now()
		e.c.StartEnv(i, "GOFAIL_FAILPOINTS=raftBeforeSave=sleep(50)")
		if err := e.c.Wait(i, time.Minute); err != nil {
			return err
		}
		e.recovery = max(e.recovery, time.Since(t0))
		return nil
	}},
	{name: "partition-leader", sizes: []int{3}, network: true, inject: func(ctx context.Context, e *faultEnv) error {
		// The stale-read trap again, with the old leader running: it
		// keeps its clients while the others elect a new leader.
		i, err := e.leader(ctx)
		if err != nil {
			return err
		}
		return e.partition(ctx, i, 2*time.Second+time.Duration(e.rng.Int64N(int64(2*time.Second))), true)
	}},
	{name: "partition-follower", sizes: []int{3}, network: true, inject: func(ctx context.Context, e *faultEnv) error {
		i, err := e.follower(ctx)
		if err != nil {
			return err
		}
		return e.partition(ctx, i, 2*time.Second+time.Duration(e.rng.Int64N(int64(2*time.Second))), false)
	}},
	{name: "oneway-leader-out", sizes: []int{3}, network: true, inject: func(ctx context.Context, e *faultEnv) error {
		// A one-way partition: what the leader sends is held, what the
		// others send it arrives. They elect a new leader, whose term
		// reaches the old one and makes it step down.
		i, err := e.leader(ctx)
		if err != nil {
			return err
		}
		return e.partitionBy(ctx, e.c.Net.IsolateOut, i, 2*time.Second+time.Duration(e.rng.Int64N(int64(2*time.Second))), true)
	}},
	{name: "oneway-leader-in", sizes: []int{3}, network: true, inject: func(ctx context.Context, e *faultEnv) error {
		// The other way: the leader's heartbeats reach the followers but
		// it hears nothing back. It must step down by itself (Raft's
		// CheckQuorum) so that the followers, no longer hearing it, elect
		// another; its own campaigns (pre-votes) get no answer.
		i, err := e.leader(ctx)
		if err != nil {
			return err
		}
		return e.partitionBy(ctx, e.c.Net.IsolateIn, i, 2*time.Second+time.Duration(e.rng.Int64N(int64(2*time.Second))), true)
	}},
	{name: "partition-follower-snapshot", sizes: []int{3}, etcd: []int{}, network: true,
		args: []string{"--snapshot-count=100", "--snapshot-catchup-entries=100"},
		inject: func(ctx context.Context, e *faultEnv) error {
			// Cut off for 4 s, long enough for its connections to time
			// out (what was in flight on them is lost), a follower falls
			// behind what the leader keeps: it must catch up by snapshot
			// over the healed link.
			i, err := e.follower(ctx)
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := e.cutOff(i, 4*time.Second); err != nil {
				return err
			}
			if err := e.serving(ctx, i); err != nil {
				return err
			}
			e.recovery = max(e.recovery, time.Since(t0))
			return e.snapshotApplied(i, 30*time.Second)
		}},
	{name: "delay-peers", sizes: []int{3}, network: true, inject: func(ctx context.Context, e *faultEnv) error {
		// Every peer link 25–125 ms slow each way for 3 s: slower than
		// the heartbeat, faster than an election timeout.
		return e.degrade(ctx, procs.Link{Delay: 75 * time.Millisecond, Jitter: 50 * time.Millisecond}, 3*time.Second)
	}},
	{name: "lossy-peers", sizes: []int{3}, network: true, inject: func(ctx context.Context, e *faultEnv) error {
		// Every peer link loses a fifth of its packets for 3 s: each
		// loss stalls its stream for a retransmission timeout (200 ms,
		// doubled on a loss in a row), longer than a heartbeat.
		return e.degrade(ctx, procs.Link{Loss: 0.2}, 3*time.Second)
	}},
	{name: "kill-4-times", sizes: []int{3}, inject: func(ctx context.Context, e *faultEnv) error {
		// etcd's availability figure: four SIGKILLs of a random member,
		// each restarted at once, a second apart.
		for range 4 {
			if err := e.killAndRestart(ctx, e.rng.IntN(e.n)); err != nil {
				return err
			}
			time.Sleep(time.Second)
		}
		return nil
	}},
}

// crashAt is a fault of MetaStore's failpoints build: a random member is
// restarted with the failpoint fp armed to panic on one of its next
// lo..hi evaluations — a crash at that code point — and started again
// unarmed once it died there.
func crashAt(fp string, lo, hi int) fault {
	return fault{name: "crash-" + fp, sizes: []int{1, 3}, etcd: []int{}, failpoints: true,
		inject: func(ctx context.Context, e *faultEnv) error {
			i := e.rng.IntN(e.n)
			e.c.Kill(i)
			e.c.StartEnv(i, fmt.Sprintf("GOFAIL_FAILPOINTS=%s=%d*off->panic", fp, lo+e.rng.IntN(hi-lo+1)))
			return e.crashedThere(ctx, i, fp)
		}}
}

// crashInDefrag arms fp on a random running member (gofail's HTTP
// endpoint) and defragments it: it dies in the defragmentation and is
// started again unarmed.
func crashInDefrag(fp string) fault {
	return fault{name: "crash-" + fp, sizes: []int{1, 3}, etcd: []int{}, failpoints: true,
		inject: func(ctx context.Context, e *faultEnv) error {
			i := e.rng.IntN(e.n)
			if err := e.c.Arm(i, fp, "panic"); err != nil {
				return err
			}
			go func() { _ = e.defragment(ctx, i) }() // answered by no one: the member dies
			return e.crashedThere(ctx, i, fp)
		}}
}

// defragment defragments member i alone.
func (e *faultEnv) defragment(ctx context.Context, i int) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.c.Endpoints[i]}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := cli.Defragment(ctx, e.c.Endpoints[i]); err != nil {
		return fmt.Errorf("defragment m%d: %w", i, err)
	}
	return nil
}

// crashInSnapshot crashes a follower while it receives or installs a
// snapshot: it is restarted with fp armed with terms, cut off (its
// connections closed) until the leader keeps too little log for it, and
// dies there once the links heal.
func crashInSnapshot(fp, terms string) fault {
	return fault{name: "crash-" + fp, sizes: []int{3}, etcd: []int{}, failpoints: true, network: true,
		args: []string{"--snapshot-count=100", "--snapshot-catchup-entries=100"},
		inject: func(ctx context.Context, e *faultEnv) error {
			i, err := e.follower(ctx)
			if err != nil {
				return err
			}
			e.c.Kill(i)
			e.c.StartEnv(i, fmt.Sprintf("GOFAIL_FAILPOINTS=%s=%s", fp, terms))
			if err := e.c.Wait(i, time.Minute); err != nil && e.c.Running(i) {
				return err
			}
			if err := e.cutOff(i, 4*time.Second); err != nil {
				return err
			}
			return e.crashedThere(ctx, i, fp)
		}}
}

// cutOff cuts member i off from the others for d and closes its
// connections (as they time out in a long partition, losing what was in
// flight), so that a follower falls behind what the leader keeps and
// must be sent a snapshot once the links heal.
func (e *faultEnv) cutOff(i int, d time.Duration) error {
	if err := e.linksNamed(); err != nil {
		return err
	}
	e.c.Net.Isolate(i, procs.Link{Blackhole: true})
	e.c.Net.Disconnect(i)
	time.Sleep(d)
	e.c.Net.Heal()
	return nil
}

// crashedThere waits until member i died at failpoint fp and starts it
// again unarmed.
func (e *faultEnv) crashedThere(ctx context.Context, i int, fp string) error {
	deadline := time.Now().Add(30 * time.Second)
	for e.c.Running(i) {
		if time.Now().After(deadline) {
			return fmt.Errorf("member m%d never reached failpoint %s", i, fp)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t0 := time.Now()
	if !strings.Contains(e.c.Log(i), "failpoint panic") {
		return fmt.Errorf("member m%d exited, but not at failpoint %s", i, fp)
	}
	e.c.Start(i)
	if err := e.c.Wait(i, time.Minute); err != nil {
		return err
	}
	e.recovery = max(e.recovery, time.Since(t0))
	return nil
}

// faultEnv is what a fault acts on, and what it measured.
type faultEnv struct {
	t   *testing.T
	c   *procs.Cluster
	n   int
	rng *rand.Rand
	// power is each member's powerfs (faults with power set), nil
	// otherwise; reverted counts the files its power cuts reverted.
	power    []*powerfs.FS
	reverted int
	// recovery is the longest time from a kill or pause to the member
	// serving clients again; election the longest from losing the leader
	// to another member being leader.
	recovery, election time.Duration
}

// status asks member i alone.
func (e *faultEnv) status(ctx context.Context, i int) (*clientv3.StatusResponse, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.c.Endpoints[i]}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return cli.Status(ctx, e.c.Endpoints[i])
}

// leader returns the index of the member that reports itself leader.
func (e *faultEnv) leader(ctx context.Context) (int, error) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i := range e.n {
			if st, err := e.status(ctx, i); err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, errors.New("no member reports itself leader within 20s")
}

// waitOtherLeader waits until a member other than old reports itself
// leader, and records how long that took since t0.
func (e *faultEnv) waitOtherLeader(ctx context.Context, old int, t0 time.Time) error {
	deadline := t0.Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i := range e.n {
			if i == old {
				continue
			}
			if st, err := e.status(ctx, i); err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				e.election = max(e.election, time.Since(t0))
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no new leader within 20s of losing member m%d", old)
}

// killAndRestart SIGKILLs the members idx at once and starts them again.
// When the leader is among them and others survive, the restart waits for
// a new leader (so the election is measured); otherwise it is at once.
func (e *faultEnv) killAndRestart(ctx context.Context, idx ...int) error {
	return e.crash(ctx, false, nil, idx...)
}

// powerCut is killAndRestart with the members' power cut while they are
// down: each loses every write its data dir had not fsynced.
func (e *faultEnv) powerCut(ctx context.Context, idx ...int) error {
	return e.crash(ctx, true, nil, idx...)
}

// powerCutThen is powerCut that calls then (a heal) before the restart.
func (e *faultEnv) powerCutThen(ctx context.Context, then func(), idx ...int) error {
	return e.crash(ctx, true, then, idx...)
}

// crash SIGKILLs the members idx, cuts their power if power is set, calls
// then if not nil, and starts them again (see killAndRestart).
func (e *faultEnv) crash(ctx context.Context, power bool, then func(), idx ...int) error {
	if power && e.power == nil {
		return errors.New("a power cut on a fault without power set")
	}
	lead := -1
	if len(idx) < e.n {
		if i, err := e.leader(ctx); err == nil {
			lead = i
		}
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, i := range idx {
		wg.Go(func() { e.c.Kill(i) })
	}
	wg.Wait()
	if power {
		for _, i := range idx {
			n, err := e.power[i].Cut()
			if err != nil {
				return fmt.Errorf("power cut of m%d: %w", i, err)
			}
			e.reverted += n
		}
	}
	for _, i := range idx {
		if i == lead {
			if err := e.waitOtherLeader(ctx, lead, t0); err != nil {
				return err
			}
		}
	}
	if then != nil {
		then()
	}
	for _, i := range idx {
		e.c.Start(i)
	}
	for _, i := range idx {
		if err := e.c.Wait(i, time.Minute); err != nil {
			return err
		}
	}
	e.recovery = max(e.recovery, time.Since(t0))
	return nil
}

// pause stops member i with SIGSTOP for d and resumes it; a paused leader
// must be replaced, and its stale view must never answer a linearizable
// read.
func (e *faultEnv) pause(ctx context.Context, i int, d time.Duration) error {
	t0 := time.Now()
	if err := e.c.Signal(i, syscall.SIGSTOP); err != nil {
		return err
	}
	if e.n > 1 {
		if err := e.waitOtherLeader(ctx, i, t0); err != nil {
			_ = e.c.Signal(i, syscall.SIGCONT)
			return err
		}
	}
	time.Sleep(time.Until(t0.Add(d)))
	if err := e.c.Signal(i, syscall.SIGCONT); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := e.status(ctx, i); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("member m%d does not answer 30s after SIGCONT", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.recovery = max(e.recovery, time.Since(t0))
	return nil
}

// snapshotApplied waits until member i logs that it installed a snapshot.
func (e *faultEnv) snapshotApplied(i int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for !strings.Contains(e.c.Log(i), `"applied snapshot"`) {
		if time.Now().After(deadline) {
			return fmt.Errorf("member m%d caught up without a snapshot within %v: the fault did not test what it names", i, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// follower returns a random member other than the leader.
func (e *faultEnv) follower(ctx context.Context) (int, error) {
	lead, err := e.leader(ctx)
	if err != nil {
		return 0, err
	}
	return (lead + 1 + e.rng.IntN(e.n-1)) % e.n, nil
}

// linksNamed waits until every member's proxy knows every other member
// on a connection to it: until then a link fault would not reach them.
func (e *faultEnv) linksNamed() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		missing := ""
		for j := range e.n {
			if got := e.c.Net.Senders(j); len(got) != e.n-1 {
				missing = fmt.Sprintf("member m%d has connections named by %v only", j, got)
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("peer proxies: %s after 10s: a link fault would not reach every link", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// partition cuts member i off from the others for d, then heals the
// links and waits until i serves linearizable reads again. A cut-off
// leader must be replaced (the election is measured) and its stale view
// must never answer a linearizable read.
func (e *faultEnv) partition(ctx context.Context, i int, d time.Duration, leader bool) error {
	return e.partitionBy(ctx, e.c.Net.Isolate, i, d, leader)
}

// partitionBy is partition with the links cut by isolate: both ways
// (Net.Isolate) or one way (Net.IsolateOut, Net.IsolateIn).
func (e *faultEnv) partitionBy(ctx context.Context, isolate func(int, procs.Link), i int, d time.Duration, leader bool) error {
	if err := e.linksNamed(); err != nil {
		return err
	}
	t0 := time.Now()
	isolate(i, procs.Link{Blackhole: true})
	if leader {
		if err := e.waitOtherLeader(ctx, i, t0); err != nil {
			e.c.Net.Heal()
			return err
		}
	}
	time.Sleep(time.Until(t0.Add(d)))
	e.c.Net.Heal()
	if err := e.serving(ctx, i); err != nil {
		return err
	}
	e.recovery = max(e.recovery, time.Since(t0))
	return nil
}

// degrade sets l on every peer link for d, then heals them and waits
// until every member serves linearizable reads again.
func (e *faultEnv) degrade(ctx context.Context, l procs.Link, d time.Duration) error {
	if err := e.linksNamed(); err != nil {
		return err
	}
	t0 := time.Now()
	e.c.Net.SetAll(l)
	time.Sleep(d)
	e.c.Net.Heal()
	for i := range e.n {
		if err := e.serving(ctx, i); err != nil {
			return err
		}
	}
	e.recovery = max(e.recovery, time.Since(t0))
	return nil
}

// serving waits up to 30 s until member i answers a linearizable read.
func (e *faultEnv) serving(ctx context.Context, i int) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.c.Endpoints[i]}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(rctx, "serving")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("member m%d serves no linearizable read 30s after the links healed: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkDurableAndConverged checks the cluster after the traffic: every
// member reaches the same revision, no lower than any answer a client got;
// HashKV agrees at it; and on every member each key holds a write no
// older than the last acknowledged put of it. It returns how many
// acknowledged puts were missing.
func checkDurableAndConverged(t *testing.T, ctx context.Context, eps []string, reports []report.ClientReport) (lost int) {
	t.Helper()
	acked, maxRev := ackedPuts(reports)
	clients := make([]*clientv3.Client, len(eps))
	for i, ep := range eps {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		clients[i] = cli
	}
	// Converge: the same revision everywhere (followers apply a little
	// after the leader).
	var rev int64
	deadline := time.Now().Add(30 * time.Second)
	for {
		revs := map[int64]bool{}
		for _, cli := range clients {
			r, err := cli.Get(ctx, "tombstone", clientv3.WithSerializable())
			if err != nil {
				revs[-1] = true
				continue
			}
			revs[r.Header.Revision] = true
			rev = r.Header.Revision
		}
		if len(revs) == 1 && !revs[-1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members did not converge to one revision within 30s: %v", revs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rev < maxRev {
		t.Errorf("every member is at revision %d, below revision %d a client was answered with", rev, maxRev)
	}
	var first *clientv3.HashKVResponse
	for i, cli := range clients {
		h, err := cli.HashKV(ctx, eps[i], rev)
		if err != nil {
			t.Fatalf("HashKV on m%d: %v", i, err)
		}
		if first == nil {
			first = h
		} else if h.Hash != first.Hash || h.CompactRevision != first.CompactRevision {
			t.Errorf("m%d: HashKV at revision %d is %d (compacted at %d), m0's is %d (compacted at %d)",
				i, rev, h.Hash, h.CompactRevision, first.Hash, first.CompactRevision)
		}
	}
	for i, cli := range clients {
		r, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithSerializable(), clientv3.WithRev(rev))
		if err != nil {
			t.Fatalf("read m%d: %v", i, err)
		}
		have := map[string]int64{}
		for _, kv := range r.Kvs {
			have[string(kv.Key)] = kv.ModRevision
		}
		for key, ackRev := range acked {
			if mod, ok := have[key]; ok && mod < ackRev {
				lost++
				t.Errorf("m%d: %s was last written at revision %d, but a put of it was acknowledged at %d", i, key, mod, ackRev)
			}
		}
	}
	return lost
}

// ackedPuts returns, per key, the revision of the last put of it a client
// was answered for, and the highest revision any answer carried.
func ackedPuts(reports []report.ClientReport) (map[string]int64, int64) {
	acked := map[string]int64{}
	var maxRev int64
	for _, r := range reports {
		for _, op := range r.KeyValue {
			req, ok := op.Input.(model.EtcdRequest)
			resp, ok2 := op.Output.(model.MaybeEtcdResponse)
			if !ok || !ok2 || resp.Error != "" || resp.Persisted {
				continue
			}
			maxRev = max(maxRev, resp.Revision)
			if req.Type != model.Txn || req.Txn == nil || resp.Txn == nil {
				continue
			}
			ops := req.Txn.OperationsOnSuccess
			if resp.Txn.Failure {
				ops = req.Txn.OperationsOnFailure
			}
			for _, o := range ops {
				if o.Type == model.PutOperation {
					acked[o.Put.Key] = max(acked[o.Put.Key], resp.Revision)
				}
			}
		}
	}
	return acked, maxRev
}

// reportTable logs the runs as the rows of docs/robustness.md and, with
// ROBUSTNESS_RESULTS set, appends them to that file.
func reportTable(t *testing.T, rows []outcome) {
	if len(rows) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("| fault | target | members | ops | failed | watch events | QPS | recovery | election | violations | lost acked writes |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, o := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %.0f | %v | %v | %d | %d |\n", o.fault, o.target, o.members, o.ops, o.failed,
			o.watchEvents, o.qps, o.recovery.Round(time.Millisecond), o.election.Round(time.Millisecond), o.violations, o.lost)
	}
	t.Log("\n" + b.String())
	if path := os.Getenv("ROBUSTNESS_RESULTS"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.WriteString(b.String())
			f.Close()
		}
	}
}
