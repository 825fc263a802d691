package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/server"
)

func TestLeaseSingleNode(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	_, err := c.Put(ctx(t), "before", "x")
	require.NoError(t, err)

	g, err := c.Grant(ctx(t), 60)
	require.NoError(t, err)
	require.NotZero(t, g.ID, "the server chooses an ID")
	require.EqualValues(t, 60, g.TTL)
	require.EqualValues(t, 2, g.ResponseHeader.Revision, "a grant does not change the revision")
	require.Equal(t, ms[0].Srv.ID(), g.ResponseHeader.MemberId)

	given, err := c.Lease.Grant(ctx(t), 0) // TTL 0: raised to the minimum
	require.NoError(t, err)
	require.EqualValues(t, 1, given.TTL, "min TTL = ceil(1.5 election timeouts) = ceil(0.3 s)")

	_, err = c.Do(ctx(t), clientv3.OpPut("k", "v")) // keep the revision moving
	require.NoError(t, err)

	// Given IDs, duplicates, too large a TTL.
	const myID = 0x1234
	_, err = c.Lease.Grant(clientv3.WithRequireLeader(ctx(t)), 5)
	require.NoError(t, err)
	lc := pb.NewLeaseClient(c.ActiveConnection())
	mine, err := lc.LeaseGrant(ctx(t), &pb.LeaseGrantRequest{ID: myID, TTL: 10})
	require.NoError(t, err)
	require.EqualValues(t, myID, mine.ID)
	_, err = lc.LeaseGrant(ctx(t), &pb.LeaseGrantRequest{ID: myID, TTL: 10})
	require.Equal(t, rpctypes.ErrGRPCLeaseExist.Error(), err.Error())
	_, err = c.Grant(ctx(t), 9000000001)
	require.ErrorIs(t, err, rpctypes.ErrLeaseTTLTooLarge)

	// Keys attach; an unknown lease is refused.
	for _, k := range []string{"l/b", "l/a", "l/c"} {
		_, err = c.Put(ctx(t), k, "v", clientv3.WithLease(g.ID))
		require.NoError(t, err)
	}
	_, err = c.Put(ctx(t), "nolease", "v", clientv3.WithLease(0x7777))
	require.ErrorIs(t, err, rpctypes.ErrLeaseNotFound)

	ttl, err := c.TimeToLive(ctx(t), g.ID, clientv3.WithAttachedKeys())
	require.NoError(t, err)
	require.EqualValues(t, 60, ttl.GrantedTTL)
	require.InDelta(t, 58, ttl.TTL, 2, "truncated seconds left")
	require.Equal(t, [][]byte{[]byte("l/a"), []byte("l/b"), []byte("l/c")}, ttl.Keys)
	unknown, err := c.TimeToLive(ctx(t), 0x7777)
	require.NoError(t, err, "an unknown lease is not an error")
	require.EqualValues(t, -1, unknown.TTL)

	ls, err := c.Leases(ctx(t))
	require.NoError(t, err)
	var ids []clientv3.LeaseID
	for _, l := range ls.Leases {
		ids = append(ids, l.ID)
	}
	require.Contains(t, ids, g.ID)
	require.Contains(t, ids, clientv3.LeaseID(myID))
	require.Len(t, ids, 4)

	ka, err := c.KeepAliveOnce(ctx(t), g.ID)
	require.NoError(t, err)
	require.EqualValues(t, 60, ka.TTL)
	_, err = c.KeepAliveOnce(ctx(t), 0x7777)
	require.ErrorIs(t, err, rpctypes.ErrLeaseNotFound, "TTL 0 in the stream: clientv3 reports not found")

	// Revoke deletes every attached key at one revision.
	w := c.Watch(ctx(t), "l/", clientv3.WithPrefix())
	before, err := c.Get(ctx(t), "before")
	require.NoError(t, err)
	rv, err := c.Revoke(ctx(t), g.ID)
	require.NoError(t, err)
	require.Equal(t, before.Header.Revision+1, rv.Header.Revision)
	wr := <-w
	require.Len(t, wr.Events, 3)
	for _, ev := range wr.Events {
		require.Equal(t, mvccpb.DELETE, ev.Type)
		require.Equal(t, rv.Header.Revision, ev.Kv.ModRevision)
	}
	get, err := c.Get(ctx(t), "l/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Zero(t, get.Count)
	_, err = c.Revoke(ctx(t), g.ID)
	require.ErrorIs(t, err, rpctypes.ErrLeaseNotFound)
	gone, err := c.TimeToLive(ctx(t), g.ID)
	require.NoError(t, err)
	require.EqualValues(t, -1, gone.TTL)
}

func waitGone(t *testing.T, c *clientv3.Client, key string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		get, err := c.Get(ctx(t), key)
		require.NoError(t, err)
		if get.Count == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists after %v", key, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLeaseExpiryAndKeepAlive(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	short, err := c.Grant(ctx(t), 1)
	require.NoError(t, err)
	kept, err := c.Grant(ctx(t), 3)
	require.NoError(t, err)
	_, err = c.Put(ctx(t), "short", "v", clientv3.WithLease(short.ID))
	require.NoError(t, err)
	_, err = c.Put(ctx(t), "kept", "v", clientv3.WithLease(kept.ID))
	require.NoError(t, err)
	kctx, stop := context.WithCancel(ctx(t))
	kac, err := c.KeepAlive(kctx, kept.ID)
	require.NoError(t, err)
	go func() {
		for range kac {
		}
	}()

	waitGone(t, c, "short", 5*time.Second)
	tl, err := c.TimeToLive(ctx(t), short.ID)
	require.NoError(t, err)
	require.EqualValues(t, -1, tl.TTL, "expired leases are revoked")

	time.Sleep(4 * time.Second) // past its TTL: only keepalives keep it
	get, err := c.Get(ctx(t), "kept")
	require.NoError(t, err)
	require.EqualValues(t, 1, get.Count, "kept alive")

	stop()
	waitGone(t, c, "kept", 8*time.Second)
}

func TestLeaseSurvivesRestart(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	g, err := c.Grant(ctx(t), 60)
	require.NoError(t, err)
	_, err = c.Put(ctx(t), "k", "v", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	ms[0].Srv.Stop()
	ms[0].Start()
	<-ms[0].Srv.Ready()
	c2 := testcluster.Client(t, ms[0])
	tl, err := c2.TimeToLive(ctx(t), g.ID, clientv3.WithAttachedKeys())
	require.NoError(t, err)
	require.EqualValues(t, 60, tl.GrantedTTL)
	require.Equal(t, [][]byte{[]byte("k")}, tl.Keys)
	_, err = c2.Revoke(ctx(t), g.ID)
	require.NoError(t, err)
	waitGone(t, c2, "k", time.Second)
}

// leaderIndex returns the index of the member that leads.
func leaderIndex(t *testing.T, ms testcluster.Members) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range ms {
			if m.Srv == nil {
				continue
			}
			st, err := testcluster.Client(t, m).Status(ctx(t), m.Srv.ClientAddrs()[0])
			if err == nil && st.Leader == m.Srv.ID() {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no leader")
	return -1
}

func TestLeaseThreeNodes(t *testing.T) {
	ms := testcluster.Start(t, 3, func(c *server.Config) { c.LeaseCheckpointInterval = 200 * time.Millisecond })
	lead := leaderIndex(t, ms)
	follower := ms[(lead+1)%3]
	fc := testcluster.Client(t, follower)

	// Through a follower: grant, attach, keepalive and TimeToLive are
	// forwarded to the leader.
	g, err := fc.Grant(ctx(t), 30)
	require.NoError(t, err)
	short, err := fc.Grant(ctx(t), 1)
	require.NoError(t, err)
	_, err = fc.Put(ctx(t), "short", "v", clientv3.WithLease(short.ID))
	require.NoError(t, err)
	ka, err := fc.KeepAliveOnce(ctx(t), g.ID)
	require.NoError(t, err)
	require.EqualValues(t, 30, ka.TTL)
	tl, err := fc.TimeToLive(ctx(t), g.ID)
	require.NoError(t, err)
	require.EqualValues(t, 30, tl.GrantedTTL)
	require.InDelta(t, 28, tl.TTL, 2)
	_, err = fc.KeepAliveOnce(ctx(t), 0x7777)
	require.ErrorIs(t, err, rpctypes.ErrLeaseNotFound)
	waitGone(t, fc, "short", 5*time.Second)

	// The remaining TTL survives a leader change (checkpoints).
	time.Sleep(3 * time.Second)
	ms[lead].Srv.Stop()
	ms[lead].Srv = nil
	newLead := leaderIndex(t, ms)
	nc := testcluster.Client(t, ms[newLead])
	tl, err = nc.TimeToLive(ctx(t), g.ID)
	require.NoError(t, err)
	require.Less(t, tl.TTL, int64(28), "the new leader continues from the checkpointed remaining TTL, not from 30")
	require.Greater(t, tl.TTL, int64(20))

	// Every member holds the same lease table.
	for i, m := range ms {
		if m.Srv == nil {
			continue
		}
		ls, err := testcluster.Client(t, m).Leases(ctx(t))
		require.NoError(t, err)
		require.Len(t, ls.Leases, 1, "member %d", i)
		require.Equal(t, g.ID, ls.Leases[0].ID)
	}
}
