// Package procs starts bin/metastore — and etcd 3.7.3, with the same flags
// — as real processes for the compat-tests packages that need a fresh
// cluster of their own (the robustness, mixin and gateway suites), and
// kills, pauses and restarts their members for fault injection.
package procs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running set of members; Endpoints are their client
// addresses (host:port), in member order.
type Cluster struct {
	Endpoints []string
	// Net is the peer network when the cluster was started with
	// Options.PeerProxies, nil otherwise.
	Net      *Net
	tb       testing.TB
	bin, dir string
	members  []*member
}

// Options say how Metastore and Etcd start a cluster.
type Options struct {
	// Args are extra flags for every member.
	Args []string
	// Dir holds the members' data dirs; tb.TempDir() when empty.
	Dir string
	// Failpoints runs bin/metastore-failpoints, the build with gofail's
	// failpoints compiled in (make build), found next to the binary under
	// test; members take GOFAIL_FAILPOINTS through StartEnv, and Arm
	// arms a failpoint of a running member (gofail's GOFAIL_HTTP).
	// MetaStore only.
	Failpoints bool
	// PeerProxies puts every member's peer URL behind a proxy of the
	// test's own, so that links between members can be cut, delayed or
	// made lossy (Cluster.Net).
	PeerProxies bool
}

// member is one bin/metastore process and the flags it was started with,
// so that it can be killed and started again on its data dir.
type member struct {
	i       int
	args    []string
	env     []string // for every start
	fpAddr  string   // GOFAIL_HTTP address of a failpoints build
	logPath string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	ready   chan error    // of the latest start: nil once it serves
}

// Signal sends sig to member i's process (SIGSTOP pauses it, SIGCONT
// resumes it; cleanup resumes and stops every member). After SIGSTOP it
// returns once every thread of the process is stopped (the kernel stops
// them asynchronously), so nothing the caller does next is answered.
func (c *Cluster) Signal(i int, sig os.Signal) error {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.cmd.Process.Signal(sig); err != nil {
		return err
	}
	if sig == syscall.SIGSTOP {
		return waitStopped(m.cmd.Process.Pid, 5*time.Second)
	}
	return nil
}

// waitStopped waits until every thread of process pid is in the stopped
// state (T in /proc/PID/task/TID/stat), or timeout passes.
func waitStopped(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		stopped, err := allThreadsStopped(pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("procs: process %d not stopped %s after SIGSTOP", pid, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func allThreadsStopped(pid int) (bool, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread exited
			}
			return false, err
		}
		// pid (comm) state ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("procs: unexpected /proc stat %q", b)
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			return false, nil
		}
	}
	return true, nil
}

// DataDir is member i's --data-dir.
func (c *Cluster) DataDir(i int) string { return filepath.Join(c.dir, fmt.Sprintf("m%d", i)) }

// Kill SIGKILLs member i (resuming it first if it was paused) and waits
// until the process is gone.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		c.tb.Errorf("member m%d did not exit 10s after SIGKILL", i)
	}
}

// Start starts a killed member i again with its flags and data dir; Wait
// waits until it serves.
func (c *Cluster) Start(i int) { c.StartEnv(i) }

// StartEnv is Start with extra environment variables for this start only
// (GOFAIL_FAILPOINTS=name=terms for a failpoints build).
func (c *Cluster) StartEnv(i int, env ...string) {
	c.tb.Helper()
	if err := c.start(c.members[i], env...); err != nil {
		c.tb.Fatal(err)
	}
}

// Arm sets failpoint name of running member i to terms (gofail's
// syntax: "panic", "2*off->panic", "sleep(100)"); the cluster must have
// been started with Options.Failpoints. A restart disarms it.
func (c *Cluster) Arm(i int, name, terms string) error {
	m := c.members[i]
	if m.fpAddr == "" {
		return errors.New("procs: Arm needs a cluster started with Options.Failpoints")
	}
	req, err := http.NewRequest(http.MethodPut, "http://"+m.fpAddr+"/"+name, strings.NewReader(terms))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("procs: arm %s on m%d: %w", name, i, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("procs: arm %s on m%d: %s: %s", name, i, resp.Status, b)
	}
	return nil
}

// Wait waits until member i, started by Start, serves clients (up to
// timeout), and returns an error if it exited first or did not.
func (c *Cluster) Wait(i int, timeout time.Duration) error {
	m := c.members[i]
	m.mu.Lock()
	ready := m.ready
	m.mu.Unlock()
	select {
	case err := <-ready:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("member m%d not ready within %v", i, timeout)
	}
}

// Replace replaces member i by a new member under the same name and
// URLs, as an operator replaces a failed machine: it removes i from the
// cluster (through the other members), stops it, empties its data dir,
// adds a member with i's peer URL and starts it with
// --initial-cluster-state existing, and returns once it serves. The
// new member has a new ID; later restarts of i keep the new flags.
func (c *Cluster) Replace(ctx context.Context, i int) error {
	var others []string
	for j, ep := range c.Endpoints {
		if j != i {
			others = append(others, ep)
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: others, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ids, err := memberIDs(others, len(c.Endpoints))
	if err != nil {
		return err
	}
	var id uint64
	for mid, j := range ids {
		if j == i {
			id = mid
		}
	}
	if id == 0 {
		return fmt.Errorf("procs: m%d is not in the member list", i)
	}
	lr, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("procs: member list: %w", err)
	}
	var peerURLs []string
	for _, m := range lr.Members {
		if m.ID == id {
			peerURLs = m.PeerURLs
		}
	}
	err = retry(ctx, func(ctx context.Context) error {
		_, err := cli.MemberRemove(ctx, id)
		if errors.Is(err, rpctypes.ErrMemberNotFound) {
			return nil // an earlier attempt did it
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("procs: remove m%d (%x): %w", i, id, err)
	}
	if c.Running(i) {
		c.Kill(i)
	}
	if err := os.RemoveAll(c.DataDir(i)); err != nil {
		return err
	}
	var newID uint64
	err = retry(ctx, func(ctx context.Context) error {
		r, err := cli.MemberAdd(ctx, peerURLs)
		if err == nil {
			newID = r.Member.ID
			return nil
		}
		if !errors.Is(err, rpctypes.ErrPeerURLExist) {
			return err
		}
		// An earlier attempt added it: find it.
		lr, lerr := cli.MemberList(ctx)
		if lerr != nil {
			return lerr
		}
		for _, m := range lr.Members {
			if slices.Equal(m.PeerURLs, peerURLs) {
				newID = m.ID
				return nil
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("procs: add m%d again: %w", i, err)
	}
	m := c.members[i]
	m.args = append(m.args, "--initial-cluster-state", "existing") // the last value of a flag wins
	if err := c.start(m); err != nil {
		return err
	}
	if err := c.Wait(i, 60*time.Second); err != nil {
		return err
	}
	if c.Net != nil {
		delete(ids, id)
		ids[newID] = i
		c.Net.setIDs(ids)
	}
	return nil
}

// retry runs f until it succeeds, ctx ends or 60 s pass, a quarter of a
// second apart, each attempt bounded to 10 s: a membership change is
// refused while the cluster is unhealthy or another change is under
// way, and one proposed while there is no leader can wait for good.
func retry(ctx context.Context, f func(context.Context) error) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(actx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Running reports whether member i's process is running.
func (c *Cluster) Running(i int) bool {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// Log returns what member i has logged so far, over all its starts.
func (c *Cluster) Log(i int) string {
	b, _ := os.ReadFile(c.members[i].logPath)
	return string(b)
}

// ExportWAL writes member i's Raft log as an etcd WAL under out/member/wal
// with `metastore wal export`; the member should be stopped. It is for
// bin/metastore clusters (an etcd member's data dir is one already).
func (c *Cluster) ExportWAL(i int, out string) error {
	b, err := exec.Command(c.bin, "wal", "export", "--data-dir", c.DataDir(i), "--out", out).CombinedOutput()
	if err != nil {
		return fmt.Errorf("metastore wal export m%d: %v: %s", i, err, b)
	}
	return nil
}

// dumpStacks makes every running member print its goroutines into its log
// and exit (SIGQUIT, as the Go runtime handles it): what a failed test
// needs to see a member that hung.
func (c *Cluster) dumpStacks() {
	for i, m := range c.members {
		if !c.Running(i) {
			continue
		}
		m.mu.Lock()
		p, exited := m.cmd.Process, m.exited
		m.mu.Unlock()
		_ = p.Signal(syscall.SIGCONT)
		// To the main thread, a Go thread: sent to the process, SIGQUIT
		// may land on one of RocksDB's C threads, where the Go runtime
		// (no signal.Notify for it) re-raises it with the default action
		// — the member dies without its goroutines — or loses it (3 of 20
		// signals from a shell, 4 of 8 runs of TestMetastoreLifecycle).
		_ = syscall.Tgkill(p.Pid, p.Pid, syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	}
}

// Stop stops every member (SIGCONT, SIGTERM, then SIGKILL after 10 s
// in all) and waits until they are gone. Cleanup calls it too.
func (c *Cluster) Stop() {
	var started []*member
	for _, m := range c.members {
		m.mu.Lock()
		cmd := m.cmd
		m.mu.Unlock()
		if cmd == nil { // a start of the cluster that failed before it
			continue
		}
		started = append(started, m)
		_ = cmd.Process.Signal(syscall.SIGCONT) // a paused member must hear SIGTERM
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(10 * time.Second)
	for _, m := range started {
		m.mu.Lock()
		p, exited := m.cmd.Process, m.exited
		m.mu.Unlock()
		select {
		case <-exited:
		case <-deadline:
			_ = p.Kill()
			<-exited
		}
	}
}

// handedOut holds the addresses freeAddrs returned, so that clusters
// started at the same time (parallel tests) never get the same one.
var (
	handedMu  sync.Mutex
	handedOut = map[string]bool{}
)

// freeAddrs returns n distinct loopback addresses nothing listens on and
// no earlier call returned. The listeners are held until all n are
// picked, so no address repeats.
//
// The ports come from below the kernel's ephemeral range when there is
// room (see quietPorts): a port the kernel hands out for ":0" or as the
// local end of an outgoing connection could be taken again in the
// moment between this function closing its listener and the member
// binding it, and the member would exit with "address already in use"
// before it was ready.
func freeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	handedMu.Lock()
	defer handedMu.Unlock()
	var addrs []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	lo, hi := quietPorts()
	for tries := 0; len(addrs) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi > lo && tries < 100*n {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		}
		if handedOut[addr] {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr == "127.0.0.1:0" {
				tb.Fatalf("listen: %v", err)
			}
			continue // taken: try another
		}
		ls = append(ls, l) // held, so the kernel offers another next
		if a := l.Addr().String(); !handedOut[a] {
			handedOut[a] = true
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// quietPorts returns the port range [lo, hi) freeAddrs picks from: the
// ports below the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range) from 10000 up, stopping short
// of 20000, where etcd's own e2e tests start theirs. It returns lo == hi
// when there is no such room (or the range cannot be read); freeAddrs
// then asks the kernel.
func quietPorts() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	first, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0
	}
	lo, hi = 10000, min(first, 20000)
	if hi-lo < 1000 {
		return 0, 0
	}
	return lo, hi
}

// layout picks client and peer addresses for n members named
// <prefix>0..<prefix>n-1 and returns them with the --initial-cluster value.
func layout(tb testing.TB, n int, prefix string) (clients, peers []string, initial string) {
	tb.Helper()
	addrs := freeAddrs(tb, 2*n)
	clients, peers = addrs[:n], addrs[n:]
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf("%s%d=http://%s", prefix, i, peers[i]))
	}
	return clients, peers, strings.Join(parts, ",")
}

// MetastoreBin returns the binary under test: METASTORE_BIN, or
// bin/metastore in the nearest parent directory that has one.
func MetastoreBin() (string, error) {
	if p := os.Getenv("METASTORE_BIN"); p != "" {
		return filepath.Abs(p)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "bin", "metastore")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("bin/metastore not found (make build, or set METASTORE_BIN)")
		}
		dir = parent
	}
}

// StartMetastore starts n bin/metastore processes as one new cluster on
// loopback, each with a data dir under tb.TempDir(), waits until each logs
// readiness, and stops them (SIGTERM, then SIGKILL) at cleanup; args are
// extra flags for every member. Without a binary the test is skipped,
// except under CI, where it fails.
func StartMetastore(tb testing.TB, n int, args ...string) *Cluster {
	tb.Helper()
	return Metastore(tb, n, Options{Args: args})
}

// StartMetastoreIn is StartMetastore with the members' data dirs under
// dir (a small file system for the disk-full test).
func StartMetastoreIn(tb testing.TB, dir string, n int, args ...string) *Cluster {
	tb.Helper()
	return Metastore(tb, n, Options{Args: args, Dir: dir})
}

// StartMetastoreFailpoints is StartMetastore with bin/metastore-failpoints
// (Options.Failpoints).
func StartMetastoreFailpoints(tb testing.TB, n int, args ...string) *Cluster {
	tb.Helper()
	return Metastore(tb, n, Options{Args: args, Failpoints: true})
}

// Metastore starts n bin/metastore processes as StartMetastore does, as o
// says.
func Metastore(tb testing.TB, n int, o Options) *Cluster {
	tb.Helper()
	bin, err := MetastoreBin()
	if err == nil && o.Failpoints {
		bin = filepath.Join(filepath.Dir(bin), "metastore-failpoints")
		_, err = os.Stat(bin)
	}
	skipUnlessCI(tb, err)
	return startCluster(tb, bin, n, o)
}

// EtcdBin returns the etcd 3.7.3 binary tools/etcd-tools.sh builds:
// ETCD_BIN, or $XDG_CACHE_HOME/metastore/etcd-v3.7.3/etcd.
func EtcdBin() (string, error) {
	if p := os.Getenv("ETCD_BIN"); p != "" {
		return filepath.Abs(p)
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "metastore", "etcd-v3.7.3", "etcd")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("etcd 3.7.3 not found at %s (tools/etcd-tools.sh builds it, or set ETCD_BIN)", p)
	}
	return p, nil
}

// StartEtcd starts n etcd 3.7.3 processes exactly as StartMetastore starts
// bin/metastore (the same flags: MetaStore takes etcd's), so the same
// faults can be injected into both. Without the binary the test is
// skipped, except under CI, where it fails.
func StartEtcd(tb testing.TB, n int, args ...string) *Cluster {
	tb.Helper()
	return Etcd(tb, n, Options{Args: args})
}

// Etcd is StartEtcd as o says (o.Failpoints must be false).
func Etcd(tb testing.TB, n int, o Options) *Cluster {
	tb.Helper()
	if o.Failpoints {
		tb.Fatal("procs: etcd has no failpoints build here")
	}
	bin, err := EtcdBin()
	skipUnlessCI(tb, err)
	return startCluster(tb, bin, n, o)
}

// skipUnlessCI skips the test for a missing binary, or fails it under CI
// (where every binary must be there).
func skipUnlessCI(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatal(err)
	}
	tb.Skip(err)
}

func startCluster(tb testing.TB, bin string, n int, o Options) *Cluster {
	tb.Helper()
	dir := o.Dir
	if dir == "" {
		dir = tb.TempDir()
	}
	clients, peers, initial := layout(tb, n, "m")
	advertised := peers
	c := &Cluster{Endpoints: clients, tb: tb, bin: bin, dir: dir}
	if o.PeerProxies {
		c.Net = newNet()
		tb.Cleanup(c.Net.close) // after the members' cleanup below: cleanups run last first
		advertised = make([]string, n)
		var parts []string
		for i := range n {
			p, err := c.Net.listen(i, peers[i])
			if err != nil {
				tb.Fatal(err)
			}
			advertised[i] = p.addr()
			parts = append(parts, fmt.Sprintf("m%d=http://%s", i, advertised[i]))
		}
		initial = strings.Join(parts, ",")
	}
	args := o.Args
	logs := tb.TempDir() // not dir: the disk-full test fills that
	var fpAddrs []string
	if o.Failpoints {
		fpAddrs = freeAddrs(tb, n)
	}
	for i := range n {
		m := &member{i: i, logPath: filepath.Join(logs, fmt.Sprintf("m%d.log", i))}
		if fpAddrs != nil {
			m.fpAddr = fpAddrs[i]
			m.env = []string{"GOFAIL_HTTP=" + m.fpAddr}
		}
		m.args = append([]string{
			"--name", fmt.Sprintf("m%d", i),
			"--data-dir", c.DataDir(i),
			"--initial-cluster", initial,
			"--listen-client-urls", "http://" + clients[i], "--advertise-client-urls", "http://" + clients[i],
			"--listen-peer-urls", "http://" + peers[i], "--initial-advertise-peer-urls", "http://" + advertised[i],
		}, args...)
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		if err := c.start(m); err != nil {
			c.Stop()
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			c.dumpStacks()
		}
		c.Stop()
		keep := os.Getenv("PROCS_LOG_DIR")
		if tb.Failed() || (keep != "" && os.Getenv("PROCS_KEEP_LOGS") != "") {
			for i := range n {
				if tb.Failed() {
					tb.Logf("member m%d log (last 2 KiB):\n%s", i, tail([]byte(c.Log(i)), 2048))
				}
				if keep != "" {
					name := strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name()) + fmt.Sprintf(".m%d.log", i)
					if err := os.WriteFile(filepath.Join(keep, name), []byte(c.Log(i)), 0o644); err == nil {
						tb.Logf("member m%d log kept in %s", i, filepath.Join(keep, name))
					}
				}
			}
		}
	})
	for i := range n {
		if err := c.Wait(i, 60*time.Second); err != nil {
			tb.Fatal(err)
		}
	}
	if c.Net != nil {
		ids, err := memberIDs(clients, n)
		if err != nil {
			tb.Fatal(err)
		}
		c.Net.setIDs(ids)
	}
	return c
}

// memberIDs maps each of the n members' IDs to its index (its name is
// m<index>), asking the members at endpoints.
func memberIDs(endpoints []string, n int) (map[uint64]int, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("procs: member list: %w", err)
	}
	ids := map[uint64]int{}
	for _, m := range resp.Members {
		i, err := strconv.Atoi(strings.TrimPrefix(m.Name, "m"))
		if err != nil {
			return nil, fmt.Errorf("procs: member %x is named %q, not m<index>", m.ID, m.Name)
		}
		ids[m.ID] = i
	}
	if len(ids) != n {
		return nil, fmt.Errorf("procs: member list has %d members, want %d", len(ids), n)
	}
	return ids, nil
}

// start starts m's process, appending its output to its log file, and
// reports on m.ready once it logs readiness or exits.
func (c *Cluster) start(m *member, env ...string) error {
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, m.args...)
	if env = append(slices.Clip(m.env), env...); len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %v", c.bin, err)
	}
	exited, ready := make(chan struct{}), make(chan error, 1)
	m.mu.Lock()
	m.cmd, m.exited, m.ready = cmd, exited, ready
	m.mu.Unlock()
	logged := make(chan struct{}) // closed when the log has all the output
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		var last []string // the last lines, for the error should it exit first
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !sent {
				if last = append(last, sc.Text()); len(last) > 3 {
					last = last[1:]
				}
			}
			if !sent && strings.Contains(sc.Text(), "ready to serve client requests") {
				ready <- nil
				sent = true
			}
		}
		_, _ = io.Copy(logf, pr) // the rest, should a line be too long to scan: the member must never block on its output
		if !sent {
			ready <- fmt.Errorf("member m%d exited before it was ready (log: %s); its last lines:\n%s", m.i, m.logPath, strings.Join(last, "\n"))
		}
		logf.Close()
	}()
	go func() {
		err := cmd.Wait()
		pw.CloseWithError(err)
		<-logged // so that Log, once the member exited, has its last words
		close(exited)
	}()
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
