// Package procs starts bin/metastore as real processes for the
// compat-tests packages that need a fresh cluster of their own (the
// robustness and RBAC suites), beside etcdtest's embedded etcd.
package procs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cluster is a running set of members; Endpoints are their client
// addresses (host:port), in member order.
type Cluster struct {
	Endpoints []string
	procs     []*exec.Cmd
}

// Signal sends sig to member i's process (SIGSTOP pauses it, SIGCONT
// resumes it; cleanup resumes and stops every member).
func (c *Cluster) Signal(i int, sig os.Signal) error { return c.procs[i].Process.Signal(sig) }

// freeAddrs returns n distinct loopback addresses nothing listens on. The
// listeners are held until all n are picked, so no address repeats.
func freeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("listen: %v", err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
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
// extra flags for every member. Without a
// binary the test is skipped, except under CI, where it fails.
func StartMetastore(tb testing.TB, n int, args ...string) *Cluster {
	tb.Helper()
	bin, err := MetastoreBin()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	clients, peers, initial := layout(tb, n, "m")
	dir := tb.TempDir()
	ready := make(chan error, n)
	var procs []*exec.Cmd
	for i := range n {
		logPath := filepath.Join(dir, fmt.Sprintf("m%d.log", i))
		cmd := exec.Command(bin,
			"--name", fmt.Sprintf("m%d", i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("m%d", i)),
			"--initial-cluster", initial,
			"--listen-client-urls", "http://"+clients[i], "--advertise-client-urls", "http://"+clients[i],
			"--listen-peer-urls", "http://"+peers[i], "--initial-advertise-peer-urls", "http://"+peers[i],
		)
		cmd.Args = append(cmd.Args, args...)
		logf, err := os.Create(logPath)
		if err != nil {
			tb.Fatal(err)
		}
		pr, pw := io.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start %s: %v", bin, err)
		}
		procs = append(procs, cmd)
		go func() {
			// Copy the log to its file, and report readiness once.
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			sent := false
			for sc.Scan() {
				fmt.Fprintln(logf, sc.Text())
				if !sent && strings.Contains(sc.Text(), "ready to serve client requests") {
					ready <- nil
					sent = true
				}
			}
			if !sent {
				ready <- fmt.Errorf("member %d exited before it was ready (log: %s)", i, logPath)
			}
			logf.Close()
		}()
		go func() {
			err := cmd.Wait()
			pw.CloseWithError(err)
		}()
	}
	tb.Cleanup(func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGCONT) // a paused member must hear SIGTERM
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, p := range procs {
			for p.ProcessState == nil && time.Now().Before(deadline) {
				if err := p.Process.Signal(syscall.Signal(0)); err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			_ = p.Process.Kill()
		}
		if tb.Failed() {
			for i := range n {
				b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("m%d.log", i)))
				tb.Logf("member m%d log (last 2 KiB):\n%s", i, tail(b, 2048))
			}
		}
	})
	timeout := time.After(60 * time.Second)
	for range n {
		select {
		case err := <-ready:
			if err != nil {
				tb.Fatal(err)
			}
		case <-timeout:
			tb.Fatal("metastore members not ready within 60s")
		}
	}
	return &Cluster{Endpoints: clients, procs: procs}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
