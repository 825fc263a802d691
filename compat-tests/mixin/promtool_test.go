package mixin

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-jsonnet"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/metastore/metastore/compat-tests/internal/procs"
	"github.com/metastore/metastore/tools/etcdtest"
)

// promtool returns Prometheus's promtool (tools/promtool.sh fetches
// Debian's).
func promtool(t *testing.T) string {
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	out, err := exec.Command("../../tools/promtool.sh").Output()
	require.NoError(t, err, "tools/promtool.sh")
	return strings.TrimSpace(string(out))
}

// renderRules writes the mixin's alerting rules, as its Makefile renders
// them, to dir/manifests/etcd-prometheusRules.yaml (JSON, which is
// YAML) and returns the path.
func renderRules(t *testing.T, mixin, dir string) string {
	vm := jsonnet.MakeVM()
	vm.Importer(&jsonnet.FileImporter{JPaths: []string{mixin}})
	out, err := vm.EvaluateAnonymousSnippet("rules.jsonnet", `(import "mixin.libsonnet").prometheusAlerts`)
	require.NoError(t, err)
	path := filepath.Join(dir, "manifests", "etcd-prometheusRules.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
	return path
}

func runPromtool(t *testing.T, bin, dir string, args ...string) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	t.Logf("promtool %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
}

// TestMixinRulesPromtool: the rendered rules pass promtool check rules,
// and the mixin's own test.yaml passes promtool test rules.
func TestMixinRulesPromtool(t *testing.T) {
	bin := promtool(t)
	mixin := mixinDir(t)
	dir := t.TempDir()
	renderRules(t, mixin, dir)
	runPromtool(t, bin, dir, "check", "rules", "manifests/etcd-prometheusRules.yaml")
	tests, err := os.ReadFile(filepath.Join(mixin, "test.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(tests), "rule_files: [manifests/etcd-prometheusRules.yaml]")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "test.yaml"), tests, 0o644))
	runPromtool(t, bin, dir, "test", "rules", "test.yaml")
}

// scrapeSeries scrapes ep and returns every sample as a series in
// PromQL notation, with job="etcd" and instance=ep added as Prometheus
// adds them; NaN samples are dropped (a series without a value).
func scrapeSeries(t *testing.T, ep string) map[string]float64 {
	resp, err := http.Get("http://" + ep + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	add := func(name string, labels []*dto.LabelPair, extra map[string]string, v float64) {
		if math.IsNaN(v) {
			return
		}
		ls := map[string]string{"job": "etcd", "instance": ep}
		for _, l := range labels {
			ls[l.GetName()] = l.GetValue()
		}
		for k, v := range extra {
			ls[k] = v
		}
		var keys []string
		for k := range ls {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+strconv.Quote(ls[k]))
		}
		out[name+"{"+strings.Join(parts, ",")+"}"] = v
	}
	for name, f := range fams {
		for _, m := range f.Metric {
			switch {
			case m.Counter != nil:
				add(name, m.Label, nil, m.Counter.GetValue())
			case m.Gauge != nil:
				add(name, m.Label, nil, m.Gauge.GetValue())
			case m.Untyped != nil:
				add(name, m.Label, nil, m.Untyped.GetValue())
			case m.Histogram != nil:
				for _, b := range m.Histogram.Bucket {
					add(name+"_bucket", m.Label, map[string]string{"le": strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)}, float64(b.GetCumulativeCount()))
				}
				add(name+"_bucket", m.Label, map[string]string{"le": "+Inf"}, float64(m.Histogram.GetSampleCount()))
				add(name+"_sum", m.Label, nil, m.Histogram.GetSampleSum())
				add(name+"_count", m.Label, nil, float64(m.Histogram.GetSampleCount()))
			case m.Summary != nil:
				for _, q := range m.Summary.Quantile {
					add(name, m.Label, map[string]string{"quantile": strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)}, q.GetValue())
				}
				add(name+"_sum", m.Label, nil, m.Summary.GetSampleSum())
				add(name+"_count", m.Label, nil, float64(m.Summary.GetSampleCount()))
			}
		}
	}
	out[`up{instance=`+strconv.Quote(ep)+`,job="etcd"}`] = 1
	return out
}

// A promtool unit test file (https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/).
type (
	ruleTests struct {
		RuleFiles          []string    `json:"rule_files"`
		EvaluationInterval string      `json:"evaluation_interval"`
		Tests              []ruleGroup `json:"tests"`
	}
	ruleGroup struct {
		Name     string      `json:"name"`
		Interval string      `json:"interval"`
		Input    []inSeries  `json:"input_series"`
		Alerts   []alertTest `json:"alert_rule_test,omitempty"`
		Exprs    []exprTest  `json:"promql_expr_test,omitempty"`
	}
	inSeries struct {
		Series string `json:"series"`
		Values string `json:"values"`
	}
	alertTest struct {
		EvalTime string     `json:"eval_time"`
		Alert    string     `json:"alertname"`
		Expect   []expAlert `json:"exp_alerts"`
	}
	expAlert struct {
		Labels      map[string]string `json:"exp_labels"`
		Annotations map[string]string `json:"exp_annotations"`
	}
	exprTest struct {
		Expr     string      `json:"expr"`
		EvalTime string      `json:"eval_time"`
		Samples  []expSample `json:"exp_samples"`
	}
	expSample struct {
		Labels string  `json:"labels"`
		Value  float64 `json:"value"`
	}
)

// inputSeries turns scrapes taken one after the other into promtool
// input: each scrape's values held for 10 one-minute steps.
func inputSeries(scrapes ...map[string]float64) []inSeries {
	all := map[string]bool{}
	for _, s := range scrapes {
		for k := range s {
			all[k] = true
		}
	}
	var names []string
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []inSeries
	for _, k := range names {
		var vals []string
		for _, s := range scrapes {
			v := "_"
			if x, ok := s[k]; ok {
				v = strconv.FormatFloat(x, 'g', -1, 64)
			}
			for range 10 {
				vals = append(vals, v)
			}
		}
		out = append(out, inSeries{Series: k, Values: strings.Join(vals, " ")})
	}
	return out
}

// hasSeries reports whether series holds one of metric name.
func hasSeries(series map[string]float64, name string) bool {
	for k := range series {
		if strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

// alertMetricNames are the metric names the alerts read (label names
// such as grpc_code left out).
func alertMetricNames(exprs map[string]string) []string {
	set := map[string]bool{}
	for _, e := range exprs {
		for _, n := range names(e) {
			switch n {
			case "grpc_code", "grpc_method", "grpc_service", "grpc_type":
				continue
			}
			set[n] = true
		}
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestMixinAlertsOnScrapedSeries feeds promtool what a live three-member
// cluster exposes, before and after traffic, and has it evaluate the
// mixin's rules: every series an alert reads exists with the count the
// members expose, and no alert fires on a healthy cluster. On MetaStore,
// two members are then paused: the third's own series must make
// etcdNoLeader fire, as it does for etcd.
func TestMixinAlertsOnScrapedSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("needs bin/metastore: make test runs it after the build (make mixin)")
	}
	bin := promtool(t)
	mixin := mixinDir(t)
	exprs := alertExprs(t, mixin)
	metricNames := alertMetricNames(exprs)
	for _, target := range []struct {
		name  string
		start func(t *testing.T) ([]string, *procs.Cluster)
	}{
		{"etcd", func(t *testing.T) ([]string, *procs.Cluster) {
			return etcdtest.StartT(t, etcdtest.Config{Members: 3, Configure: func(_ int, cfg *embed.Config) { cfg.Metrics = "extensive" }}).Endpoints, nil
		}},
		{"metastore", func(t *testing.T) ([]string, *procs.Cluster) {
			c := procs.StartMetastore(t, 3, "--metrics", "extensive")
			return c.Endpoints, c
		}},
	} {
		t.Run(target.name, func(t *testing.T) {
			dir := t.TempDir()
			renderRules(t, mixin, dir)
			eps, cluster := target.start(t)
			scrapeAll := func() map[string]float64 {
				all := map[string]float64{}
				for _, ep := range eps {
					for k, v := range scrapeSeries(t, ep) {
						all[k] = v
					}
				}
				return all
			}
			before := scrapeAll()
			stop := traffic(t, eps)
			// Peer round trips appear once the links measured one.
			var after map[string]float64
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				after = scrapeAll()
				if hasSeries(after, "etcd_network_peer_round_trip_time_seconds_bucket") || time.Now().After(deadline) {
					break
				}
			}
			stop()
			healthy := ruleGroup{Name: "healthy " + target.name, Interval: "1m", Input: inputSeries(before, after)}
			for _, n := range metricNames {
				count := 0
				for k := range after {
					if strings.HasPrefix(k, n+"{") {
						count++
					}
				}
				if count == 0 && target.name == "etcd" && etcdCreatesOnEvent[n] {
					continue
				}
				require.Positive(t, count, "%s exposes no %s series", target.name, n)
				healthy.Exprs = append(healthy.Exprs, exprTest{
					Expr: fmt.Sprintf("count(%s)", n), EvalTime: "15m", Samples: []expSample{{Labels: "{}", Value: float64(count)}},
				})
			}
			var alerts []string
			for a := range exprs {
				alerts = append(alerts, a)
			}
			sort.Strings(alerts)
			for _, a := range alerts {
				for _, at := range []string{"12m", "19m"} {
					healthy.Alerts = append(healthy.Alerts, alertTest{EvalTime: at, Alert: a, Expect: []expAlert{}})
				}
			}
			tests := ruleTests{RuleFiles: []string{"manifests/etcd-prometheusRules.yaml"}, EvaluationInterval: "1m", Tests: []ruleGroup{healthy}}
			if cluster != nil {
				// Two of three paused: the third loses its leader.
				require.NoError(t, cluster.Signal(1, syscall.SIGSTOP))
				require.NoError(t, cluster.Signal(2, syscall.SIGSTOP))
				var lone map[string]float64
				require.Eventually(t, func() bool {
					lone = scrapeSeries(t, eps[0])
					return lone[`etcd_server_has_leader{instance=`+strconv.Quote(eps[0])+`,job="etcd"}`] == 0
				}, 20*time.Second, 100*time.Millisecond, "the member alone reports no leader")
				require.NoError(t, cluster.Signal(1, syscall.SIGCONT))
				require.NoError(t, cluster.Signal(2, syscall.SIGCONT))
				tests.Tests = append(tests.Tests, ruleGroup{
					Name: "no leader", Interval: "1m", Input: inputSeries(lone),
					Alerts: []alertTest{{EvalTime: "5m", Alert: "etcdNoLeader", Expect: []expAlert{{
						Labels: map[string]string{"job": "etcd", "instance": eps[0], "severity": "critical"},
						Annotations: map[string]string{
							"description": fmt.Sprintf(`etcd cluster "etcd": member %s has no leader.`, eps[0]),
							"summary":     "etcd cluster has no leader.",
						},
					}}}},
				})
			}
			b, err := json.MarshalIndent(tests, "", " ")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "scraped.yaml"), b, 0o644))
			runPromtool(t, bin, dir, "test", "rules", "scraped.yaml")
			t.Logf("%s: %d input series, %d alert names × 2 times silent, %d series counts checked", target.name, len(healthy.Input), len(alerts), len(healthy.Exprs))
		})
	}
}
