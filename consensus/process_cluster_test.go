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
	"path/filepath"
	"strconv"
	"strings"
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
	srv := grpc.NewServer(transport.ServerOptions()...)
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

// childStatus is what a child's /status returns.
type childStatus struct {
	consensus.Status
	Restores int // snapshots restored into the state machine since start
}

type child struct {
	id        uint64
	dir, http string
	proc      *crashChild
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
	for _, c := range children {
		c.proc = newCrashChild(t, "TestClusterChild", envChildID+"="+fmt.Sprint(c.id), envChildDir+"="+c.dir,
			envChildPeers+"="+strings.Join(peers, ","), envChildHTTP+"="+c.http)
		c.proc.Start()
	}
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

	load := startLoad(t, 6, func(w int, key string) bool {
		c := children[uint64(1+rand.IntN(3))]
		resp, err := client.Get("http://" + c.http + "/propose?kv=" + url.QueryEscape(key+"=v"))
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	waitAcks := func(n int64) { load.WaitAcks(n, 60*time.Second) }
	waitAcks(300)
	children[lead].proc.Kill() // SIGKILL the leader under load
	newLead := leader(lead)
	waitAcks(load.Count() + 300)
	children[lead].proc.Start()
	waitAcks(load.Count() + 200)
	follower := uint64(1)
	for follower == newLead {
		follower++
	}
	children[follower].proc.Kill() // SIGKILL a follower under load
	waitAcks(load.Count() + 600)   // far behind: past SnapshotCount + catch-up
	children[follower].proc.Start()
	require.Eventually(t, func() bool {
		s, ok := status(children[follower])
		return ok && s.Restores > 0
	}, 30*time.Second, 20*time.Millisecond, "the lagging follower catches up by snapshot")
	waitAcks(load.Count() + 200)
	load.Stop()

	// Whole-cluster kill and restart.
	for _, c := range children {
		c.proc.Kill()
	}
	for _, c := range children {
		c.proc.Start()
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
	for i, d := range dumps {
		load.RequireHasAcked(uint64(i+1), d)
	}
	require.Equal(t, dumps[0], dumps[1])
	require.Equal(t, dumps[0], dumps[2])
	t.Logf("%d writes acknowledged across two SIGKILLs; leader %d then %d", load.Count(), lead, newLead)
}
