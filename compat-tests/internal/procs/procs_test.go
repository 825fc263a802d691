package procs

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// These tests run whenever the binaries are there (after make build and
// tools/etcd-tools.sh) and skip otherwise, also under CI: make test runs
// the module tests before it builds, and again under make cover after.

func client(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func get(t *testing.T, c *clientv3.Client, key string, timeout time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := c.Get(ctx, key)
	if err != nil {
		return "", err
	}
	if len(r.Kvs) == 0 {
		return "", errors.New("not found")
	}
	return string(r.Kvs[0].Value), nil
}

// lifecycle checks what the fault suite relies on, on a one-member
// cluster: a write acknowledged before SIGKILL is there after Start; a
// killed member is not Running; SIGSTOP makes it stop answering and
// SIGCONT makes it answer again; its log is kept over starts.
func lifecycle(t *testing.T, c *Cluster) {
	cl := client(t, c.Endpoints...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if !c.Running(0) {
		t.Fatal("member m0 not running after start")
	}
	c.Kill(0)
	if c.Running(0) {
		t.Fatal("member m0 running after Kill")
	}
	c.Start(0)
	if err := c.Wait(0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := get(t, cl, "k", 10*time.Second); err != nil || v != "v" {
		t.Fatalf("k after restart = %q, %v; want v", v, err)
	}
	if err := c.Signal(0, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, cl, "k", 500*time.Millisecond); err == nil {
		t.Fatal("a paused member answered")
	}
	if err := c.Signal(0, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if v, err := get(t, cl, "k", 10*time.Second); err != nil || v != "v" {
		t.Fatalf("k after SIGCONT = %q, %v; want v", v, err)
	}
	if n := strings.Count(c.Log(0), "ready to serve client requests"); n < 2 {
		t.Fatalf("log of m0 tells of %d starts, want 2:\n%s", n, tail([]byte(c.Log(0)), 2048))
	}
}

func TestMetastoreLifecycle(t *testing.T) {
	if _, err := MetastoreBin(); err != nil {
		t.Skip(err)
	}
	c := StartMetastore(t, 1)
	lifecycle(t, c)
	// What a failed test gets from a hung member: its goroutines, in its
	// log, and the member gone.
	if err := c.Signal(0, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.dumpStacks()
	if c.Running(0) {
		t.Fatal("member m0 running after dumpStacks")
	}
	if !strings.Contains(c.Log(0), "goroutine ") {
		t.Fatalf("no goroutine dump in the log of m0:\n%s", tail([]byte(c.Log(0)), 2048))
	}
	// The Raft log of a stopped member exports as an etcd WAL.
	c.Stop()
	out := filepath.Join(t.TempDir(), "export")
	if err := c.ExportWAL(0, out); err != nil {
		t.Fatal(err)
	}
	wals, err := filepath.Glob(filepath.Join(out, "member", "wal", "*.wal"))
	if err != nil || len(wals) == 0 {
		t.Fatalf("no WAL file under %s (%v)", out, err)
	}
	if st, err := os.Stat(wals[0]); err != nil || st.Size() == 0 {
		t.Fatalf("WAL %s: %v, %v", wals[0], st, err)
	}
	// Exporting a data dir that is not one fails with the tool's answer.
	if err := c.ExportWAL(0, out); err == nil {
		t.Fatal("export over an existing directory succeeded")
	}
}

func TestEtcdLifecycle(t *testing.T) {
	if _, err := EtcdBin(); err != nil {
		t.Skip(err)
	}
	lifecycle(t, StartEtcd(t, 1))
}

// TestFailpointCrash: a member started with a failpoint armed to panic
// exits, Wait reports that it did, and it starts again without it.
func TestFailpointCrash(t *testing.T) {
	needFailpointsBin(t)
	c := StartMetastoreFailpoints(t, 1)
	cl := client(t, c.Endpoints...)
	c.Kill(0)
	c.StartEnv(0, "GOFAIL_FAILPOINTS=storageBeforeCommit=panic")
	// The member may get ready before its first commit; a write makes
	// one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, _ = cl.Put(ctx, "k", "v")
	cancel()
	deadline := time.Now().Add(30 * time.Second)
	for c.Running(0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if c.Running(0) {
		t.Fatal("member m0 still running with storageBeforeCommit=panic")
	}
	if !strings.Contains(c.Log(0), "failpoint panic") {
		t.Fatalf("log of m0 does not tell of the failpoint's panic:\n%s", tail([]byte(c.Log(0)), 2048))
	}
	c.Start(0)
	if err := c.Wait(0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := get(t, cl, "k", 10*time.Second); err == nil && v != "v" {
		t.Fatalf("k = %q after the crash", v)
	}
}

// TestFreeAddrs checks that the addresses handed out are distinct, can
// be bound, and lie outside the kernel's ephemeral range when it leaves
// room, so that no outgoing connection can take one before its member
// binds it.
func TestFreeAddrs(t *testing.T) {
	addrs := append(freeAddrs(t, 50), freeAddrs(t, 50)...)
	seen := map[string]bool{}
	lo, hi := quietPorts()
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("address %s handed out twice", a)
		}
		seen[a] = true
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := strconv.Atoi(port); hi > lo && (p < lo || p >= hi) {
			t.Errorf("port %d outside [%d, %d)", p, lo, hi)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("cannot bind %s: %v", a, err)
		}
		l.Close()
	}
}

// replace checks Replace on a 3-member cluster behind peer proxies: the
// new member has a new ID and serves what was written before and after
// (serializable reads of its own state).
func replace(t *testing.T, c *Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "before", "1"); err != nil {
		t.Fatal(err)
	}
	old, err := memberIDs(c.Endpoints, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Replace(ctx, 7); err == nil || !strings.Contains(err.Error(), "not in the member list") {
		t.Fatalf("Replace of a member that is not there: %v", err)
	}
	if err := c.Replace(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "after", "2"); err != nil {
		t.Fatal(err)
	}
	now, err := memberIDs(c.Endpoints, 3)
	if err != nil {
		t.Fatal(err)
	}
	for id, i := range now {
		if _, was := old[id]; i == 1 && was {
			t.Fatalf("m1 kept its ID %x", id)
		}
	}
	one, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints[1:2], DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	for _, k := range []string{"before", "after"} {
		var r *clientv3.GetResponse
		for range 50 { // it may not have applied "after" yet
			if r, err = one.Get(ctx, k, clientv3.WithSerializable()); err == nil && len(r.Kvs) == 1 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("the new m1 has no %q: %v %v", k, r, err)
		}
	}
}

func TestMetastoreReplace(t *testing.T) {
	if _, err := MetastoreBin(); err != nil {
		t.Skip(err)
	}
	replace(t, Metastore(t, 3, Options{PeerProxies: true}))
}

func TestEtcdReplace(t *testing.T) {
	if _, err := EtcdBin(); err != nil {
		t.Skip(err)
	}
	replace(t, Etcd(t, 3, Options{PeerProxies: true}))
}

// TestRetry: retry runs f until it succeeds, and stops at once with f's
// error when the context ends.
func TestRetry(t *testing.T) {
	n := 0
	err := retry(context.Background(), func(context.Context) error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("retry = %v after %d calls, want nil after 3", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n = 0
	err = retry(ctx, func(context.Context) error { n++; return errors.New("refused") })
	if err == nil || err.Error() != "refused" || n != 1 {
		t.Fatalf("retry with an ended context = %v after %d calls, want refused after 1", err, n)
	}
}

// TestArm arms a failpoint of a running member through gofail's HTTP
// endpoint, and refuses an unknown one, or a member built without them.
func TestArm(t *testing.T) {
	needFailpointsBin(t)
	c := Metastore(t, 1, Options{Failpoints: true})
	if err := c.Arm(0, "storageBeforeCommit", "off"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, c.Endpoints...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put with the failpoint off: %v", err)
	}
	if err := c.Arm(0, "noSuchFailpoint", "panic"); err == nil {
		t.Fatal("an unknown failpoint was armed")
	}
	if err := StartMetastore(t, 1).Arm(0, "storageBeforeCommit", "panic"); err == nil {
		t.Fatal("a member without failpoints was armed")
	}
}

// needFailpointsBin skips t unless bin/metastore-failpoints is built
// beside bin/metastore.
func needFailpointsBin(t *testing.T) {
	t.Helper()
	bin, err := MetastoreBin()
	if err == nil {
		_, err = os.Stat(filepath.Join(filepath.Dir(bin), "metastore-failpoints"))
	}
	if err != nil {
		t.Skip(err)
	}
}
