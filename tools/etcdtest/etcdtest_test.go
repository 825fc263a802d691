package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/metastore/metastore/tools/etcdtest"
)

func client(t *testing.T, eps []string) *clientv3.Client {
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSingleMemberRestartsOnItsDataDir(t *testing.T) {
	dir := t.TempDir()
	c := etcdtest.StartT(t, etcdtest.Config{Dir: dir})
	require.Len(t, c.Endpoints, 1)
	require.Equal(t, embed.DefaultName, c.Members[0].Config().Name)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := client(t, c.Endpoints).Put(ctx, "k", "v")
	require.NoError(t, err)
	c.Close()
	c.Close() // twice is fine

	c2 := etcdtest.StartT(t, etcdtest.Config{Dir: dir})
	require.Equal(t, c.DataDirs, c2.DataDirs)
	resp, err := client(t, c2.Endpoints).Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "the restarted member serves what it stored")
	require.Equal(t, "v", string(resp.Kvs[0].Value))
}

func TestThreeMembers(t *testing.T) {
	var configured []int
	c := etcdtest.StartT(t, etcdtest.Config{Members: 3, Configure: func(i int, cfg *embed.Config) {
		configured = append(configured, i)
		cfg.SnapshotCount = 1000
	}})
	require.Equal(t, []int{0, 1, 2}, configured)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ml, err := client(t, c.Endpoints).MemberList(ctx)
	require.NoError(t, err)
	require.Len(t, ml.Members, 3)
	names := map[string]bool{}
	for _, m := range ml.Members {
		names[m.Name] = true
	}
	require.Equal(t, map[string]bool{"e0": true, "e1": true, "e2": true}, names)
	require.EqualValues(t, 1000, c.Members[1].Config().SnapshotCount)
}

func TestBadConfig(t *testing.T) {
	_, err := etcdtest.Start(etcdtest.Config{})
	require.ErrorContains(t, err, "Dir is required")
	_, err = etcdtest.Start(etcdtest.Config{Dir: t.TempDir(), Members: 2, Names: []string{"a"}})
	require.ErrorContains(t, err, "1 names for 2 members")
}

func TestFreeAddr(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		a, err := etcdtest.FreeAddr()
		require.NoError(t, err)
		require.Regexp(t, `^127\.0\.0\.1:\d+$`, a)
		require.False(t, seen[a], "%s handed out twice", a)
		seen[a] = true
	}
}
