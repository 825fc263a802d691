package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/bench/compare"
)

// compare end to end with real processes: this test binary acts as etcd
// for both targets (see TestMain), on one and three members. The output
// has the result's shape, the doc section is rewritten and the plot
// drawn. No timing is asserted.
func TestCompareEndToEnd(t *testing.T) {
	t.Setenv(actAsEtcd, "1") // inherited by the members started
	self, err := os.Executable()
	require.NoError(t, err)
	// make test sets METASTORE_BIN: B is then the real server.
	msBin := self
	if b := os.Getenv("METASTORE_BIN"); b != "" {
		msBin = b
	}
	dir := t.TempDir()
	doc := filepath.Join(dir, "docs", "benchmarks.md")
	require.NoError(t, os.MkdirAll(filepath.Dir(doc), 0o755))
	require.NoError(t, os.WriteFile(doc, []byte("# Benchmarks\n\nbefore\n\n"+compare.BeginMarker+"\nold table\n"+compare.EndMarker+"\n\nafter\n"), 0o644))
	plotFile := filepath.Join(dir, "docs", "ratios.png")

	out := runBench(t, "--output", "json", "--plot", plotFile, "compare",
		"--etcd-bin", self, "--metastore-bin", msBin, "--rounds", "2", "--duration", "300ms", "--warmup", "50ms",
		"--workloads", "put-1,range-s-100,put-100-3m", "--data-dir", filepath.Join(dir, "data"),
		"--update-doc", doc, "--record-command", "make bench-compare")
	var res compare.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Len(t, res.Rows, 3)
	require.Equal(t, []string{"put-1", "range-s-100", "put-100-3m"}, []string{res.Rows[0].Workload.ID, res.Rows[1].Workload.ID, res.Rows[2].Workload.ID})
	require.Len(t, res.Measurements, 2*2*3, "rounds × targets × workloads")
	for _, r := range res.Rows {
		for _, s := range []compare.Side{r.A, r.B} {
			require.Len(t, s.Throughput, 2, r.Workload.ID)
			require.Positive(t, s.Median, r.Workload.ID)
			require.Positive(t, s.MedianP99, r.Workload.ID)
			require.Zero(t, s.Errors, r.Workload.ID)
		}
		require.InDelta(t, r.B.Median/r.A.Median, r.Ratio, 1e-9)
	}
	// 300 ms of 100 clients keep both sides busy: CPU was counted.
	busy := res.Rows[1]
	for _, s := range []compare.Side{busy.A, busy.B} {
		require.Positive(t, s.ServerCPUPerOp)
		require.Positive(t, s.ClientCPUPerOp)
	}
	require.Contains(t, res.A.Ver, "etcd Version: 3.7")
	if msBin != self {
		require.Contains(t, res.B.Ver, "MetaStore Version:")
	}
	require.NotEmpty(t, res.Machine.CPU)

	md, err := os.ReadFile(doc)
	require.NoError(t, err)
	text := string(md)
	require.True(t, strings.HasPrefix(text, "# Benchmarks\n\nbefore\n\n"+compare.BeginMarker+"\n"), text)
	require.True(t, strings.HasSuffix(text, compare.EndMarker+"\n\nafter\n"), text)
	require.NotContains(t, text, "old table")
	require.Contains(t, text, "make bench-compare")
	require.Contains(t, text, "| put, 3 members, 100 clients / 10 conns |")
	require.Contains(t, text, "](ratios.png)", "the plot linked relative to the doc")

	f, err := os.Open(plotFile)
	require.NoError(t, err)
	defer f.Close()
	_, err = png.Decode(f)
	require.NoError(t, err)

	entries, err := os.ReadDir(filepath.Join(dir, "data"))
	require.NoError(t, err)
	require.Empty(t, entries, "every cluster's data dir removed")
}

// compare with --cacert/--cert/--key runs both servers with mutual TLS on
// client and peer URLs and measures over TLS.
func TestCompareOverTLS(t *testing.T) {
	t.Setenv(actAsEtcd, "1")
	self, err := os.Executable()
	require.NoError(t, err)
	msBin := self
	if b := os.Getenv("METASTORE_BIN"); b != "" {
		msBin = b
	}
	dir := t.TempDir()
	c := newCerts(t, dir)
	out := runBench(t, "--output", "json", "--cacert", c.ca, "--cert", c.bothCert, "--key", c.bothKey, "compare",
		"--etcd-bin", self, "--metastore-bin", msBin, "--rounds", "1", "--duration", "300ms", "--warmup", "50ms",
		"--workloads", "put-1,put-100-3m", "--data-dir", filepath.Join(dir, "data"))
	var res compare.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Len(t, res.Rows, 2)
	for _, r := range res.Rows {
		for _, s := range []compare.Side{r.A, r.B} {
			require.Positive(t, s.Median, r.Workload.ID)
			require.Zero(t, s.Errors, r.Workload.ID)
		}
	}
	_, err = execBench("--cacert", c.ca, "compare", "--etcd-bin", self, "--metastore-bin", msBin)
	require.ErrorContains(t, err, "needs --cacert, --cert and --key")
}
