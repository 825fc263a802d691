package testcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/tools/etcdtest"
)

// readyTimeout bounds the wait for a started member to be ready.
const readyTimeout = 20 * time.Second

// Member is one member's configuration and, once started, its server.
type Member struct {
	Cfg  server.Config
	Opts []server.Option
	Srv  *server.Server
	t    testing.TB
}

// Members are the members of one cluster, in --initial-cluster order.
type Members []*Member

// FreeAddr returns a loopback host:port free a moment ago (see
// etcdtest.FreeAddr), failing the test if there is none.
func FreeAddr(t testing.TB) string {
	t.Helper()
	a, err := etcdtest.FreeAddr()
	require.NoError(t, err)
	return a
}

// Configs makes the configurations of an n-member cluster named m0…, on
// loopback ports with fresh data dirs under t.TempDir(), with 20 ms
// heartbeats and 200 ms elections; opts adjust each config. Nothing is
// started; whatever is running at the end of the test is stopped.
func Configs(t testing.TB, n int, opts ...func(*server.Config)) Members {
	t.Helper()
	dir := t.TempDir()
	ms := make(Members, n)
	var initial []string
	for i := range ms {
		cfg := server.DefaultConfig()
		cfg.Name = fmt.Sprint("m", i)
		cfg.DataDir = filepath.Join(dir, cfg.Name)
		client, peer := "http://"+FreeAddr(t), "http://"+FreeAddr(t) // opts may make them https
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = client, client
		cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs = peer, peer
		cfg.HeartbeatIntervalMs, cfg.ElectionTimeoutMs = 20, 200
		for _, o := range opts {
			o(&cfg)
		}
		initial = append(initial, cfg.Name+"="+cfg.InitialAdvertisePeerURLs)
		m := &Member{Cfg: cfg, t: t}
		t.Cleanup(m.Stop)
		ms[i] = m
	}
	for _, m := range ms {
		m.Cfg.InitialCluster = strings.Join(initial, ",")
	}
	return ms
}

// Start starts n members (see Configs) and waits until each is ready.
func Start(t testing.TB, n int, opts ...func(*server.Config)) Members {
	t.Helper()
	ms := Configs(t, n, opts...)
	ms.Start()
	return ms
}

// Start starts every member and waits until each is ready.
func (ms Members) Start() {
	for _, m := range ms {
		m.Start()
	}
	for _, m := range ms {
		m.WaitReady()
	}
}

// Start starts the member on its data dir (it must be stopped), logging
// warnings and worse to the test log. It does not wait for it to be ready.
func (m *Member) Start() {
	m.t.Helper()
	lg := zaptest.NewLogger(m.t, zaptest.Level(zap.WarnLevel)).Named(m.Cfg.Name)
	s, err := server.New(m.Cfg, lg, m.Opts...)
	require.NoError(m.t, err)
	m.Srv = s
}

// WaitReady waits until the member serves clients.
func (m *Member) WaitReady() {
	m.t.Helper()
	select {
	case <-m.Srv.Ready():
	case <-time.After(readyTimeout):
		m.t.Fatalf("member %s not ready after %v", m.Cfg.Name, readyTimeout)
	}
}

// Stop stops the member if it runs; it can be called more than once.
func (m *Member) Stop() {
	if m.Srv != nil {
		m.Srv.Stop()
	}
}

// Restart stops the member and starts it again on the same data dir, and
// waits until it is ready.
func (m *Member) Restart() {
	m.t.Helper()
	m.Stop()
	m.Start()
	m.WaitReady()
}

// Endpoints are the members' client addresses.
func (ms Members) Endpoints() []string {
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.Srv.ClientAddrs()...)
	}
	return eps
}

// Client returns a client of the given members, closed at cleanup.
func Client(t testing.TB, ms ...*Member) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: Members(ms).Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// RequireSameHashKV asserts that every member hashes the key space at rev
// to the same value.
func RequireSameHashKV(t testing.TB, ms Members, rev int64, msgAndArgs ...any) {
	t.Helper()
	RequireSameHashKVWith(t, ms, rev, Client(t, ms...), msgAndArgs...)
}

// RequireSameHashKVWith is RequireSameHashKV through client c (one with
// TLS or credentials).
func RequireSameHashKVWith(t testing.TB, ms Members, rev int64, c *clientv3.Client, msgAndArgs ...any) {
	t.Helper()
	var first uint32
	for i, m := range ms {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		h, err := c.HashKV(ctx, m.Srv.ClientAddrs()[0], rev)
		cancel()
		require.NoError(t, err)
		if i == 0 {
			first = h.Hash
		}
		require.Equal(t, first, h.Hash, msgAndArgs...)
	}
}
