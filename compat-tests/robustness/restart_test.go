package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/compat-tests/internal/procs"
)

// TestRestartedMemberNeverGoesBack SIGKILLs a follower that has served a
// revision, starts it again and asks it at once: the first answer once it
// is ready is at that revision or later. A MetaStore member reopens its
// store behind its log (the store is not fsynced; the Raft log is) and
// replays the rest; before the fix it served as soon as it knew a leader,
// from the replay's midst, and etcd's compaction traffic took the lower
// revision it reported for a panic (crash-snapshotBeforeReceiveChunk).
func TestRestartedMemberNeverGoesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 40,000 keys to three processes; skipped under -short")
	}
	if os.Getenv("ROBUSTNESS_TARGET") == "etcd" {
		t.Skip("MetaStore only")
	}
	c := procs.Metastore(t, 3, procs.Options{})
	e := &faultEnv{t: t, c: c, n: 3, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := e.follower(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lead := (f + 1) % 3
	if st, err := e.status(ctx, lead); err == nil && st.Leader != st.Header.MemberId {
		lead = (f + 2) % 3
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Endpoints[lead]}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			// Transactions of 100 puts: a long replay for few requests.
			for i := range 25 {
				ops := make([]clientv3.Op, 100)
				for j := range ops {
					ops[j] = clientv3.OpPut(fmt.Sprintf("back/%02d/%02d/%03d", g, i, j), "v")
				}
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var served int64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		st, err := e.status(ctx, lead)
		if err != nil {
			t.Fatal(err)
		}
		fst, err := e.status(ctx, f)
		if err == nil && fst.Header.Revision == st.Header.Revision {
			served = fst.Header.Revision
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if served == 0 {
		t.Fatal("the follower never caught up with the leader")
	}
	c.Kill(f)
	c.Start(f)
	if err := c.Wait(f, time.Minute); err != nil {
		t.Fatal(err)
	}
	st, err := e.status(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if st.Header.Revision < served {
		t.Fatalf("restarted, the member answers at revision %d, below the %d it served before", st.Header.Revision, served)
	}
}
