package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/compat-tests/internal/powerfs"
	"github.com/metastore/metastore/compat-tests/internal/procs"
)

// powerRounds is how many power cuts each TestPowerLoss run makes.
const powerRounds = 3

// TestPowerLoss puts every member's data dir on powerfs — a FUSE file
// system that forgets every write not yet fsynced when the power is cut —
// and, while clients put keys, SIGKILLs every member at once at a random
// moment, cuts the power and starts them again: every acknowledged put
// must be there. The negative control runs one member from the failpoints
// build with the WAL's fdatasync switched off (walSkipSync) and must be
// caught losing acknowledged puts, which proves the check can fail.
func TestPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("cuts the power under traffic; skipped under -short")
	}
	if os.Getenv("ROBUSTNESS_TARGET") == "etcd" {
		t.Skip("MetaStore only")
	}
	if err := powerfs.Supported(); err != nil {
		t.Skip(err)
	}
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("members=%d", size), func(t *testing.T) {
			acked, lost := powerLoss(t, size, false)
			t.Logf("%d power cuts, %d acknowledged puts checked, %d lost", powerRounds, acked, lost)
			if lost > 0 {
				t.Errorf("%d of %d acknowledged puts lost to power cuts", lost, acked)
			}
		})
	}
	t.Run("negative-control", func(t *testing.T) {
		acked, lost := powerLoss(t, 1, true)
		t.Logf("without fdatasync: %d acknowledged puts checked, %d lost", acked, lost)
		if lost == 0 {
			t.Errorf("a member that never fdatasyncs its WAL lost none of %d acknowledged puts to %d power cuts: the test cannot see a lost write", acked, powerRounds)
		}
	})
}

// powerLoss runs powerRounds rounds of traffic and power cuts on a fresh
// cluster on powerfs and returns how many acknowledged puts it checked
// and how many were missing afterwards. With broken set the members run
// from bin/metastore-failpoints with walSkipSync armed during the
// traffic (they start and restart unarmed, so the cluster itself
// survives and only acknowledged puts are lost).
func powerLoss(t *testing.T, size int, broken bool) (checked, lost int) {
	backing, mnt := t.TempDir(), t.TempDir()
	fsys, err := powerfs.Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the cluster's cleanup, so it runs after it.
	t.Cleanup(func() {
		if err := fsys.Unmount(); err != nil {
			t.Error(err)
		}
	})
	c := procs.Metastore(t, size, procs.Options{Dir: mnt, Failpoints: broken})
	all := func(f func(int)) {
		for i := range size {
			f(i)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	acked := map[string]bool{}
	for round := range powerRounds {
		if broken {
			all(c.Kill)
			all(func(i int) { c.StartEnv(i, "GOFAIL_FAILPOINTS=walSkipSync=return(true)") })
			all(func(i int) {
				if err := c.Wait(i, time.Minute); err != nil {
					t.Fatal(err)
				}
			})
		}
		// Puts from 4 clients; the power goes at a random moment while
		// they run.
		stop := make(chan struct{})
		var mu sync.Mutex
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
				if err != nil {
					t.Error(err)
					return
				}
				defer cli.Close()
				value := strings.Repeat("v", 512)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					key := fmt.Sprintf("power/r%d/c%d/%06d", round, g, i)
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_, err := cli.Put(ctx, key, value)
					cancel()
					if err == nil {
						mu.Lock()
						acked[key] = true
						mu.Unlock()
					} else if errors.Is(err, context.DeadlineExceeded) {
						time.Sleep(50 * time.Millisecond)
					}
				}
			})
		}
		time.Sleep(500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond))))
		all(c.Kill) // every member at once: a data centre's power
		close(stop)
		wg.Wait()
		reverted, err := fsys.Cut()
		if err != nil {
			t.Fatal(err)
		}
		if reverted == 0 {
			t.Errorf("round %d: the power cut reverted no file: the cut tested nothing", round)
		}
		all(c.Start)
		all(func(i int) {
			if err := c.Wait(i, time.Minute); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		})
	}
	return len(acked), missing(t, c, "power/", acked)
}

// missing returns how many of the acknowledged keys under prefix a
// linearizable read does not find.
func missing(t *testing.T, c *procs.Cluster, prefix string, acked map[string]bool) int {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, kv := range r.Kvs {
		have[string(kv.Key)] = true
	}
	lost := 0
	for k := range acked {
		if !have[k] {
			lost++
			if lost <= 5 {
				t.Logf("acknowledged %s is missing", k)
			}
		}
	}
	return lost
}
