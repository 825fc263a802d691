package robustness

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/tests/v3/robustness/client"
	"go.etcd.io/etcd/tests/v3/robustness/identity"
	"go.etcd.io/etcd/tests/v3/robustness/model"
	"go.etcd.io/etcd/tests/v3/robustness/report"
	"go.etcd.io/etcd/tests/v3/robustness/traffic"
	"go.etcd.io/etcd/tests/v3/robustness/validate"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/time/rate"

	"github.com/metastore/metastore/compat-tests/internal/powerfs"
	"github.com/metastore/metastore/compat-tests/internal/procs"
)

// duration is how long each run sends traffic: ROBUSTNESS_DURATION, 20 s
// by default (about 4,000 operations at the profile's 200 QPS).
func duration(tb testing.TB) time.Duration {
	if s := os.Getenv("ROBUSTNESS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			tb.Fatalf("ROBUSTNESS_DURATION: %v", err)
		}
		return d
	}
	return 20 * time.Second
}

// profile is etcd's "EtcdTrafficDeleteLeases" scenario: KeyValueMedium
// (100–200 QPS, 6 clients pinned to members and 2 on every endpoint), its
// 8 watch clients (6 pinned, 2 on every endpoint, each watching from a
// revision up to 100 before or after the current one) and compaction
// every 200 ms.
var profile = traffic.Profile{
	KeyValue:   &traffic.KeyValueMedium,
	Watch:      &traffic.WatchDefault,
	Compaction: &traffic.CompactionDefault,
}

// runs is how many times each fault runs: ROBUSTNESS_RUNS, 1 by default.
func runs(tb testing.TB) int {
	if s := os.Getenv("ROBUSTNESS_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			tb.Fatalf("ROBUSTNESS_RUNS=%q: want a positive count", s)
		}
		return n
	}
	return 1
}

// etcdRuns reports whether the reference runs fault: ROBUSTNESS_ETCD, a
// comma-separated list of faults (CI's short set keeps a few), or every
// fault of the table when unset.
func etcdRuns(fault string) bool {
	only := os.Getenv("ROBUSTNESS_ETCD")
	return only == "" || slices.Contains(strings.Split(only, ","), fault)
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRobustness sends etcd's robustness traffic to fresh clusters of etcd
// 3.7.3 and bin/metastore processes while injecting each fault of the
// table (faults_test.go), then checks the recorded history with etcd's
// validators — linearizability of every KV and lease operation (porcupine),
// and every watch and serializable read against the requests the members
// persisted — and, on the cluster that survived, that every member holds
// every acknowledged write and the same data (HashKV). Before the fix of
// the lease response headers, 3 MetaStore members failed it with no fault
// (a LeaseRevoke reported a revision written after it).
func TestRobustness(t *testing.T) {
	if testing.Short() {
		t.Skip("sends traffic for a while; skipped under -short")
	}
	only := os.Getenv("ROBUSTNESS_TARGET") // "etcd", "metastore" or both
	parallel := os.Getenv("ROBUSTNESS_PARALLEL") != "" && os.Getenv("ROBUSTNESS_PARALLEL") != "1"
	var mu sync.Mutex
	var table []outcome
	t.Cleanup(func() { reportTable(t, table) })
	for _, f := range faults {
		for _, tg := range targets {
			if only != "" && !strings.Contains(only, tg.name) {
				continue
			}
			for _, size := range f.sizes {
				if tg.name == "etcd" && (!f.reference(size) || !etcdRuns(f.name)) {
					continue
				}
				for run := range runs(t) {
					name := fmt.Sprintf("%s/%s/members=%d/run=%d", f.name, tg.name, size, run)
					t.Run(name, func(t *testing.T) {
						if parallel {
							t.Parallel()
						}
						o := runOnce(t, tg, size, f)
						mu.Lock()
						table = append(table, o)
						mu.Unlock()
					})
				}
			}
		}
	}
}

// outcome is what one run measured: a row of docs/robustness.md.
type outcome struct {
	fault, target string
	members       int
	ops, failed   int     // KV and lease operations recorded, and those that failed
	watchEvents   int     // events the watchers received
	qps           float64 // over the whole run
	recovery      time.Duration
	election      time.Duration
	violations    int // linearization, watch or serializable failures
	lost          int // acknowledged writes missing afterwards
}

// runOnce starts a cluster of size members of tg, runs the traffic with f
// injected, and validates what was recorded.
func runOnce(t *testing.T, tg target, size int, f fault) outcome {
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	opts := procs.Options{Args: f.args, Failpoints: f.failpoints, PeerProxies: f.network}
	var power []*powerfs.FS
	if f.power {
		opts.Dir, power = powerDirs(t, size)
	}
	c := tg.start(t, size, opts)
	d := duration(t)
	ctx, cancel := context.WithTimeout(t.Context(), d+3*time.Minute)
	defer cancel()
	o := outcome{fault: f.name, target: tg.name, members: size}

	baseTime := time.Now()
	set := client.NewSet(identity.NewIDProvider(), baseTime)
	defer set.Close()
	if err := traffic.CheckEmptyDatabaseAtStart(ctx, lg, c.Endpoints, set); err != nil {
		t.Fatal(err)
	}
	tr := traffic.EtcdPutDeleteLease
	kv := profile.KeyValue
	limiter := rate.NewLimiter(rate.Limit(kv.MaximalQPS), kv.BurstableQPS)
	finish := make(chan struct{})
	keys, storage := traffic.NewKeyStore(10, "key"), traffic.NewKubernetesStorage()
	var wg sync.WaitGroup
	err := traffic.SimulateKeyValueTraffic(ctx, &wg, kv, c.Endpoints, set, tr, traffic.RunTrafficLoopParam{
		QPSLimiter:                         limiter,
		IDs:                                set.IdentityProvider(),
		LeaseIDStorage:                     identity.NewLeaseIDStorage(),
		NonUniqueRequestConcurrencyLimiter: traffic.NewConcurrencyLimiter(kv.MaxNonUniqueRequestConcurrency),
		KeyStore:                           keys,
		Storage:                            storage,
		Finish:                             finish,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = traffic.SimulateWatchTraffic(ctx, &wg, profile.Watch, c.Endpoints, set, tr, traffic.RunWatchLoopParam{
		Config:     *profile.Watch,
		QPSLimiter: limiter,
		KeyStore:   keys,
		Storage:    storage,
		Finish:     finish,
		Logger:     lg,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = traffic.SimulateCompactionTraffic(ctx, &wg, profile.Compaction, c.Endpoints, set, tr, traffic.RunCompactLoopParam{
		Period: profile.Compaction.Period,
		Finish: finish,
	})
	if err != nil {
		t.Fatal(err)
	}
	trafficStart := time.Since(baseTime)

	// The fault goes in at a random time in the first half of the run,
	// after a fifth of it, and must be over (members serving again)
	// before the traffic stops.
	env := &faultEnv{t: t, c: c, n: size, power: power, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))}
	faultStart, faultEnd := trafficStart, trafficStart
	faultDone := make(chan error, 1)
	go func() {
		wait := d/5 + time.Duration(env.rng.Int64N(int64(d/2-d/5)+1))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			faultDone <- ctx.Err()
			return
		}
		faultStart = time.Since(baseTime)
		err := f.inject(ctx, env)
		faultEnd = time.Since(baseTime)
		faultDone <- err
	}()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	if err := <-faultDone; err != nil {
		close(finish)
		wg.Wait()
		t.Fatalf("fault %s: %v", f.name, err)
	}
	close(finish)
	wg.Wait()
	end := time.Since(baseTime)
	o.recovery, o.election = env.recovery, env.election
	if f.power {
		t.Logf("power cuts reverted %d files", env.reverted)
	}

	// As upstream: the history must end with a successful write, so that
	// every request whose outcome is unknown is ordered before it.
	time.Sleep(time.Second)
	last, err := set.NewClient(c.Endpoints)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := last.Put(ctx, "tombstone", "true"); err != nil {
		t.Fatalf("last put: %v", err)
	}
	last.Close()

	reports := set.Reports()
	stats := traffic.CalculateStats(reports, trafficStart, end)
	o.ops, o.failed, o.qps = stats.Successes+stats.Failures, stats.Failures, stats.QPS()
	ws := traffic.CalculateWatchStats(reports, trafficStart, end)
	o.watchEvents = ws.Events
	before := traffic.CalculateStats(reports, trafficStart, faultStart)
	t.Logf("%d operations succeeded, %d failed, %.0f QPS (%.0f before the fault); %d watch events; fault from %v to %v; recovery %v, election %v",
		stats.Successes, stats.Failures, stats.QPS(), before.QPS(), ws.Events, faultStart.Round(time.Millisecond), faultEnd.Round(time.Millisecond), o.recovery, o.election)
	if before.QPS() < kv.MinimalQPS {
		t.Errorf("only %.0f QPS before the fault, below the profile's minimum of %.0f: the run proves too little", before.QPS(), kv.MinimalQPS)
	}

	o.lost = checkDurableAndConverged(t, ctx, c.Endpoints, reports)

	c.Stop()
	persisted, err := tg.persisted(t, c, size)
	if err != nil {
		t.Fatalf("persisted requests: %v", err)
	}
	result := validate.ValidateAndReturnVisualize(lg, validate.Config{ExpectRevisionUnique: tr.ExpectUniqueRevision()}, reports, persisted, 5*time.Minute)
	for _, r := range []validate.Result{result.Watch, result.Serializable} {
		if r.Status != validate.Success {
			o.violations++
		}
	}
	if err := result.Error(); err != nil {
		o.violations++
		dir := os.Getenv("ROBUSTNESS_REPORT_DIR")
		if dir == "" {
			dir = t.TempDir()
		}
		path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".html")
		lin := result.Linearization
		if verr := porcupine.VisualizePath(lin.Model, lin.Info, path); verr == nil {
			t.Logf("history visualized in %s", path)
		}
		t.Log(explain(lin.Model, lin.Info, reports, 12))
		if result.Watch.Status == validate.Failure {
			t.Log(describeWatches(reports))
		}
		t.Errorf("history of %d operations (%d persisted requests) is not valid: %v", o.ops, len(persisted), err)
	} else if result.Watch.Status != validate.Success || result.Serializable.Status != validate.Success {
		t.Errorf("watch %q, serializable %q: both must have been checked (%d persisted requests)", result.Watch.Status, result.Serializable.Status, len(persisted))
	}
	return o
}

// powerDirs mounts a powerfs on base/m<i> for each of n members (what
// procs.Options.Dir lays out) and returns base and the file systems,
// unmounted at cleanup after the cluster stopped. It skips t where FUSE
// cannot be mounted.
func powerDirs(t *testing.T, n int) (string, []*powerfs.FS) {
	if err := powerfs.Supported(); err != nil {
		t.Skip(err)
	}
	base := t.TempDir()
	fss := make([]*powerfs.FS, n)
	for i := range n {
		mnt := filepath.Join(base, fmt.Sprintf("m%d", i))
		if err := os.Mkdir(mnt, 0o700); err != nil {
			t.Fatal(err)
		}
		fsys, err := powerfs.Mount(t.TempDir(), mnt)
		if err != nil {
			t.Fatal(err)
		}
		// Registered before the cluster's cleanup, so it runs after it.
		t.Cleanup(func() {
			if err := fsys.Unmount(); err != nil {
				t.Error(err)
			}
		})
		fss[i] = fsys
	}
	return base, fss
}

// describeWatches lists the watches from a revision whose first event is
// above it, with their first responses: what a broken "resumable" needs.
func describeWatches(reports []report.ClientReport) string {
	var b strings.Builder
	for _, r := range reports {
		for _, w := range r.Watch {
			first := int64(0)
			for _, resp := range w.Responses {
				if len(resp.Events) > 0 {
					first = resp.Events[0].Revision
					break
				}
			}
			if w.Request.Revision == 0 || first <= w.Request.Revision {
				continue
			}
			fmt.Fprintf(&b, "client %d watch %+v, first event at %d:\n", r.ClientID, w.Request, first)
			for _, resp := range w.Responses[:min(8, len(w.Responses))] {
				fr, lr := int64(0), int64(0)
				if n := len(resp.Events); n > 0 {
					fr, lr = resp.Events[0].Revision, resp.Events[n-1].Revision
				}
				fmt.Fprintf(&b, "  at %v: revision %d progress=%v events=%d [%d..%d] error=%q\n", resp.Time, resp.Revision, resp.IsProgressNotify, len(resp.Events), fr, lr, resp.Error)
			}
		}
	}
	return b.String()
}

// explain describes where the check got stuck: the last n operations of
// the longest partial linearization, then the n earliest-called
// operations it could not place after them.
func explain(m porcupine.Model, info porcupine.LinearizationInfo, reports []report.ClientReport, n int) string {
	var b strings.Builder
	for _, partition := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, l := range partition {
			if len(l) > len(longest) {
				longest = l
			}
		}
		type opKey struct {
			client int
			call   int64
		}
		placed := map[opKey]bool{}
		for _, op := range longest {
			placed[opKey{op.ClientId, op.Call}] = true
		}
		var all []porcupine.Operation
		for _, r := range reports {
			for _, op := range r.KeyValue {
				// A failed request may take effect anywhere: it is never
				// what cannot be placed.
				if resp, ok := op.Output.(model.MaybeEtcdResponse); ok && resp.Error != "" {
					continue
				}
				if !placed[opKey{op.ClientId, op.Call}] {
					all = append(all, op)
				}
			}
		}
		if len(longest) == 0 {
			continue
		}
		b.WriteString("\nlongest linearizable prefix ends with:\n")
		for _, op := range longest[max(0, len(longest)-n):] {
			fmt.Fprintf(&b, "  client %d [%d..%d] %s\n", op.ClientId, op.Call, op.Return, m.DescribeOperation(op.Input, op.Output))
		}
		slices.SortFunc(all, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		b.WriteString("not placed after it (earliest calls that succeeded):\n")
		for _, op := range all[:min(n, len(all))] {
			fmt.Fprintf(&b, "  client %d [%d..%d] %s\n", op.ClientId, op.Call, op.Return, m.DescribeOperation(op.Input, op.Output))
		}
	}
	return b.String()
}
