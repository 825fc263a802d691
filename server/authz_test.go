package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/server"
)

// recorder is a check point that records every question and denies any
// on keys under "secret/".
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) Authorize(_ context.Context, write bool, key, end []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	mode := "read"
	if write {
		mode = "write"
	}
	r.calls = append(r.calls, fmt.Sprintf("%s %s %s", mode, key, end))
	if bytes.HasPrefix(key, []byte("secret/")) {
		return rpctypes.ErrGRPCPermissionDenied
	}
	return nil
}

// take returns the calls since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func TestEveryOperationPassesTheCheckPoint(t *testing.T) {
	rec := &recorder{}
	ms := testcluster.Start(t, 1)
	ms[0].Srv.Stop()
	ms[0].Opts = []server.Option{server.WithAuthorizer(rec)}
	ms[0].Start()
	<-ms[0].Srv.Ready()
	c := testcluster.Client(t, ms[0])
	rec.take()

	_, err := c.Get(ctx(t), "open", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Equal(t, []string{"read open opeo"}, rec.take())

	g, err := c.Grant(ctx(t), 60)
	require.NoError(t, err)
	_, err = c.Put(ctx(t), "open/a", "v", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	rec.take()
	_, err = c.Put(ctx(t), "open/b", "v", clientv3.WithLease(g.ID), clientv3.WithPrevKV())
	require.NoError(t, err)
	require.Equal(t, []string{"write open/b ", "read open/b ", "write open/a "}, rec.take(),
		"the key, its prev_kv read, and the keys already attached to the lease")

	_, err = c.Delete(ctx(t), "open/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	require.NoError(t, err)
	require.Equal(t, []string{"write open/ open0", "read open/ open0"}, rec.take())

	// A denied op anywhere in a transaction — here in a nested txn of the
	// branch that would not even run — refuses the whole transaction.
	_, err = c.Txn(ctx(t)).
		If(clientv3.Compare(clientv3.Version("cmp"), "=", 0)).
		Then(clientv3.OpGet("x")).
		Else(clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("secret/1", "v")}, nil)).Commit()
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	require.Equal(t, []string{"read cmp ", "read x ", "write secret/1 "}, rec.take())

	_, err = c.Put(ctx(t), "secret/2", "v")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	rec.take()

	// Watches need read permission on their range.
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	wr := <-c.Watch(wctx, "secret/", clientv3.WithPrefix())
	require.True(t, wr.Canceled)
	require.ErrorContains(t, wr.Err(), "etcdserver: permission denied")
	require.Equal(t, []string{"read secret/ secret0"}, rec.take())

	// Leases: TimeToLive with keys reads them, revoke writes them.
	_, err = c.Put(ctx(t), "open/c", "v", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	rec.take()
	_, err = c.TimeToLive(ctx(t), g.ID, clientv3.WithAttachedKeys())
	require.NoError(t, err)
	require.Equal(t, []string{"read open/c "}, rec.take())
	_, err = c.Revoke(ctx(t), g.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"write open/c "}, rec.take())
}
