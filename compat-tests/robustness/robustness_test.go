package robustness

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/tests/v3/robustness/client"
	"go.etcd.io/etcd/tests/v3/robustness/identity"
	"go.etcd.io/etcd/tests/v3/robustness/report"
	"go.etcd.io/etcd/tests/v3/robustness/traffic"
	"go.etcd.io/etcd/tests/v3/robustness/validate"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/time/rate"
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

// profile is etcd's "EtcdTrafficDeleteLeases" scenario without its watch
// clients: KeyValueMedium (100–200 QPS, 6 clients pinned to members and 2
// on every endpoint) and compaction every 200 ms. Watch histories are only
// validated against the members' persisted Raft requests, which only an
// etcd data dir yields; linearizability of every KV and lease operation is
// what this checks.
var profile = traffic.Profile{
	KeyValue:   &traffic.KeyValueMedium,
	Compaction: &traffic.CompactionDefault,
}

type target struct {
	name  string
	start func(testing.TB, int) *cluster
}

var targets = []target{
	{"etcd", startEtcd},
	{"metastore", startMetastore},
}

// TestRobustnessTraffic records etcd's own robustness traffic on a fresh
// cluster of 1 and 3 members and checks the history with etcd's model.
// Before the fix of the lease response headers, 3 MetaStore members failed
// it (a LeaseRevoke reported a revision written after it).
func TestRobustnessTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("sends traffic for a while; skipped under -short")
	}
	only := os.Getenv("ROBUSTNESS_TARGET") // "etcd", "metastore" or both
	for _, tr := range []struct {
		name    string
		traffic traffic.Traffic
	}{
		{"EtcdPutDeleteLease", traffic.EtcdPutDeleteLease},
	} {
		for _, tg := range targets {
			if only != "" && !strings.Contains(only, tg.name) {
				continue
			}
			for _, size := range []int{1, 3} {
				if tg.name == "etcd" && size == 1 {
					continue // the reference runs the harder shape only
				}
				t.Run(tr.name+"/"+tg.name+"/members="+itoa(size), func(t *testing.T) {
					c := tg.start(t, size)
					runTraffic(t, c, tr.traffic, duration(t))
				})
			}
		}
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

// runTraffic sends tr to c for d, then validates the recorded history.
func runTraffic(t *testing.T, c *cluster, tr traffic.Traffic, d time.Duration) {
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithTimeout(t.Context(), d+2*time.Minute)
	defer cancel()

	baseTime := time.Now()
	set := client.NewSet(identity.NewIDProvider(), baseTime)
	defer set.Close()
	if err := traffic.CheckEmptyDatabaseAtStart(ctx, lg, c.Endpoints, set); err != nil {
		t.Fatal(err)
	}
	kv := profile.KeyValue
	limiter := rate.NewLimiter(rate.Limit(kv.MaximalQPS), kv.BurstableQPS)
	finish := make(chan struct{})
	var wg sync.WaitGroup
	err := traffic.SimulateKeyValueTraffic(ctx, &wg, kv, c.Endpoints, set, tr, traffic.RunTrafficLoopParam{
		QPSLimiter:                         limiter,
		IDs:                                set.IdentityProvider(),
		LeaseIDStorage:                     identity.NewLeaseIDStorage(),
		NonUniqueRequestConcurrencyLimiter: traffic.NewConcurrencyLimiter(kv.MaxNonUniqueRequestConcurrency),
		KeyStore:                           traffic.NewKeyStore(10, "key"),
		Finish:                             finish,
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
	start := time.Since(baseTime)
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	close(finish)
	wg.Wait()
	end := time.Since(baseTime)

	// As upstream: the history must end with a successful write, so that
	// every request whose outcome is unknown is ordered before it.
	last, err := set.NewClient(c.Endpoints)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := last.Put(ctx, "tombstone", "true"); err != nil {
		t.Fatalf("last put: %v", err)
	}
	last.Close()

	reports := set.Reports()
	stats := traffic.CalculateStats(reports, start, end)
	t.Logf("%d operations succeeded, %d failed, %.0f QPS", stats.Successes, stats.Failures, stats.QPS())
	if stats.QPS() < kv.MinimalQPS {
		t.Errorf("only %.0f QPS, below the profile's minimum of %.0f: the run proves too little", stats.QPS(), kv.MinimalQPS)
	}
	result := validate.ValidateAndReturnVisualize(lg, validate.Config{ExpectRevisionUnique: tr.ExpectUniqueRevision()}, reports, nil, 5*time.Minute)
	if err := result.Error(); err != nil {
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
		t.Fatalf("history of %d operations is not valid: %v", stats.Successes+stats.Failures, err)
	}
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
		b.WriteString("not placed after it (earliest calls):\n")
		for _, op := range all[:min(n, len(all))] {
			fmt.Fprintf(&b, "  client %d [%d..%d] %s\n", op.ClientId, op.Call, op.Return, m.DescribeOperation(op.Input, op.Output))
		}
	}
	return b.String()
}
