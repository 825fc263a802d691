package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/server"
)

// compactRev returns the compact revision the member reports (via a
// HashKV at the current revision).
func compactRev(t *testing.T, c *clientv3.Client, ep string) int64 {
	t.Helper()
	h, err := c.HashKV(ctx(t), ep, 0)
	require.NoError(t, err)
	return h.CompactRevision
}

// writeFor puts keys for d.
func writeFor(t *testing.T, c *clientv3.Client, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		_, err := c.Put(ctx(t), "k", fmt.Sprint(time.Now().UnixNano()))
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAutoCompactionPeriodic(t *testing.T) {
	ms := testcluster.Start(t, 1, func(c *server.Config) { c.AutoCompactionRetention = "1s" })
	c := testcluster.Client(t, ms[0])
	ep := ms[0].Srv.ClientAddrs()[0]
	writeFor(t, c, 2500*time.Millisecond)
	cr := compactRev(t, c, ep)
	require.Greater(t, cr, int64(1), "compacted to the revision one period ago")
	get, err := c.Get(ctx(t), "k")
	require.NoError(t, err)
	require.Less(t, cr, get.Header.Revision, "the last period of history is kept")
}

func TestAutoCompactionRevision(t *testing.T) {
	defer server.SetRevisionCompactInterval(200 * time.Millisecond)()
	ms := testcluster.Start(t, 3, func(c *server.Config) {
		c.AutoCompactionMode, c.AutoCompactionRetention = "revision", "20"
	})
	c := testcluster.Client(t, ms...)
	for i := range 50 {
		_, err := c.Put(ctx(t), "k", fmt.Sprint(i))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return compactRev(t, c, ms[0].Srv.ClientAddrs()[0]) == 51-20
	}, 5*time.Second, 50*time.Millisecond, "compacted to current revision minus the retention, once (by the leader)")
	_, err := c.Get(context.Background(), "k", clientv3.WithRev(51-21))
	require.Error(t, err)
}
