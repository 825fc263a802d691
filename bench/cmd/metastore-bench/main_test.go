package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func startEtcd(t *testing.T) string {
	addr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		return l.Addr().String()
	}
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := url.URL{Scheme: "http", Host: addr()}, url.URL{Scheme: "http", Host: addr()}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready")
	}
	return client.Host
}

func runBench(t *testing.T, args ...string) string {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	require.NoError(t, root.Execute(), out.String())
	return out.String()
}

// A tiny workload of each kind against an embedded etcd: the output has
// the summary's shape. No timing is asserted.
func TestWorkloadsAgainstEtcd(t *testing.T) {
	ep := startEtcd(t)
	out := runBench(t, "--endpoints", ep, "--conns", "2", "--clients", "4", "--total", "200", "--output", "json",
		"put", "--key-size", "16", "--val-size", "64", "--key-space-size", "50")
	var s struct {
		Workload    string           `json:"workload"`
		Total       int              `json:"total"`
		Errors      int              `json:"errors"`
		Throughput  float64          `json:"throughput_ops_per_sec"`
		Percentiles map[string]int64 `json:"percentiles_ns"`
		Histogram   []struct {
			Count int `json:"count"`
		} `json:"histogram"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &s), out)
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

	root := newRoot()
	root.SetArgs([]string{"--endpoints", ep, "range", "k", "--consistency", "x"})
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	require.ErrorContains(t, root.Execute(), `--consistency: "x" is not l or s`)
}
