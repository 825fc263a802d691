package consensus_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loadWriter writes distinct keys from several goroutines until stopped and
// remembers which writes were acknowledged: the tests that fail members
// under load check that every acknowledged key survives.
type loadWriter struct {
	t     *testing.T
	mu    sync.Mutex
	acked map[string]bool
	count atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// startLoad runs workers goroutines; each writes keys w<worker>-<i> with
// write, which reports whether the write was acknowledged.
func startLoad(t *testing.T, workers int, write func(worker int, key string) bool) *loadWriter {
	l := &loadWriter{t: t, acked: map[string]bool{}, stop: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				if write(w, key) {
					l.mu.Lock()
					l.acked[key] = true
					l.mu.Unlock()
					l.count.Add(1)
				}
			}
		})
	}
	t.Cleanup(l.Stop)
	return l
}

// Count is how many writes were acknowledged so far.
func (l *loadWriter) Count() int64 { return l.count.Load() }

// WaitAcks waits until n writes in all were acknowledged.
func (l *loadWriter) WaitAcks(n int64, timeout time.Duration) {
	l.t.Helper()
	require.Eventually(l.t, func() bool { return l.count.Load() >= n }, timeout, 5*time.Millisecond,
		"%d of %d writes acknowledged", l.count.Load(), n)
}

// WaitMore waits for n more acknowledged writes.
func (l *loadWriter) WaitMore(n int64, timeout time.Duration) {
	l.t.Helper()
	l.WaitAcks(l.Count()+n, timeout)
}

// Stop stops the writers and waits for them; it can be called twice.
func (l *loadWriter) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// Acked returns the acknowledged keys (call after Stop).
func (l *loadWriter) Acked() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.acked)
}

// RequireHasAcked asserts that data holds every acknowledged key.
func (l *loadWriter) RequireHasAcked(member uint64, data map[string]string) {
	l.t.Helper()
	acked := l.Acked()
	require.NotEmpty(l.t, acked)
	for k := range acked {
		require.Contains(l.t, data, k, "member %d lost acknowledged write %s", member, k)
	}
}

// crashChild is a test binary re-run as a child process that runs only the
// test named run (which reads its role from env), so a test can SIGKILL a
// member mid-write and start it again on the same disk.
type crashChild struct {
	t   *testing.T
	run string
	env []string
	cmd *exec.Cmd
}

func newCrashChild(t *testing.T, run string, env ...string) *crashChild {
	c := &crashChild{t: t, run: run, env: env}
	t.Cleanup(func() {
		if c.cmd != nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	return c
}

// Start starts the child; it must not be running.
func (c *crashChild) Start() {
	c.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+c.run+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), c.env...)
	require.NoError(c.t, cmd.Start())
	c.cmd = cmd
}

// Kill SIGKILLs the child and reaps it.
func (c *crashChild) Kill() {
	c.t.Helper()
	require.NoError(c.t, c.cmd.Process.Signal(syscall.SIGKILL))
	_ = c.cmd.Wait()
	c.cmd = nil
}

// freeAddr returns a loopback address free a moment ago, below Linux's
// ephemeral range so that outgoing connections cannot take it before the
// child binds it.
func freeAddr(t *testing.T) string {
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}
