package server_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// etcdctlVersion is the etcdctl the end-to-end test drives the real binary
// with.
const etcdctlVersion = "v3.7.3"

// buildEtcdctl builds etcdctl from the Go module proxy once into the user
// cache dir (a module of its own, since etcdctl's go.mod has replace
// directives that forbid `go install`).
func buildEtcdctl(t *testing.T) string {
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(cache, "metastore", "etcdctl-"+etcdctlVersion)
	bin := filepath.Join(dir, "etcdctl")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte("module etcdctlbuild\n\ngo 1.26\n"), 0o600))
	run := func(args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %v: %s", args, out)
	}
	run("get", "go.etcd.io/etcd/etcdctl/v3@"+etcdctlVersion, "google.golang.org/grpc@v1.83.2")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	run("build", "-o", bin, "go.etcd.io/etcd/etcdctl/v3")
	return bin
}

// ciRun reports whether the tests run in CI (CI=true), where the slow
// end-to-end tests run even under -short.
func ciRun() bool { return os.Getenv("CI") != "" }

// buildMetastore builds the server binary under test.
func buildMetastore(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "metastore")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/metastore")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestEtcdctlAgainstBinary starts the real metastore binary and drives it
// with the real etcdctl, as a user would.
func TestEtcdctlAgainstBinary(t *testing.T) {
	if testing.Short() && !ciRun() {
		t.Skip("builds etcdctl from the module proxy; runs in CI and without -short")
	}
	etcdctl, metastore := buildEtcdctl(t), buildMetastore(t)
	client, peer := "http://"+testcluster.FreeAddr(t), "http://"+testcluster.FreeAddr(t)
	logs := &syncBuffer{}
	srv := exec.Command(metastore, "--name", "e2e", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer)
	srv.Stdout, srv.Stderr = logs, logs
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()
	})
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "ready to serve client requests") },
		30*time.Second, 20*time.Millisecond, "the server logs readiness")

	ctl := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(etcdctl, append([]string{"--endpoints", client}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(want string, args ...string) {
		t.Helper()
		out, err := ctl("", args...)
		require.NoError(t, err, out)
		require.Equal(t, want, out, "etcdctl %v", args)
	}
	must("OK\n", "put", "foo", "bar")
	must("foo\nbar\n", "get", "foo")
	must("OK\n", "put", "foo", "baz")
	must("foo\nbar\n", "get", "foo", "--rev", "2")
	out, err := ctl("value(\"foo\") = \"baz\"\n\nput foo qux\n\nput foo nope\n\n", "txn")
	require.NoError(t, err, out)
	require.Equal(t, "SUCCESS\n\nOK\n", out)
	must("foo\nqux\n", "get", "foo")
	// watch replays history from a revision, then keeps waiting: stop it.
	wctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	wout, _ := exec.CommandContext(wctx, etcdctl, "--endpoints", client, "watch", "foo", "--rev", "2").Output()
	require.Equal(t, "PUT\nfoo\nbar\nPUT\nfoo\nbaz\nPUT\nfoo\nqux\n", string(wout))
	must("1\n", "del", "foo")
	must("compacted revision 3\n", "compaction", "3")
	out, err = ctl("", "get", "foo", "--rev", "2")
	require.Error(t, err)
	require.Contains(t, out, "etcdserver: mvcc: required revision has been compacted")
	// Leases: grant, attach, keep alive, inspect, revoke.
	out, err = ctl("", "lease", "grant", "60")
	require.NoError(t, err, out)
	m := regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	id := strings.TrimLeft(m[1], "0")
	must("OK\n", "put", "lk1", "v", "--lease", id)
	must("OK\n", "put", "lk2", "v", "--lease", id)
	out, err = ctl("", "lease", "timetolive", id, "--keys")
	require.NoError(t, err, out)
	require.Regexp(t, `^lease `+m[1]+` granted with TTL\(60s\), remaining\(5\ds\), attached keys\(\[lk1 lk2\]\)\n$`, out)
	must("lease 0000000000001234 already expired\n", "lease", "timetolive", "1234")
	must("lease "+m[1]+" keepalived with TTL(60)\n", "lease", "keep-alive", "--once", id)
	must("found 1 leases\n"+m[1]+"\n", "lease", "list")
	out, err = ctl("", "put", "x", "v", "--lease", "1234")
	require.Error(t, err)
	require.Contains(t, out, "etcdserver: requested lease not found")
	must("lease "+m[1]+" revoked\n", "lease", "revoke", id)
	must("", "get", "lk", "--prefix")
	out, err = ctl("", "lease", "revoke", id)
	require.Error(t, err)
	require.Contains(t, out, "etcdserver: requested lease not found")

	// The member table, with the client URL the member published.
	out, err = ctl("", "member", "list")
	require.NoError(t, err, out)
	require.Regexp(t, `^[0-9a-f]{1,16}, started, e2e, `+peer+`, `+client+`, false\n$`, out)

	// Maintenance: no alarms; defrag reaches the member.
	must("", "alarm", "list")
	out, err = ctl("", "defrag")
	require.NoError(t, err, out)
	require.Contains(t, out, "Finished defragmenting etcd member["+client+"]")

	// Auth: users, roles, permissions, enable, per-user access, disable.
	for _, step := range []struct {
		want string
		args []string
	}{
		{"User root created\n", []string{"user", "add", "root:rootpw"}},
		{"Role root is granted to user root\n", []string{"user", "grant-role", "root", "root"}},
		{"Role app created\n", []string{"role", "add", "app"}},
		{"Role app updated\n", []string{"role", "grant-permission", "app", "readwrite", "app/", "--prefix"}},
		{"Role app updated\n", []string{"role", "grant-permission", "app", "read", "logs/", "--from-key"}},
		{"User alice created\n", []string{"user", "add", "alice:alicepw"}},
		{"Role app is granted to user alice\n", []string{"user", "grant-role", "alice", "app"}},
		{"Role app\nKV Read:\n\t[app/, app0) (prefix app/)\n\t[logs/, <open ended>\nKV Write:\n\t[app/, app0) (prefix app/)\n", []string{"role", "get", "app"}},
		{"User: alice\nRoles: app\n", []string{"user", "get", "alice"}},
		{"alice\nroot\n", []string{"user", "list"}},
		{"app\n", []string{"role", "list"}},
		{"Authentication Enabled\n", []string{"auth", "enable"}},
		{"OK\n", []string{"--user", "alice:alicepw", "put", "app/x", "1"}},
		{"app/x\n1\n", []string{"--user", "alice:alicepw", "get", "app/", "--prefix"}},
		{"Authentication Status: true\nAuthRevision: 8\n", []string{"auth", "status"}},
	} {
		must(step.want, step.args...)
	}
	for _, c := range []struct {
		err  string
		args []string
	}{
		{"etcdserver: user name is empty", []string{"get", "app/x"}},
		{"etcdserver: permission denied", []string{"--user", "alice:alicepw", "put", "other", "1"}},
		{"etcdserver: permission denied", []string{"--user", "alice:alicepw", "get", "logs", "--from-key"}},
		{"etcdserver: authentication failed, invalid user ID or password", []string{"--user", "alice:wrong", "get", "app/x"}},
		{"etcdserver: permission denied", []string{"--user", "alice:alicepw", "user", "list"}},
		{"etcdserver: invalid auth management", []string{"--user", "root:rootpw", "user", "delete", "root"}},
	} {
		out, err := ctl("", c.args...)
		require.Error(t, err, "etcdctl %v: %s", c.args, out)
		require.Contains(t, out, c.err, "etcdctl %v", c.args)
	}
	out, err = ctl("newpw\n", "--user", "root:rootpw", "user", "passwd", "alice", "--interactive=false")
	require.NoError(t, err, out)
	require.Equal(t, "Password updated\n", out)
	must("app/x\n1\n", "--user", "alice:newpw", "get", "app/x")
	must("Permission of range [logs/, <open ended> is revoked from role app\n", "--user", "root:rootpw", "role", "revoke-permission", "app", "logs/", "--from-key")
	must("Role app is revoked from user alice\n", "--user", "root:rootpw", "user", "revoke-role", "alice", "app")
	out, err = ctl("", "--user", "alice:newpw", "get", "app/x")
	require.Error(t, err)
	require.Contains(t, out, "etcdserver: permission denied")
	must("Authentication Disabled\n", "--user", "root:rootpw", "auth", "disable")
	must("app/x\n1\n", "get", "app/x")
}
