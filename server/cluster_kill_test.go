package server_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// proc is one metastore process of TestKillLeaderUnderLoad.
type proc struct {
	name, client string
	args         []string
	cmd          *exec.Cmd
	logs         *syncBuffer
}

func (p *proc) start(t *testing.T, bin string) {
	p.logs = &syncBuffer{}
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(t, p.cmd.Start())
}

// TestKillLeaderUnderLoad runs three metastore processes, writes through
// all of them, SIGKILLs the leader mid-load and restarts it: every
// acknowledged write is on every member afterwards, and all members hold
// the same data.
func TestKillLeaderUnderLoad(t *testing.T) {
	if testing.Short() {
		// CI's fault-injection suite (make robustness: kill-leader, with
		// every operation's history checked) covers it there.
		t.Skip("builds and runs three server processes; runs without -short (make test-long)")
	}
	bin := buildMetastore(t)
	dir := t.TempDir()
	procs := make([]*proc, 3)
	var initial []string
	peers := make([]string, 3)
	for i := range procs {
		peers[i] = "http://" + testcluster.FreeAddr(t)
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	for i := range procs {
		client := "http://" + testcluster.FreeAddr(t)
		p := &proc{name: fmt.Sprint("m", i), client: client}
		p.args = []string{"--name", p.name, "--data-dir", filepath.Join(dir, p.name),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","),
			"--heartbeat-interval", "20", "--election-timeout", "200", "--snapshot-count", "500"}
		p.start(t, bin)
		procs[i] = p
	}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	var eps []string
	for _, p := range procs {
		eps = append(eps, strings.TrimPrefix(p.client, "http://"))
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c.Close()

	leader := func(not uint64) int {
		idx := -1
		require.Eventually(t, func() bool {
			for i, ep := range eps {
				cctx, cancel := context.WithTimeout(t.Context(), time.Second)
				st, err := c.Status(cctx, ep)
				cancel()
				if err == nil && st.Leader != 0 && st.Leader != not && st.Leader == st.Header.MemberId {
					idx = i
					return true
				}
			}
			return false
		}, 30*time.Second, 50*time.Millisecond)
		return idx
	}
	lead := leader(0)

	var mu sync.Mutex
	acked := map[string]bool{}
	var count atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("load/w%d-%d", w, i)
				cctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				_, err := c.Put(cctx, key, "v")
				cancel()
				if err == nil {
					mu.Lock()
					acked[key] = true
					mu.Unlock()
					count.Add(1)
				}
			}
		})
	}
	waitAcks := func(n int64) {
		t.Helper()
		ok := false
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
			if count.Load() >= n {
				ok = true
				break
			}
			select {
			case <-t.Context().Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
		if !ok {
			for _, p := range procs {
				t.Logf("--- %s\n%s", p.name, tail(p.logs.String(), 4000))
			}
			t.Fatalf("only %d writes acknowledged, want %d", count.Load(), n)
		}
	}
	waitAcks(300)
	st, err := c.Status(t.Context(), eps[lead])
	require.NoError(t, err)
	require.NoError(t, procs[lead].cmd.Process.Signal(syscall.SIGKILL))
	_ = procs[lead].cmd.Wait()
	leader(st.Header.MemberId)
	waitAcks(count.Load() + 300)
	procs[lead].start(t, bin)
	waitAcks(count.Load() + 200)
	close(stop)
	wg.Wait()

	// Writes that timed out on the client may still commit later: compare
	// every member at one revision, after a final write.
	// Retried: the member the client picks may have just restarted and not
	// yet heard from the leader (etcdserver: no leader, seen in CI).
	var final *clientv3.PutResponse
	require.Eventually(t, func() bool {
		pctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		var err error
		final, err = c.Put(pctx, "done", "")
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "a final write succeeds")
	var dumps []map[string]string
	for _, ep := range eps {
		mc, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		require.NoError(t, err)
		d := map[string]string{}
		var lastErr error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			cctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			// Linearizable, at the final write's revision.
			resp, err := mc.Get(cctx, "load/", clientv3.WithPrefix(), clientv3.WithRev(final.Header.Revision))
			cancel()
			if lastErr = err; err == nil {
				for _, kv := range resp.Kvs {
					d[string(kv.Key)] = string(kv.Value)
				}
				break
			}
		}
		mc.Close()
		if lastErr != nil {
			for _, p := range procs {
				t.Logf("--- %s\n%s", p.name, tail(p.logs.String(), 6000))
			}
			t.Fatalf("member %s cannot serve a linearizable read: %v", ep, lastErr)
		}
		dumps = append(dumps, d)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, d := range dumps {
		for k := range acked {
			require.Contains(t, d, k, "member %d lost acknowledged write %s", i, k)
		}
	}
	require.Equal(t, dumps[0], dumps[1])
	require.Equal(t, dumps[0], dumps[2])
	var hashes []uint32
	for _, ep := range eps {
		h, err := c.HashKV(t.Context(), ep, final.Header.Revision)
		require.NoError(t, err)
		hashes = append(hashes, h.Hash)
	}
	require.Equal(t, hashes[0], hashes[1], "HashKV agrees across members after the kill")
	require.Equal(t, hashes[0], hashes[2])
	t.Logf("%d writes acknowledged across a leader SIGKILL", len(acked))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
