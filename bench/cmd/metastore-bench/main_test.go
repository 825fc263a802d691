package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metastore/metastore/bench"
	"github.com/metastore/metastore/tools/etcdtest"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"go.uber.org/zap"
)

// actAsEtcd makes this test binary run etcd's main when set: compare's
// end-to-end test starts it as both targets, so it needs no etcd build.
const actAsEtcd = "METASTORE_BENCH_TEST_ACT_AS_ETCD"

func TestMain(m *testing.M) {
	if os.Getenv(actAsEtcd) == "1" {
		etcdmain.Main(os.Args)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type etcdOpts struct {
	tls  *certs // serve TLS with these, client certificates required
	auth bool   // enable auth with user root, password "rootpw"
}

func startEtcd(t *testing.T, o etcdOpts) string {
	var tlsInfo *transport.TLSInfo
	if o.tls != nil {
		tlsInfo = &transport.TLSInfo{CertFile: o.tls.serverCert, KeyFile: o.tls.serverKey,
			TrustedCAFile: o.tls.ca, ClientCertAuth: true}
	}
	e := etcdtest.StartT(t, etcdtest.Config{ClientTLS: tlsInfo})
	if o.auth {
		c, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, Logger: zap.NewNop()})
		require.NoError(t, err)
		defer c.Close()
		ctx := context.Background()
		_, err = c.UserAdd(ctx, "root", "rootpw")
		require.NoError(t, err)
		_, err = c.UserGrantRole(ctx, "root", "root")
		require.NoError(t, err)
		_, err = c.AuthEnable(ctx)
		require.NoError(t, err)
	}
	return e.Endpoints[0]
}

func runBench(t *testing.T, args ...string) string {
	t.Helper()
	out, err := execBench(args...)
	require.NoError(t, err, out)
	return out
}

func execBench(args ...string) (string, error) {
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	if os.Getenv("BENCH_TEST_VERBOSE") != "" {
		root.SetErr(io.MultiWriter(&errOut, os.Stderr))
	}
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

type summary struct {
	Workload    string           `json:"workload"`
	Total       int              `json:"total"`
	Errors      int              `json:"errors"`
	Throughput  float64          `json:"throughput_ops_per_sec"`
	Percentiles map[string]int64 `json:"percentiles_ns"`
	Histogram   []struct {
		Count int `json:"count"`
	} `json:"histogram"`
	ErrorCounts map[string]int `json:"error_counts"`
}

func runJSON(t *testing.T, args ...string) []summary {
	t.Helper()
	out := runBench(t, append([]string{"--output", "json"}, args...)...)
	var s []summary
	require.NoError(t, json.Unmarshal([]byte(out), &s), out)
	return s
}

// A tiny workload of each kind against an embedded etcd: the output has
// the summary's shape. No timing is asserted.
func TestWorkloadsAgainstEtcd(t *testing.T) {
	ep := startEtcd(t, etcdOpts{})
	sums := runJSON(t, "--endpoints", ep, "--conns", "2", "--clients", "4", "--total", "200",
		"put", "--key-size", "16", "--val-size", "64", "--key-space-size", "50")
	require.Len(t, sums, 1)
	s := sums[0]
	require.Equal(t, "put", s.Workload)
	require.Equal(t, 200, s.Total)
	require.Zero(t, s.Errors)
	require.Positive(t, s.Throughput)
	for _, p := range []string{"50", "90", "99", "99.9"} {
		require.Positive(t, s.Percentiles[p], p)
	}
	n := 0
	for _, b := range s.Histogram {
		n += b.Count
	}
	require.Equal(t, 200, n, "every request in the histogram")

	txt := runBench(t, "--endpoints", ep, "--total", "50", "txn-put", "--sequential-keys", "--key-space-size", "10")
	require.Contains(t, txt, "Summary (txn-put):")
	require.Contains(t, txt, "Latency distribution:")
	txt = runBench(t, "--endpoints", ep, "--total", "50", "--clients", "5", "range", "somekey", "--consistency", "s")
	require.Contains(t, txt, "Summary (range-s):")

	txt = runBench(t, "--endpoints", ep, "--total", "40", "--clients", "4", "--conns", "2", "lease-keepalive")
	require.Contains(t, txt, "Summary (lease-keepalive):")
	require.NotContains(t, txt, "Error distribution")
	txt = runBench(t, "--endpoints", ep, "--total", "20", "--clients", "4", "--conns", "4", "lock")
	require.Contains(t, txt, "Summary (lock):")
	require.NotContains(t, txt, "Error distribution")
	txt = runBench(t, "--endpoints", ep, "--total", "20", "--clients", "4", "--conns", "4", "lock", "--server-side")
	require.Contains(t, txt, "Summary (lock):")
	require.NotContains(t, txt, "Error distribution")

	// txn-mixed keeps the read/write ratio: one client, 3 reads per write.
	sums = runJSON(t, "--endpoints", ep, "--total", "200", "txn-mixed", "k", "--rw-ratio", "3", "--key-space-size", "20")
	require.Len(t, sums, 3)
	require.Equal(t, []string{"txn-mixed", "txn-mixed-read", "txn-mixed-write"}, []string{sums[0].Workload, sums[1].Workload, sums[2].Workload})
	require.Equal(t, 200, sums[0].Total)
	require.Equal(t, 150, sums[1].Total)
	require.Equal(t, 50, sums[2].Total)
	require.Zero(t, sums[0].Errors)

	// --sample adds a timeline accounting for every request.
	var tl []struct {
		Second, Requests int
	}
	out := runBench(t, "--endpoints", ep, "--total", "100", "--output", "json", "--sample", "put")
	var withTL []struct {
		PerSecond []struct {
			Second   int `json:"second"`
			Requests int `json:"requests"`
		} `json:"per_second"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &withTL), out)
	n = 0
	for _, s := range withTL[0].PerSecond {
		n += s.Requests
		tl = append(tl, struct{ Second, Requests int }{s.Second, s.Requests})
	}
	require.Equal(t, 100, n, "every request in the timeline: %v", tl)
	require.Contains(t, runBench(t, "--endpoints", ep, "--total", "10", "--sample", "put"), "Per second (requests, slowest):")

	// --rate and --plot.
	plotFile := filepath.Join(t.TempDir(), "lat.svg")
	txt = runBench(t, "--endpoints", ep, "--total", "20", "--plot", plotFile, "put", "--rate", "1000")
	require.Contains(t, txt, "Summary (put):")
	svg, err := os.ReadFile(plotFile)
	require.NoError(t, err)
	require.Contains(t, string(svg), "<svg")

	// --target-leader finds the one member among a dead endpoint.
	sums = runJSON(t, "--endpoints", "127.0.0.1:1,"+ep, "--dial-timeout", "1s", "--target-leader", "--total", "20", "put")
	require.Zero(t, sums[0].Errors)

	for args, want := range map[string]string{
		"range k --consistency x":        `--consistency: "x" is not l or s`,
		"txn-mixed k --rw-ratio -1":      `--rw-ratio: -1 is negative`,
		"--output yaml put":              `--output: "yaml" is not text or json`,
		"--password x put":               `--password: needs --user`,
		"--user a:b --password c put":    `password given both`,
		"--cert x.crt put":               `--cert and --key go together`,
		"compare --workloads put-1,nope": `--workloads: unknown nope`,
	} {
		out, err := execBench(append([]string{"--endpoints", ep}, strings.Fields(args)...)...)
		require.ErrorContains(t, err, want, "%s: %s", args, out)
	}
}

// Watch workloads: every watcher gets every put of its key.
func TestWatchWorkloads(t *testing.T) {
	ep := startEtcd(t, etcdOpts{})
	sums := runJSON(t, "--endpoints", ep, "--conns", "2", "--clients", "3",
		"watch", "--streams", "3", "--watch-per-stream", "4", "--watched-key-total", "5", "--put-total", "50")
	require.Len(t, sums, 3)
	require.Equal(t, "watch-create", sums[0].Workload)
	require.Equal(t, 12, sums[0].Total)
	require.Equal(t, "watch-put", sums[1].Workload)
	require.Equal(t, 50, sums[1].Total)
	require.Equal(t, "watch-events", sums[2].Workload)
	// 12 watchers over 5 keys: keys 0, 1 have 3 watchers, keys 2–4 have
	// 2; 50 puts round robin = 10 per key → 10×(3+3+2+2+2) events.
	require.Equal(t, 120, sums[2].Total)
	for _, s := range sums {
		require.Zero(t, s.Errors, s.Workload)
	}

	sums = runJSON(t, "--endpoints", ep, "watch-latency", "--streams", "2", "--watchers-per-stream", "3",
		"--put-total", "20", "--put-rate", "500", "--prevkv")
	require.Equal(t, []string{"watch-latency-create", "watch-latency-put", "watch-latency-events"},
		[]string{sums[0].Workload, sums[1].Workload, sums[2].Workload})
	require.Equal(t, 6*20, sums[2].Total)
	require.Zero(t, sums[2].Errors)
}

// TLS with client certificates and etcd auth, as etcd benchmark's flags.
func TestTLSAndAuth(t *testing.T) {
	c := newCerts(t, t.TempDir())
	ep := startEtcd(t, etcdOpts{tls: &c})
	sums := runJSON(t, "--endpoints", ep, "--cacert", c.ca, "--cert", c.clientCert, "--key", c.clientKey, "--total", "20", "put")
	require.Zero(t, sums[0].Errors)
	// Without the CA the server's certificate is not trusted.
	_, err := execBench("--endpoints", ep, "--cert", c.clientCert, "--key", c.clientKey, "--total", "5", "--timeout", "1s", "--dial-timeout", "1s", "put")
	require.Error(t, err)
	sums = runJSON(t, "--endpoints", ep, "--insecure-skip-tls-verify", "--cert", c.clientCert, "--key", c.clientKey, "--total", "5", "put")
	require.Zero(t, sums[0].Errors)

	ep = startEtcd(t, etcdOpts{auth: true})
	sums = runJSON(t, "--endpoints", ep, "--user", "root:rootpw", "--total", "20", "put")
	require.Zero(t, sums[0].Errors)
	sums = runJSON(t, "--endpoints", ep, "--user", "root", "--password", "rootpw", "--total", "20", "range", "k")
	require.Zero(t, sums[0].Errors)
	// Without credentials every request fails with etcd's error.
	// Without credentials every request fails with etcd's error: the
	// summary shows it and the tool exits non-zero.
	out, err := execBench("--endpoints", ep, "--total", "5", "put")
	require.ErrorContains(t, err, "all 5 requests failed")
	require.Contains(t, out, "[5]\t"+rpctypes.ErrUserEmpty.Error())
	_, err = execBench("--endpoints", ep, "--user", "root:wrong", "--total", "5", "put")
	require.ErrorContains(t, err, rpctypes.ErrAuthFailed.Error())
}

// Insert writes a new key with every request, also across runs of one
// Op (a warm-up, then the measured run): the key count grows by the
// number of requests.
func TestInsertWritesNewKeys(t *testing.T) {
	ep := startEtcd(t, etcdOpts{})
	ctx := context.Background()
	cfg := bench.Config{Endpoints: []string{ep}, Conns: 2, Clients: 4, Total: 60}
	conns, err := bench.Dial(ctx, cfg)
	require.NoError(t, err)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	op := bench.Insert(bench.KeyConfig{KeySize: 16, ValSize: 32, KeySpaceSize: 10})
	for range 2 {
		sums, err := bench.RunOn(ctx, conns, cfg, "insert", op)
		require.NoError(t, err)
		require.Zero(t, sums[0].Errors)
	}
	r, err := conns[0].Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.EqualValues(t, 120, r.Count, "every request a new key, whatever the key space")
}
