package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/server"
)

func TestPartitionedLeaderStepsDownAndCatchesUp(t *testing.T) {
	ms, bridges := testcluster.StartBridged(t, 3)
	c := testcluster.Client(t, ms...)
	for i := range 10 {
		_, err := c.Put(ctx(t), fmt.Sprint("before/", i), "v")
		require.NoError(t, err)
	}
	old := leaderIndex(t, ms)
	bridges.Isolate(old, true)

	// The majority elects a leader and keeps taking writes.
	var maj testcluster.Members
	for i, m := range ms {
		if i != old {
			maj = append(maj, m)
		}
	}
	mc := testcluster.Client(t, maj...)
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
	oc := testcluster.Client(t, ms[old])
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
	bridges.Isolate(old, false)
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
			h, err := testcluster.Client(t, m).HashKV(ctx(t), m.Srv.ClientAddrs()[0], rev)
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
	ms, bridges := testcluster.StartBridged(t, 3, func(c *server.Config) { c.SnapshotCount, c.SnapshotCatchUpEntries = 30, 5 })
	lead := leaderIndex(t, ms)
	f := (lead + 1) % 3
	wc := testcluster.Client(t, ms[f])
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	wch := wc.Watch(wctx, "w/", clientv3.WithPrefix())
	lc := testcluster.Client(t, ms[lead])
	put := func(i int) {
		_, err := lc.Put(ctx(t), fmt.Sprintf("w/%03d", i), fmt.Sprint(i))
		require.NoError(t, err)
	}
	for i := range 10 {
		put(i)
	}
	bridges.Isolate(f, true)
	for i := 10; i < 200; i++ {
		put(i)
	}
	bridges.Isolate(f, false)
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
	snaps, _ := filepath.Glob(filepath.Join(ms[f].Cfg.DataDir, "member", "snap", "*.db"))
	require.NotEmpty(t, snaps, "the follower was restored from a snapshot")
}

// WithRequireLeader (Kubernetes' watches use it): without a leader, new
// requests get ErrNoLeader at once and open streams end with it, so the
// client moves on; plain requests keep waiting as before.
func TestRequireLeader(t *testing.T) {
	ms, bridges := testcluster.StartBridged(t, 3)
	lead := leaderIndex(t, ms)
	f := (lead + 1) % 3
	fc := testcluster.Client(t, ms[f])
	wch := fc.Watch(clientv3.WithRequireLeader(ctx(t)), "k")
	_, err := fc.Put(clientv3.WithRequireLeader(ctx(t)), "k", "v")
	require.NoError(t, err)
	require.NotEmpty(t, (<-wch).Events)

	bridges.Isolate(f, true)
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
	bridges.Isolate(f, false)
}

func TestMoveLeader(t *testing.T) {
	ms := testcluster.Start(t, 3)
	lead := leaderIndex(t, ms)
	target := ms[(lead+1)%3]
	c := testcluster.Client(t, ms[(lead+2)%3])
	_, err := c.MoveLeader(ctx(t), target.Srv.ID())
	require.ErrorIs(t, err, rpctypes.ErrNotLeader, "only the leader moves leadership")

	lc := testcluster.Client(t, ms[lead])
	_, err = lc.MoveLeader(ctx(t), 12345)
	require.ErrorIs(t, err, rpctypes.ErrBadLeaderTransferee)
	resp, err := lc.MoveLeader(ctx(t), target.Srv.ID())
	require.NoError(t, err)
	require.NotNil(t, resp.Header)
	require.Equal(t, target.Srv.ID(), ms[leaderIndex(t, ms)].Srv.ID(), "the target leads")

	h, err := pb.NewMaintenanceClient(lc.ActiveConnection()).Hash(ctx(t), &pb.HashRequest{})
	require.NoError(t, err)
	require.NotZero(t, h.Hash)
	require.NotZero(t, h.Header.Revision)
}

// TestLostProposalTimesOutAsEtcd: a write whose proposal can never commit
// (its member was cut off from the others) is answered with etcd's
// "request timed out" after etcd's ReqTimeout (5 s + 2 election
// timeouts), however long the client is willing to wait. It used to wait
// for the client's own deadline: under the robustness suite's kills, a
// client with a three-minute deadline hung for three minutes.
func TestLostProposalTimesOutAsEtcd(t *testing.T) {
	ms, bridges := testcluster.StartBridged(t, 3)
	old := leaderIndex(t, ms)
	oc := testcluster.Client(t, ms[old])
	_, err := oc.Put(ctx(t), "warm", "v")
	require.NoError(t, err)
	bridges.Isolate(old, true)
	defer bridges.Isolate(old, false)

	for _, op := range []func(context.Context) error{
		func(c context.Context) error { _, err := oc.Put(c, "lost", "v"); return err },
		func(c context.Context) error { _, err := oc.Get(c, "lost"); return err },
	} {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t0 := time.Now()
		err := op(cctx)
		cancel()
		require.Error(t, err)
		require.Less(t, time.Since(t0), 20*time.Second, "answered by the server's timeout, not the client's: %v", err)
		require.NotErrorIs(t, err, context.DeadlineExceeded)
	}
}
