package compare

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Target is a server binary under comparison. Both targets get the same
// flags — etcd's names — so the settings are equivalent.
type Target struct {
	Name string   `json:"name"`    // "etcd", "metastore"
	Bin  string   `json:"bin"`     // path of the binary
	Args []string `json:"args"`    // extra flags for every member
	Env  []string `json:"-"`       // extra environment
	Ver  string   `json:"version"` // its --version's version lines, filled by Version
}

// Version runs the binary with --version and returns its version lines
// ("etcd Version: …", "MetaStore Version: …"), joined.
func (t Target) Version(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, t.Bin, "--version")
	cmd.Env = append(os.Environ(), t.Env...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", t.Bin, err)
	}
	var vs []string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "Version:") && !strings.HasPrefix(line, "Go ") {
			vs = append(vs, line)
		}
	}
	if len(vs) == 0 {
		return "", fmt.Errorf("%s --version printed no version: %q", t.Bin, out)
	}
	return strings.Join(vs, ", "), nil
}

// Cluster is a running cluster of one target.
type Cluster struct {
	Endpoints []string // client endpoints, host:port
	procs     []*exec.Cmd
	exited    []chan error
	logs      []string
	tls       *TLS // nil: plain text
	target    Target
	dir       string
	scheme    string
	tlsArgs   []string
	started   int // members started, for fresh names
}

// freePort returns a loopback address nobody listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Start starts members members of t on loopback ports with data dirs
// under dir (created fresh) — with mutual TLS on client and peer URLs when
// tlsFiles is set — and waits until the cluster serves a linearizable
// write, for up to a minute.
func Start(ctx context.Context, t Target, members int, dir string, tlsFiles *TLS) (*Cluster, error) {
	scheme := "http"
	var tlsArgs []string
	if tlsFiles != nil {
		scheme = "https"
		tlsArgs = []string{
			"--cert-file", tlsFiles.CertFile, "--key-file", tlsFiles.KeyFile, "--trusted-ca-file", tlsFiles.CAFile, "--client-cert-auth",
			"--peer-cert-file", tlsFiles.CertFile, "--peer-key-file", tlsFiles.KeyFile, "--peer-trusted-ca-file", tlsFiles.CAFile, "--peer-client-cert-auth",
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var clients, peers, initial []string
	for i := range members {
		c, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		clients, peers = append(clients, c), append(peers, p)
		initial = append(initial, fmt.Sprintf("m%d=%s://%s", i, scheme, p))
	}
	cl := &Cluster{tls: tlsFiles, target: t, dir: dir, scheme: scheme, tlsArgs: tlsArgs}
	for i := range members {
		if err := cl.startMember(fmt.Sprintf("m%d", i), clients[i], peers[i], strings.Join(initial, ","), "new"); err != nil {
			cl.Stop()
			return nil, err
		}
	}
	if err := cl.waitServing(ctx, time.Minute); err != nil {
		cl.Stop()
		return nil, fmt.Errorf("%s (%d members) did not serve: %w%s", t.Name, members, err, cl.logTail())
	}
	return cl, nil
}

// startMember starts one member process; its client endpoint is added to
// Endpoints.
func (cl *Cluster) startMember(name, client, peer, initial, state string) error {
	logPath := filepath.Join(cl.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	args := append([]string{
		"--name", name,
		"--data-dir", filepath.Join(cl.dir, name+".data"),
		"--listen-client-urls", cl.scheme + "://" + client, "--advertise-client-urls", cl.scheme + "://" + client,
		"--listen-peer-urls", cl.scheme + "://" + peer, "--initial-advertise-peer-urls", cl.scheme + "://" + peer,
		"--initial-cluster", initial, "--initial-cluster-state", state,
		"--log-level", "error",
	}, append(cl.tlsArgs, cl.target.Args...)...)
	cmd := exec.Command(cl.target.Bin, args...)
	cmd.Env = append(os.Environ(), cl.target.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", cl.target.Bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	cl.started++
	cl.Endpoints = append(cl.Endpoints, client)
	cl.procs, cl.exited, cl.logs = append(cl.procs, cmd), append(cl.exited, exited), append(cl.logs, logPath)
	return nil
}

// waitServing waits until a linearizable put succeeds through every
// endpoint (each member has joined and knows the leader).
func (cl *Cluster) waitServing(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, ep := range cl.Endpoints {
		cc := clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
		if cl.tls != nil {
			info := transport.TLSInfo{CertFile: cl.tls.CertFile, KeyFile: cl.tls.KeyFile, TrustedCAFile: cl.tls.CAFile}
			tc, err := info.ClientConfig()
			if err != nil {
				return fmt.Errorf("TLS: %w", err)
			}
			cc.TLS = tc
		}
		c, err := clientv3.New(cc)
		if err != nil {
			return err
		}
		for {
			for i, ch := range cl.exited {
				select {
				case err := <-ch:
					c.Close()
					return fmt.Errorf("member %d exited: %v", i, err)
				default:
				}
			}
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = c.Put(rctx, "metastore-bench-ready", "x")
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				c.Close()
				return errors.Join(err, ctx.Err())
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	return nil
}

// userHZ is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// every Linux architecture Go supports).
const userHZ = 100

// CPUTime is the CPU time (user + system) every member used so far.
func (cl *Cluster) CPUTime() (time.Duration, error) {
	var total time.Duration
	for _, p := range cl.procs {
		d, err := procCPUTime(p.Process.Pid)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// procCPUTime reads utime + stime of a process from /proc/<pid>/stat.
func procCPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, data)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, data)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// selfCPUTime is this process's CPU time (user + system) so far.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// logTail is the end of each member's log, for errors.
func (cl *Cluster) logTail() string {
	var b strings.Builder
	for i, p := range cl.logs {
		data, _ := os.ReadFile(p)
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		if len(data) > 0 {
			fmt.Fprintf(&b, "\n--- member %d log (%s) ---\n%s", i, p, data)
		}
	}
	return b.String()
}

// Stop kills every member and waits for them to exit. The cluster's data
// is thrown away after a comparison step, so a graceful stop would only
// cost time: etcd's leader waits up to 7 s to hand leadership over to
// members that are stopping too.
func (cl *Cluster) Stop() {
	for _, p := range cl.procs {
		_ = p.Process.Kill()
	}
	for _, ch := range cl.exited {
		<-ch
	}
	cl.procs, cl.exited = nil, nil
}
