package server_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/server"
)

// A follower that missed more than the log keeps catches up from the
// leader's live store (no snapshot data file is ever written), ends with
// the same data and HashKV, and applies later writes once.
func TestFollowerCatchesUpFromLiveSnapshot(t *testing.T) {
	ms := testcluster.Start(t, 3, func(c *server.Config) { c.SnapshotCount, c.SnapshotCatchUpEntries = 50, 10 })
	lead := leaderIndex(t, ms)
	lagger := ms[(lead+1)%3]
	lc := testcluster.Client(t, ms[lead])
	_, err := lc.Put(ctx(t), "before", "1")
	require.NoError(t, err)
	lagger.Srv.Stop()

	for i := range 300 {
		_, err := lc.Put(ctx(t), fmt.Sprintf("k/%03d", i), fmt.Sprint(i))
		require.NoError(t, err)
	}
	g, err := lc.Grant(ctx(t), 600)
	require.NoError(t, err)
	_, err = lc.Put(ctx(t), "leased", "v", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	for _, m := range ms {
		dbs, _ := filepath.Glob(filepath.Join(m.Cfg.DataDir, "member", "snap", "*.db"))
		require.Empty(t, dbs, "snapshots are metadata only")
	}

	lagger.Start()
	<-lagger.Srv.Ready()
	_, err = lc.Put(ctx(t), "after", "2")
	require.NoError(t, err)
	fc := testcluster.Client(t, lagger)
	require.Eventually(t, func() bool {
		get, err := fc.Get(ctx(t), "after", clientv3.WithSerializable())
		return err == nil && get.Count == 1
	}, 20*time.Second, 50*time.Millisecond)

	get, err := fc.Get(ctx(t), "", clientv3.WithFromKey(), clientv3.WithSerializable(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.EqualValues(t, 303, get.Count)
	rev := get.Header.Revision
	testcluster.RequireSameHashKV(t, ms, rev)
	got, _ := filepath.Glob(filepath.Join(lagger.Cfg.DataDir, "member", "snap", "*.db"))
	require.NotEmpty(t, got, "the follower caught up through a snapshot")
	// The lease table came with the state.
	ls, err := fc.Leases(ctx(t))
	require.NoError(t, err)
	require.Len(t, ls.Leases, 1)
}
