package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/tools/etcdtest"
)

// `metastore gateway start` proxies clients to the cluster's endpoints
// (etcd's e2e TestGateway runs it as `etcd gateway --endpoints=… start`).
func TestGatewayStart(t *testing.T) {
	e := etcdtest.StartT(t, etcdtest.Config{})
	stop, ready := make(chan struct{}), make(chan string, 1)
	done := make(chan int, 1)
	var errOut bytes.Buffer
	go func() {
		done <- gateway([]string{"--endpoints=http://" + e.Endpoints[0], "--listen-addr=127.0.0.1:0", "start"}, &errOut, stop, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("gateway exited %d: %s", code, errOut.String())
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = c.Put(ctx, "foo", "bar")
	require.NoError(t, err)
	g, err := c.Get(ctx, "foo")
	require.NoError(t, err)
	require.Equal(t, "bar", string(g.Kvs[0].Value))
	close(stop)
	require.Equal(t, 0, <-done)

	for _, bad := range [][]string{{}, {"stop"}, {"--endpoints=nope", "start"}, {"--discovery-srv=x", "start"}, {"--bogus", "start"}} {
		errOut.Reset()
		require.Equal(t, 2, gateway(bad, &errOut, nil, nil), "%v", bad)
		require.NotEmpty(t, errOut.String())
	}
}
