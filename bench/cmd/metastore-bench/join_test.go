package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// join and join --replace end to end, on this test binary acting as etcd
// and on MetaStore when make test sets METASTORE_BIN.
func TestJoinEndToEnd(t *testing.T) {
	t.Setenv(actAsEtcd, "1")
	self, err := os.Executable()
	require.NoError(t, err)
	msBin := self
	if b := os.Getenv("METASTORE_BIN"); b != "" {
		msBin = b
	}
	dir := t.TempDir()
	out := runBench(t, "join", "--etcd-bin", self, "--metastore-bin", msBin, "--keys", "0,300",
		"--data-dir", filepath.Join(dir, "j"))
	require.Contains(t, out, "| 300 | etcd |")
	require.Contains(t, out, "| 300 | MetaStore |")
	out = runBench(t, "join", "--replace", "--only", "metastore", "--etcd-bin", self, "--metastore-bin", msBin,
		"--keys", "200", "--window", "200ms", "--data-dir", filepath.Join(dir, "r"))
	require.Contains(t, out, "| 200 | MetaStore |")
	require.Equal(t, "1 M", count(1000000))
	require.Equal(t, "100 k", count(100000))
	require.Equal(t, "7", count(7))
}
