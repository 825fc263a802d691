package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runCaptured runs the command line and returns its exit code and stderr.
func runCaptured(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stderr
	os.Stderr = w
	code := run(args)
	os.Stderr = old
	w.Close()
	out, _ := io.ReadAll(r)
	return code, string(out)
}

func TestBadFlagsExitWithOneLineNamingTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"--heartbeat-interval", "abc"}, `invalid value "abc" for flag -heartbeat-interval`},
		{[]string{"--listen-client-urls", "https://127.0.0.1:0"}, "TLS key/cert (--cert-file, --key-file) must be provided, or --auto-tls"},
		{[]string{"--tls-min-version", "TLS1.0"}, "--tls-min-version"},
		{[]string{"--max-learners", "0"}, "--max-learners: must be at least 1, got 0"},
		{[]string{"--log-format", "xml"}, `--log-format: "xml" is not json or console`},
		{[]string{"--logger", "capnslog"}, `--logger: "capnslog" is not supported (only zap)`},
		{[]string{"--auto-compaction-mode", "hourly"}, `--auto-compaction-mode: "hourly" is not periodic or revision`},
		{[]string{"--initial-cluster", "other=http://127.0.0.1:1"}, `--initial-cluster: couldn't find local name "default" in the initial cluster configuration`},
		{[]string{"--initial-cluster-state", "old"}, `--initial-cluster-state: "old" is not new or existing`},
		{[]string{"--config-file", "/does/not/exist.yml"}, "--config-file: open /does/not/exist.yml"},
	} {
		code, out := runCaptured(t, tc.args...)
		require.Equal(t, 2, code, "%v", tc.args)
		first, rest, _ := strings.Cut(out, "\n")
		require.Contains(t, first, tc.want, "%v", tc.args)
		if strings.Contains(tc.want, "flag -") || strings.Contains(tc.want, "not defined") {
			// A flag that does not parse: the usage hint follows, as etcd's.
			require.True(t, strings.HasPrefix(rest, "Usage:\n"), "usage after %v: %q", tc.args, rest)
		} else {
			require.Empty(t, strings.TrimSpace(rest), "one line for %v: %q", tc.args, out)
		}
	}
}

// A port in use: one line naming the flag and the address, exit 1, and
// no data dir made (the listeners are opened before it is).
func TestPortInUseRefusedInOneLineLeavingNothing(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	dir := filepath.Join(t.TempDir(), "data")
	url := "http://" + l.Addr().String()
	code, out := runCaptured(t, "--data-dir", dir, "--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", "http://127.0.0.1:0")
	require.Equal(t, 1, code)
	require.Contains(t, out, "--listen-client-urls: listen tcp "+l.Addr().String()+": bind: address already in use")
	require.Equal(t, 1, strings.Count(strings.TrimSpace(out), "\n")+1, "one line: %q", out)
	require.NotContains(t, out, "stacktrace")
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err), "no data dir left behind: %v", err)
}

func TestConfigFileReplacesFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etcd.yml")
	require.NoError(t, os.WriteFile(path, []byte(`
name: from-file
heartbeat-interval: abc
`), 0o600))
	code, out := runCaptured(t, "--config-file", path, "--heartbeat-interval", "100")
	require.Equal(t, 2, code)
	require.Contains(t, out, `invalid value "abc" for key "heartbeat-interval"`, "the file wins over the command line")

	// etcd's client-transport-security section sets the TLS flags.
	require.NoError(t, os.WriteFile(path, []byte(`
name: from-file
data-dir: `+filepath.Join(dir, "data")+`
listen-client-urls: https://127.0.0.1:0
client-transport-security:
  cert-file: /nonexistent-cert.pem
  key-file: /nonexistent-key.pem
`), 0o600))
	code, out = runCaptured(t, "--config-file", path)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "/nonexistent-cert.pem", "the section's cert-file is the certificate")
}
