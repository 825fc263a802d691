package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/server"
)

// bridge forwards TCP connections to target until cut: then it closes
// every connection and refuses new ones, until healed.
type bridge struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func newBridge(t *testing.T, target string) *bridge {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &bridge{l: l, target: target, conns: map[net.Conn]struct{}{}}
	go b.serve()
	t.Cleanup(func() { l.Close(); b.setCut(true) })
	return b
}

func (b *bridge) serve() {
	for {
		c, err := b.l.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.cut {
			b.mu.Unlock()
			c.Close()
			continue
		}
		b.mu.Unlock()
		d, err := net.Dial("tcp", b.target)
		if err != nil {
			c.Close()
			continue
		}
		b.mu.Lock()
		b.conns[c], b.conns[d] = struct{}{}, struct{}{}
		b.mu.Unlock()
		go func() { _, _ = io.Copy(d, c); d.Close(); c.Close() }()
		go func() { _, _ = io.Copy(c, d); c.Close(); d.Close() }()
	}
}

func (b *bridge) setCut(cut bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut = cut
	if cut {
		for c := range b.conns {
			c.Close()
		}
		b.conns = map[net.Conn]struct{}{}
	}
}

// bridgedCluster starts n members whose peer traffic from member i to
// member j goes through bridges[i][j].
func bridgedCluster(t *testing.T, n int, opts ...func(*server.Config)) ([]*member, [][]*bridge) {
	ms := memberConfigs(t, n, opts...)
	peerAddr := map[string]int{} // advertised peer URL -> member index
	for i, m := range ms {
		peerAddr[m.cfg.InitialAdvertisePeerURLs] = i
	}
	bridges := make([][]*bridge, n)
	for i := range n {
		bridges[i] = make([]*bridge, n)
		for j := range n {
			if i != j {
				bridges[i][j] = newBridge(t, ms[j].cfg.ListenPeerURLs[len("http://"):])
			}
		}
	}
	for i, m := range ms {
		m.opts = []server.Option{server.WithPeerAddrs(func(_ uint64, urls []string) []string {
			j, ok := peerAddr[urls[0]]
			if !ok || j == i {
				return nil
			}
			return []string{bridges[i][j].l.Addr().String()}
		})}
	}
	startCluster(t, ms)
	return ms, bridges
}

// isolate cuts (or heals) every link from and to member i.
func isolate(bridges [][]*bridge, i int, cut bool) {
	for j := range bridges {
		if j != i {
			bridges[i][j].setCut(cut)
			bridges[j][i].setCut(cut)
		}
	}
}

func TestPartitionedLeaderStepsDownAndCatchesUp(t *testing.T) {
	ms, bridges := bridgedCluster(t, 3)
	c := client(t, ms...)
	for i := range 10 {
		_, err := c.Put(ctx(t), fmt.Sprint("before/", i), "v")
		require.NoError(t, err)
	}
	old := leaderIndex(t, ms)
	isolate(bridges, old, true)

	// The majority elects a leader and keeps taking writes.
	var maj []*member
	for i, m := range ms {
		if i != old {
			maj = append(maj, m)
		}
	}
	mc := client(t, maj...)
	require.Eventually(t, func() bool {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := mc.Put(cctx, "during", "majority")
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "the majority side takes writes")
	for i := range 20 {
		_, err := mc.Put(ctx(t), fmt.Sprint("during/", i), "v")
		require.NoError(t, err)
	}

	// The isolated old leader cannot serve a linearizable read or a write.
	oc := client(t, ms[old])
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := oc.Get(cctx, "during")
	cancel()
	require.Error(t, err, "no quorum, no linearizable read")
	cctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	_, err = oc.Put(cctx, "lost", "v")
	cancel()
	require.Error(t, err)
	ser, err := oc.Get(ctx(t), "during", clientv3.WithSerializable())
	require.NoError(t, err, "serializable reads are served locally")
	require.Zero(t, ser.Count, "the isolated member has not seen the majority's writes")

	// Healed, it catches up and every member agrees.
	isolate(bridges, old, false)
	require.Eventually(t, func() bool {
		get, err := oc.Get(ctx(t), "during/", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		return err == nil && get.Count == 20
	}, 15*time.Second, 50*time.Millisecond)
	get, err := c.Get(ctx(t), "lost")
	require.NoError(t, err)
	require.Zero(t, get.Count, "a write the minority could not commit never appears")
	rev := get.Header.Revision
	var hashes []uint32
	for _, m := range ms {
		require.Eventually(t, func() bool {
			h, err := client(t, m).HashKV(ctx(t), m.srv.ClientAddrs()[0], rev)
			if err != nil {
				return false
			}
			hashes = append(hashes, h.Hash)
			return true
		}, 10*time.Second, 50*time.Millisecond)
	}
	require.Equal(t, hashes[0], hashes[1])
	require.Equal(t, hashes[0], hashes[2])
}

// A watcher on a member that gets restored from a leader snapshot loses
// its stream with Unavailable; clientv3 resumes it from the last revision
// it got, so it sees every event once, in order.
func TestWatchResumesAcrossSnapshotInstall(t *testing.T) {
	ms, bridges := bridgedCluster(t, 3, func(c *server.Config) { c.SnapshotCount, c.SnapshotCatchUpEntries = 30, 5 })
	lead := leaderIndex(t, ms)
	f := (lead + 1) % 3
	wc := client(t, ms[f])
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	wch := wc.Watch(wctx, "w/", clientv3.WithPrefix())
	lc := client(t, ms[lead])
	put := func(i int) {
		_, err := lc.Put(ctx(t), fmt.Sprintf("w/%03d", i), fmt.Sprint(i))
		require.NoError(t, err)
	}
	for i := range 10 {
		put(i)
	}
	isolate(bridges, f, true)
	for i := 10; i < 200; i++ {
		put(i)
	}
	isolate(bridges, f, false)
	for i := 200; i < 210; i++ {
		put(i)
	}
	var got []string
	var lastErr error
	deadline := time.After(20 * time.Second)
	for len(got) < 210 {
		select {
		case wr, ok := <-wch:
			require.True(t, ok, "the watch channel stays open (last: %v, %d events)", lastErr, len(got))
			if wr.Err() != nil || wr.Canceled {
				lastErr = fmt.Errorf("%v canceled=%v reason=%q", wr.Err(), wr.Canceled, wr.CancelReason)
			}
			if wr.Err() != nil {
				continue // reported while resuming
			}
			for _, ev := range wr.Events {
				got = append(got, string(ev.Kv.Key))
			}
		case <-deadline:
			t.Fatalf("got %d of 210 events", len(got))
		}
	}
	for i, k := range got {
		require.Equal(t, fmt.Sprintf("w/%03d", i), k, "every event once, in order")
	}
	snaps, _ := filepath.Glob(filepath.Join(ms[f].cfg.DataDir, "member", "snap", "*.db"))
	require.NotEmpty(t, snaps, "the follower was restored from a snapshot")
}

// WithRequireLeader (Kubernetes' watches use it): without a leader, new
// requests get ErrNoLeader at once and open streams end with it, so the
// client moves on; plain requests keep waiting as before.
func TestRequireLeader(t *testing.T) {
	ms, bridges := bridgedCluster(t, 3)
	lead := leaderIndex(t, ms)
	f := (lead + 1) % 3
	fc := client(t, ms[f])
	wch := fc.Watch(clientv3.WithRequireLeader(ctx(t)), "k")
	_, err := fc.Put(clientv3.WithRequireLeader(ctx(t)), "k", "v")
	require.NoError(t, err)
	require.NotEmpty(t, (<-wch).Events)

	isolate(bridges, f, true)
	kvc := pb.NewKVClient(fc.ActiveConnection()) // clientv3 itself would retry
	require.Eventually(t, func() bool {
		cctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(context.Background()), time.Second)
		defer cancel()
		_, err := kvc.Range(cctx, &pb.RangeRequest{Key: []byte("k")})
		return err != nil && err.Error() == rpctypes.ErrGRPCNoLeader.Error()
	}, 10*time.Second, 50*time.Millisecond, "a request needing a leader fails fast")
	select {
	case wr, ok := <-wch:
		require.True(t, ok)
		require.ErrorIs(t, wr.Err(), rpctypes.ErrNoLeader, "the watch ends with ErrNoLeader")
	case <-time.After(10 * time.Second):
		t.Fatal("the leader-requiring watch was not ended")
	}
	ser, err := fc.Get(ctx(t), "k", clientv3.WithSerializable())
	require.NoError(t, err, "requests without the requirement are still served")
	require.EqualValues(t, 1, ser.Count)
	isolate(bridges, f, false)
}

func TestMoveLeader(t *testing.T) {
	ms := cluster(t, 3)
	lead := leaderIndex(t, ms)
	target := ms[(lead+1)%3]
	c := client(t, ms[(lead+2)%3])
	_, err := c.MoveLeader(ctx(t), target.srv.ID())
	require.ErrorIs(t, err, rpctypes.ErrNotLeader, "only the leader moves leadership")

	lc := client(t, ms[lead])
	_, err = lc.MoveLeader(ctx(t), 12345)
	require.ErrorIs(t, err, rpctypes.ErrBadLeaderTransferee)
	resp, err := lc.MoveLeader(ctx(t), target.srv.ID())
	require.NoError(t, err)
	require.NotNil(t, resp.Header)
	require.Equal(t, target.srv.ID(), ms[leaderIndex(t, ms)].srv.ID(), "the target leads")

	h, err := pb.NewMaintenanceClient(lc.ActiveConnection()).Hash(ctx(t), &pb.HashRequest{})
	require.NoError(t, err)
	require.NotZero(t, h.Hash)
	require.NotZero(t, h.Header.Revision)
}
