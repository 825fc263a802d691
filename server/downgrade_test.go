package server_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/server/internal/testcluster"
)

// An enabled downgrade is replicated to every member and kept across a
// restart; CANCEL ends it everywhere.
func TestDowngradeReplicatedAndKept(t *testing.T) {
	ms := testcluster.Start(t, 3)
	eps := ms.Endpoints()
	c, err := clientv3.New(clientv3.Config{Endpoints: eps[:1], Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c.Close()
	status := func(ep string) *pb.DowngradeInfo {
		mc, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Logger: zap.NewNop()})
		require.NoError(t, err)
		defer mc.Close()
		st, err := mc.Status(ctx(t), ep)
		require.NoError(t, err)
		return st.DowngradeInfo
	}
	r, err := c.Downgrade(ctx(t), clientv3.DowngradeEnable, "3.6")
	require.NoError(t, err)
	require.Equal(t, "3.7", r.Version)
	for _, ep := range eps {
		require.Eventually(t, func() bool { return status(ep).GetEnabled() }, 10*time.Second, 20*time.Millisecond, ep)
		require.Equal(t, "3.6.0", status(ep).TargetVersion)
	}
	_, err = c.Downgrade(ctx(t), clientv3.DowngradeValidate, "3.6")
	require.ErrorIs(t, err, rpctypes.ErrDowngradeInProcess)

	ms[2].Restart()
	ep := ms[2].Srv.ClientAddrs()[0]
	require.True(t, status(ep).GetEnabled(), "kept across a restart")

	_, err = c.Downgrade(ctx(t), clientv3.DowngradeCancel, "")
	require.NoError(t, err)
	for _, ep := range ms.Endpoints() {
		require.Eventually(t, func() bool { return !status(ep).GetEnabled() }, 10*time.Second, 20*time.Millisecond, ep)
	}
}
