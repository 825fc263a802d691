package consensus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/metastore/metastore/consensus"
	"github.com/metastore/metastore/consensus/consensustest"
	"github.com/metastore/metastore/consensus/transport"
)

// Environment of a member child process.
const (
	envChildID    = "CONSENSUS_CHILD_ID"
	envChildDir   = "CONSENSUS_CHILD_DIR"
	envChildPeers = "CONSENSUS_CHILD_PEERS" // id=raftAddr,...
	envChildHTTP  = "CONSENSUS_CHILD_HTTP"  // address of its small HTTP API
)

// TestClusterChild runs one member as a child process of
// TestProcessClusterSIGKILL: a consensus node on real disk and real gRPC,
// with a tiny HTTP API to propose, read status and dump its state.
func TestClusterChild(t *testing.T) {
	idStr := os.Getenv(envChildID)
	if idStr == "" {
		t.Skip("only runs as a child of TestProcessClusterSIGKILL")
	}
	id, _ := strconv.ParseUint(idStr, 10, 64)
	var peers []consensus.Peer
	var self string
	for _, p := range strings.Split(os.Getenv(envChildPeers), ",") {
		pid, addr, _ := strings.Cut(p, "=")
		n, _ := strconv.ParseUint(pid, 10, 64)
		peers = append(peers, consensus.Peer{ID: n, Context: []byte(addr)})
		if n == id {
			self = addr
		}
	}
	lis, err := net.Listen("tcp", self)
	require.NoError(t, err)
	tr := transport.New(transport.Config{ID: id, ClusterID: 0xc1, Logger: zap.NewNop()})
	for _, p := range peers {
		if p.ID != id {
			tr.AddPeer(p.ID, p.Context)
		}
	}
	srv := grpc.NewServer()
	tr.Register(srv)
	go srv.Serve(lis)
	sm := consensustest.NewKV()
	n, err := consensus.Start(consensus.Config{
		ID: id, Dir: os.Getenv(envChildDir), Peers: peers, TickInterval: 20 * time.Millisecond,
		SnapshotCount: 300, SnapshotCatchUpEntries: 50,
	}, sm, tr)
	require.NoError(t, err)
	tr.SetHandler(n)

	mux := http.NewServeMux()
	mux.HandleFunc("/propose", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := n.Propose(ctx, []byte(r.URL.Query().Get("kv"))); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(childStatus{Status: n.Status(), Restores: sm.Restores()})
	})
	mux.HandleFunc("/dump", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if _, err := n.ReadIndex(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(sm.Copy())
	})
	http.Serve(mustListen(t, os.Getenv(envChildHTTP)), mux) // until killed
}

func mustListen(t *testing.T, addr string) net.Listener {
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	return lis
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

// childStatus is what a child's /status returns.
type childStatus struct {
	consensus.Status
	Restores int // snapshots restored into the state machine since start
}

type child struct {
	id        uint64
	dir, http string
	cmd       *exec.Cmd
}

// TestProcessClusterSIGKILL runs 3 members as separate processes on real
// disks and loopback gRPC, writes under load, SIGKILLs the leader and then
// a follower, restarts them, and checks that no acknowledged write is lost
// and that every member ends with the same state.
func TestProcessClusterSIGKILL(t *testing.T) {
	dir := t.TempDir()
	children := map[uint64]*child{}
	var peers []string
	for id := uint64(1); id <= 3; id++ {
		children[id] = &child{id: id, dir: filepath.Join(dir, fmt.Sprint(id)), http: freeAddr(t)}
		peers = append(peers, fmt.Sprintf("%d=%s", id, freeAddr(t)))
	}
	start := func(c *child) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestClusterChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envChildID+"="+fmt.Sprint(c.id), envChildDir+"="+c.dir,
			envChildPeers+"="+strings.Join(peers, ","), envChildHTTP+"="+c.http)
		require.NoError(t, cmd.Start())
		c.cmd = cmd
	}
	kill := func(c *child) {
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
		_ = c.cmd.Wait()
	}
	for _, c := range children {
		start(c)
	}
	t.Cleanup(func() {
		for _, c := range children {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	client := &http.Client{Timeout: 3 * time.Second}
	status := func(c *child) (childStatus, bool) {
		resp, err := client.Get("http://" + c.http + "/status")
		if err != nil {
			return childStatus{}, false
		}
		defer resp.Body.Close()
		var s childStatus
		return s, json.NewDecoder(resp.Body).Decode(&s) == nil
	}
	leader := func(not uint64) uint64 {
		var lead uint64
		require.Eventually(t, func() bool {
			seen := map[uint64]int{}
			for _, c := range children {
				if s, ok := status(c); ok && s.Lead != 0 && s.Lead != not {
					seen[s.Lead]++
				}
			}
			for l, n := range seen {
				if n >= 2 {
					lead = l
					return true
				}
			}
			return false
		}, 30*time.Second, 20*time.Millisecond)
		return lead
	}
	lead := leader(0)

	var mu sync.Mutex
	acked := map[string]bool{}
	var count atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				c := children[uint64(1+rng.IntN(3))]
				resp, err := client.Get("http://" + c.http + "/propose?kv=" + url.QueryEscape(key+"=v"))
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					acked[key] = true
					mu.Unlock()
					count.Add(1)
				}
			}
		})
	}
	waitAcks := func(n int64) {
		require.Eventually(t, func() bool { return count.Load() >= n }, 60*time.Second, 10*time.Millisecond)
	}
	waitAcks(300)
	kill(children[lead]) // SIGKILL the leader under load
	newLead := leader(lead)
	waitAcks(count.Load() + 300)
	start(children[lead])
	waitAcks(count.Load() + 200)
	follower := uint64(1)
	for follower == newLead {
		follower++
	}
	kill(children[follower])     // SIGKILL a follower under load
	waitAcks(count.Load() + 600) // far behind: past SnapshotCount + catch-up
	start(children[follower])
	require.Eventually(t, func() bool {
		s, ok := status(children[follower])
		return ok && s.Restores > 0
	}, 30*time.Second, 20*time.Millisecond, "the lagging follower catches up by snapshot")
	waitAcks(count.Load() + 200)
	close(stop)
	wg.Wait()

	// Whole-cluster kill and restart.
	for _, c := range children {
		kill(c)
	}
	for _, c := range children {
		start(c)
	}
	leader(0)

	var dumps []map[string]string
	for id := uint64(1); id <= 3; id++ {
		var d map[string]string
		require.Eventually(t, func() bool {
			resp, err := client.Get("http://" + children[id].http + "/dump")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&d) == nil
		}, 30*time.Second, 50*time.Millisecond, "member %d serves a linearizable dump", id)
		dumps = append(dumps, d)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, d := range dumps {
		for k := range acked {
			require.Contains(t, d, k, "member %d lost acknowledged write %s", i+1, k)
		}
	}
	require.Equal(t, dumps[0], dumps[1])
	require.Equal(t, dumps[0], dumps[2])
	t.Logf("%d writes acknowledged across two SIGKILLs; leader %d then %d", len(acked), lead, newLead)
}
