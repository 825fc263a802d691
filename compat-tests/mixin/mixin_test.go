package mixin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-jsonnet"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/metastore/metastore/compat-tests/internal/procs"
	"github.com/metastore/metastore/tools/etcdtest"
)

// mixinModule holds contrib/mixin.
const mixinModule = "go.etcd.io/etcd/v3@v3.6.8"

// notExposed are names the mixin uses that MetaStore does not expose yet,
// with the reason; the test fails if one of them appears (remove it) or
// if anything else is missing.
var notExposed = map[string]string{}

// etcdCreatesOnEvent are series etcd creates only when the event first
// happens (a CounterVec child), so a healthy etcd cluster lacks them;
// MetaStore exposes them at zero from the start.
var etcdCreatesOnEvent = map[string]bool{"etcd_network_peer_sent_failures_total": true}

// mixinDir downloads the module (the module cache keeps it) and returns
// its contrib/mixin directory.
func mixinDir(t *testing.T) string {
	cmd := exec.Command("go", "mod", "download", "-json", mixinModule)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	require.NoError(t, err, "go mod download %s: %s", mixinModule, out)
	var mod struct{ Dir string }
	require.NoError(t, json.Unmarshal(out, &mod))
	return filepath.Join(mod.Dir, "contrib", "mixin")
}

// alertExprs renders the mixin's alerts and returns alert name → expr.
func alertExprs(t *testing.T, dir string) map[string]string {
	vm := jsonnet.MakeVM()
	vm.Importer(&jsonnet.FileImporter{JPaths: []string{dir}})
	out, err := vm.EvaluateAnonymousSnippet("alerts.jsonnet",
		`((import "config.libsonnet") + (import "alerts/alerts.libsonnet")).prometheusAlerts`)
	require.NoError(t, err)
	var doc struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	exprs := map[string]string{}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	return exprs
}

var ident = regexp.MustCompile(`[a-zA-Z_][a-zA-Z0-9_]*`)

// names returns the etcd_/grpc_/process_ identifiers in s: metric names
// and, among them, label names such as grpc_code.
func names(s string) []string {
	var out []string
	for _, id := range ident.FindAllString(s, -1) {
		if strings.HasPrefix(id, "etcd_") || strings.HasPrefix(id, "grpc_") || strings.HasPrefix(id, "process_") {
			if id == "etcd_selector" || id == "etcd_instance_labels" { // the mixin's config keys
				continue
			}
			out = append(out, id)
		}
	}
	return out
}

// exposed scrapes every endpoint and returns the metric family names
// (histograms also as _bucket/_sum/_count) and label names it saw.
func exposed(t *testing.T, eps []string) map[string]bool {
	seen := map[string]bool{}
	for _, ep := range eps {
		resp, err := http.Get("http://" + ep + "/metrics")
		require.NoError(t, err)
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		for name, f := range fams {
			seen[name] = true
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				seen[name+suffix] = true
			}
			for _, m := range f.Metric {
				for _, l := range m.Label {
					seen[l.GetName()] = true
				}
			}
		}
	}
	return seen
}

// traffic makes the series the dashboards graph: unary requests, a watch
// stream and a lease keepalive stream.
func traffic(t *testing.T, eps []string) func() {
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	_, err = c.Put(ctx, "k", "v")
	require.NoError(t, err)
	c.Watch(ctx, "k")
	l, err := c.Grant(ctx, 60)
	require.NoError(t, err)
	_, err = c.KeepAlive(ctx, l.ID)
	require.NoError(t, err)
	return func() { cancel(); c.Close() }
}

func TestMixinQueriesResolveOnMetaStore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs bin/metastore: make test runs it after the build (make mixin)")
	}
	dir := mixinDir(t)
	exprs := alertExprs(t, dir)
	require.GreaterOrEqual(t, len(exprs), 10, "the mixin's alerts rendered")
	used := map[string][]string{} // name → where it is used
	for alert, expr := range exprs {
		for _, n := range names(expr) {
			used[n] = append(used[n], "alert "+alert)
		}
	}
	// The dashboards' queries are format strings in targets.libsonnet
	// (rendering them needs grafonnet, which is not on the module proxy).
	src, err := os.ReadFile(filepath.Join(dir, "dashboards", "targets.libsonnet"))
	require.NoError(t, err)
	for _, n := range names(string(src)) {
		used[n] = append(used[n], "dashboard")
	}

	for _, target := range []struct {
		name  string
		start func(t *testing.T) []string
	}{
		// Three members each: the peer metrics exist only with peers; the
		// slow-request alert needs the histograms, on etcd as well.
		{"etcd", func(t *testing.T) []string {
			return etcdtest.StartT(t, etcdtest.Config{Members: 3, Configure: func(_ int, cfg *embed.Config) { cfg.Metrics = "extensive" }}).Endpoints
		}},
		{"metastore", func(t *testing.T) []string { return procs.StartMetastore(t, 3, "--metrics", "extensive").Endpoints }},
	} {
		t.Run(target.name, func(t *testing.T) {
			eps := target.start(t)
			stop := traffic(t, eps)
			defer stop()
			var seen map[string]bool
			deadline := time.Now().Add(15 * time.Second)
			var missing []string
			for {
				seen = exposed(t, eps)
				missing = missing[:0]
				for n, where := range used {
					if seen[n] || (target.name == "etcd" && etcdCreatesOnEvent[n]) {
						continue
					}
					if target.name == "etcd" || notExposed[n] == "" {
						missing = append(missing, fmt.Sprintf("%s (%s)", n, strings.Join(dedupe(where), ", ")))
					}
				}
				// Peer round trips appear once the links measured one.
				if len(missing) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			sort.Strings(missing)
			require.Empty(t, missing, "the mixin uses these and %s does not expose them", target.name)
			if target.name == "metastore" {
				for n := range notExposed {
					require.False(t, seen[n], "%s is exposed now: remove it from notExposed", n)
				}
			}
		})
	}
	t.Logf("%d alerts, %d metric and label names used by the alerts and dashboards, exposed by etcd and MetaStore (%d listed as not yet on MetaStore)", len(exprs), len(used), len(notExposed))
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
