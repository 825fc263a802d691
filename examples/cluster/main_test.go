package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The example runs against bin/metastore (METASTORE_BIN, or the one make
// build puts beside the examples), and against etcd 3.7.3 when its binary
// is in the cache the bench tool builds it into.
func TestExample(t *testing.T) {
	bins := map[string]string{"metastore": os.Getenv("METASTORE_BIN")}
	if bins["metastore"] == "" {
		bins["metastore"], _ = filepath.Abs("../../bin/metastore")
	}
	if cache, err := os.UserCacheDir(); err == nil {
		bins["etcd"] = filepath.Join(cache, "metastore", "etcd-v3.7.3", "etcd")
	}
	for name, bin := range bins {
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(bin); err != nil {
				if name == "etcd" || testing.Short() {
					t.Skipf("%s not built: %v", bin, err)
				}
				t.Fatalf("%s missing (make build): %v", bin, err)
			}
			var out, errOut bytes.Buffer
			require.Equal(t, 0, cli([]string{"-bin", bin, "-dir", t.TempDir()}, &out, &errOut), "%s\n%s", out.String(), errOut.String())
			for _, want := range []string{
				"promoted m1",
				"members: m0 voter, m1 voter, m2 voter",
				"removed m1",
				"members: m0 voter\n",
				"wrote step/4; every member serves all 4 keys",
			} {
				require.Contains(t, out.String(), want)
			}
		})
	}
}

func TestExampleFailsOnBadBinary(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 1, cli([]string{"-bin", "/nonexistent/metastore"}, &out, &errOut))
	require.Contains(t, errOut.String(), "cluster example:")
	require.Equal(t, 2, cli([]string{"-nope"}, &out, &errOut))
}
