package opsguide

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const guide = "../../docs/OPERATIONS.md"

// step is one runnable piece of the guide: a block's text, or a restart.
type step struct {
	block   string
	restart string // member name
}

var restartRe = regexp.MustCompile(`^<!-- ops-test: restart (\S+) -->$`)

// steps reads the guide's runnable blocks and directives, in order.
func steps(t *testing.T) []step {
	f, err := os.Open(guide)
	require.NoError(t, err)
	defer f.Close()
	var out []step
	var cur *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && line == "```sh ops-test":
			cur = &strings.Builder{}
		case cur != nil && line == "```":
			out = append(out, step{block: cur.String()})
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		default:
			if m := restartRe.FindStringSubmatch(line); m != nil {
				out = append(out, step{restart: m[1]})
			}
		}
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "an unterminated ops-test block")
	return out
}

var (
	machineRe = regexp.MustCompile(`10\.0\.0\.(\d):(\d+)`)
	nameRe    = regexp.MustCompile(`--name (\S+)`)
)

// localize maps the guide's machines to loopback: each machine:port to a
// free port of its own, certificate SANs to 127.0.0.1 as well, and
// /var/lib/metastore into the work dir.
func localize(t *testing.T, s, work string, ports map[string]string) string {
	s = machineRe.ReplaceAllStringFunc(s, func(hp string) string {
		if p, ok := ports[hp]; ok {
			return "127.0.0.1:" + p
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		_, p, _ := net.SplitHostPort(l.Addr().String())
		ports[hp] = p
		return "127.0.0.1:" + p
	})
	s = strings.ReplaceAll(s, "IP:10.0.0.", "IP:127.0.0.1,IP:10.0.0.")
	return strings.ReplaceAll(s, "/var/lib/metastore", work+"/var/lib/metastore")
}

// logicalLines joins backslash-continued lines.
func logicalLines(block string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\"))
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// script turns the steps into one bash script.
func script(t *testing.T, ss []step, work string) (string, []string) {
	ports := map[string]string{}
	var b strings.Builder
	// No pipefail: the guide checks output with `cmd | grep`, where
	// cmd is expected to fail.
	b.WriteString(`set -eu
cd "$WORK"
wait_ready() { # member...
  for m in "$@"; do
    for i in $(seq 600); do
      grep -q "ready to serve client requests" "$m.log" 2>/dev/null && break
      kill -0 "$(cat "$m.pid")" 2>/dev/null || { echo "member $m exited:"; tail -20 "$m.log"; exit 1; }
      [ "$i" = 600 ] && { echo "member $m not ready in 60s"; tail -20 "$m.log"; exit 1; }
      sleep 0.1
    done
  done
}
restart() { # member
  pid=$(cat "$1.pid"); kill -TERM "$pid"
  for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "member $1 did not stop on SIGTERM"; exit 1; fi
  : > "$1.log"; "start_$1"; wait_ready "$1"
}
`)
	var members []string
	for i, st := range ss {
		if st.restart != "" {
			fmt.Fprintf(&b, "echo '### restart %s'\nrestart %s\n", st.restart, st.restart)
			continue
		}
		block := localize(t, st.block, work, ports)
		fmt.Fprintf(&b, "echo '### block %d'\n", i)
		var started []string
		for _, line := range logicalLines(block) {
			if !strings.HasPrefix(line, "metastore ") {
				b.WriteString(line + "\n")
				continue
			}
			m := nameRe.FindStringSubmatch(line)
			require.NotNil(t, m, "a metastore command without --name: %s", line)
			name := m[1]
			fmt.Fprintf(&b, "start_%s() { %s > %s.log 2>&1 & echo $! > %s.pid; }\nstart_%s\n", name, line, name, name, name)
			started = append(started, name)
			members = append(members, name)
		}
		if len(started) > 0 {
			fmt.Fprintf(&b, "wait_ready %s\n", strings.Join(started, " "))
		}
	}
	return b.String(), members
}

func TestOperationsGuide(t *testing.T) {
	ms := os.Getenv("METASTORE_BIN")
	if ms == "" {
		ms, _ = filepath.Abs("../../bin/metastore")
	}
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	etcdctl := filepath.Join(cache, "metastore", "etcdctl-v3.7.3", "etcdctl")
	for _, bin := range []string{ms, etcdctl} {
		if _, err := os.Stat(bin); err != nil {
			if testing.Short() {
				t.Skipf("%s not built (make build, tools/etcd-tools.sh): %v", bin, err)
			}
			t.Fatalf("%s missing (make build, tools/etcd-tools.sh): %v", bin, err)
		}
	}
	ss := steps(t)
	require.GreaterOrEqual(t, len(ss), 8, "the guide's runnable blocks")
	work := t.TempDir()
	sh, members := script(t, ss, work)
	require.NoError(t, os.WriteFile(filepath.Join(work, "guide.sh"), []byte(sh), 0o644))
	require.Len(t, members, 3, "the guide starts three members")

	bindir := filepath.Join(work, "bin")
	require.NoError(t, os.MkdirAll(bindir, 0o755))
	require.NoError(t, os.Symlink(ms, filepath.Join(bindir, "metastore")))
	require.NoError(t, os.Symlink(etcdctl, filepath.Join(bindir, "etcdctl")))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(work, "guide.sh"))
	cmd.Env = append(os.Environ(), "WORK="+work, "PATH="+bindir+":"+os.Getenv("PATH"))
	for _, v := range []string{"ETCDCTL_ENDPOINTS", "ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY", "ETCD_ENDPOINTS"} {
		cmd.Env = append(cmd.Env, v+"=") // nothing from the caller's environment
	}
	out, err := cmd.CombinedOutput()
	// Stop what the guide started, whatever happened.
	for _, m := range members {
		if pid, rerr := os.ReadFile(filepath.Join(work, m+".pid")); rerr == nil {
			_ = exec.Command("sh", "-c", "kill -TERM "+strings.TrimSpace(string(pid))+" 2>/dev/null; sleep 1; kill -KILL "+strings.TrimSpace(string(pid))+" 2>/dev/null").Run()
		}
	}
	require.NoError(t, err, "the guide's commands:\n%s", out)
	// What the commands printed.
	text := string(out)
	for _, want := range []string{
		"is healthy: successfully committed proposal",
		"}refused\n", // curl printed nothing without a certificate
		"Error: etcdserver: permission denied",
		"Error: etcdserver: authentication failed, invalid user ID or password",
		"app/config\nv1",
		"│ started │   m3 │",
		"etcd_server_has_leader 1",
		"[+]linearizable_read ok",
	} {
		require.Contains(t, text, want)
	}
	require.Equal(t, 2, strings.Count(text, `{"health":"true","reason":""}`), "/health by TLS with a certificate, and on the metrics port")
	t.Logf("%d steps of docs/OPERATIONS.md run", len(ss))
}
