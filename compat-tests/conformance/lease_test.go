package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLeaseLifecycle(t *testing.T) {
	c, p := newClient(t), prefix(t)
	g, err := c.Grant(ctx(t), 60)
	skipIfUnimplemented(t, err)
	require.NoError(t, err)
	require.NotZero(t, g.ID)
	require.EqualValues(t, 60, g.TTL)
	for _, k := range []string{"b", "a"} {
		_, err = c.Put(ctx(t), p+k, "v", clientv3.WithLease(g.ID))
		require.NoError(t, err)
	}
	ttl, err := c.TimeToLive(ctx(t), g.ID, clientv3.WithAttachedKeys())
	require.NoError(t, err)
	require.EqualValues(t, 60, ttl.GrantedTTL)
	require.True(t, ttl.TTL > 50 && ttl.TTL <= 60, "remaining %d", ttl.TTL)
	require.ElementsMatch(t, [][]byte{[]byte(p + "a"), []byte(p + "b")}, ttl.Keys, "etcd does not order them")
	ka, err := c.KeepAliveOnce(ctx(t), g.ID)
	require.NoError(t, err)
	require.EqualValues(t, 60, ka.TTL)
	ls, err := c.Leases(ctx(t))
	require.NoError(t, err)
	found := false
	for _, l := range ls.Leases {
		found = found || l.ID == g.ID
	}
	require.True(t, found)

	w := c.Watch(ctx(t), p, clientv3.WithPrefix(), clientv3.WithRev(nextRev(t, c)))
	rv, err := c.Revoke(ctx(t), g.ID)
	require.NoError(t, err)
	evs := events(t, w, 2)
	for _, ev := range evs {
		require.Equal(t, mvccpb.DELETE, ev.Type)
		require.Equal(t, evs[0].Kv.ModRevision, ev.Kv.ModRevision, "revoke deletes every key at one revision")
		// etcd fills a lease response's header with the member's revision
		// when it answers: at or after the revoke's.
		require.LessOrEqual(t, ev.Kv.ModRevision, rv.Header.Revision)
	}
	gone, err := c.TimeToLive(ctx(t), g.ID)
	require.NoError(t, err, "an unknown lease is not an error")
	require.EqualValues(t, -1, gone.TTL)
	_, err = c.Revoke(ctx(t), g.ID)
	require.ErrorIs(t, err, rpctypes.ErrLeaseNotFound)
	_, err = c.KeepAliveOnce(ctx(t), g.ID)
	require.ErrorIs(t, err, rpctypes.ErrLeaseNotFound)
	_, err = c.Grant(ctx(t), 9000000001)
	require.ErrorIs(t, err, rpctypes.ErrLeaseTTLTooLarge)
}

func TestLeaseExpires(t *testing.T) {
	c, p := newClient(t), prefix(t)
	g, err := c.Grant(ctx(t), 1) // raised to the server's minimum TTL
	skipIfUnimplemented(t, err)
	require.NoError(t, err)
	require.GreaterOrEqual(t, g.TTL, int64(1))
	_, err = c.Put(ctx(t), p+"k", "v", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		get, err := c.Get(ctx(t), p+"k")
		return err == nil && get.Count == 0
	}, time.Duration(g.TTL+10)*time.Second, 100*time.Millisecond, "the key goes with its lease")
}
