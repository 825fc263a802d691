package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tools are the binaries the example runs: bin/metastore (METASTORE_BIN,
// or the one make build puts beside the examples) and etcd, etcdctl and
// etcdutl 3.7.3 from the cache tools/etcd-tools.sh builds them into (make
// test does, before the examples run).
func tools(t *testing.T) []string {
	ms := os.Getenv("METASTORE_BIN")
	if ms == "" {
		ms, _ = filepath.Abs("../../bin/metastore")
	}
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	args := []string{"-metastore", ms}
	for _, tool := range []string{"etcd", "etcdctl", "etcdutl"} {
		args = append(args, "-"+tool, filepath.Join(cache, "metastore", tool+"-v3.7.3", tool))
	}
	for i := 1; i < len(args); i += 2 {
		if _, err := os.Stat(args[i]); err != nil {
			if testing.Short() {
				// make test's module pass runs before the build; its
				// pass over the examples after it runs this in full.
				t.Skipf("%s not built (tools/etcd-tools.sh, make build): %v", args[i], err)
			}
			t.Fatalf("%s missing (tools/etcd-tools.sh, make build): %v", args[i], err)
		}
	}
	return args
}

func TestExample(t *testing.T) {
	var out, errOut bytes.Buffer
	args := append(tools(t), "-dir", t.TempDir(), "-keys", "1000")
	require.Equal(t, 0, cli(args, &out, &errOut), "%s\n%s", out.String(), errOut.String())
	for _, want := range []string{
		"$ etcdctl --endpoints http://127.0.0.1:",
		"snapshot save ",
		"$ metastore snapshot restore ",
		"# etcd -> MetaStore: the same 503 keys",
		"# a put after the move: revision ",
		"$ etcdutl snapshot restore ",
		"# MetaStore -> etcd: the same 504 keys",
		"# etcd data dir -> MetaStore: the same 505 keys",
		"users [app root]",
		"files in ",
	} {
		require.Contains(t, out.String(), want)
	}
	require.NotContains(t, out.String(), "differs")
}

// A server that does not keep the data is caught: the example, given etcd
// where it expects metastore, fails at the first restore.
func TestExampleFailsWhenAStepFails(t *testing.T) {
	args := tools(t)
	args[1] = args[3] // etcd in metastore's place: `etcd snapshot restore` is not a command
	var out, errOut bytes.Buffer
	require.Equal(t, 1, cli(append(args, "-dir", t.TempDir(), "-keys", "10"), &out, &errOut), "%s", out.String())
	require.True(t, strings.HasPrefix(errOut.String(), "backup example: "), errOut.String())
}

func TestExampleRefusesBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, cli([]string{"-nope"}, &out, &errOut))
	require.Equal(t, 1, cli([]string{"-metastore", "/nonexistent/metastore"}, &out, &errOut))
	require.Contains(t, errOut.String(), "backup example:")
}
