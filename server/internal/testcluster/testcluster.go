package testcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
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
	// Logger, if set, gets the member's logs instead of the test log.
	Logger *zap.Logger
	t      testing.TB
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
	lg := m.Logger
	if lg == nil {
		lg = zaptest.NewLogger(m.t, zaptest.Level(zap.WarnLevel)).Named(m.Cfg.Name)
	}
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
// TLS or credentials). rev 0 means the first member's current revision;
// each member is waited for until it has applied rev.
func RequireSameHashKVWith(t testing.TB, ms Members, rev int64, c *clientv3.Client, msgAndArgs ...any) {
	t.Helper()
	var first uint32
	for i, m := range ms {
		ep := m.Srv.ClientAddrs()[0]
		var h *clientv3.HashKVResponse
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
			defer cancel()
			if rev == 0 {
				st, err := c.Status(ctx, ep)
				if err != nil {
					return false
				}
				rev = st.Header.Revision
			}
			var err error
			h, err = c.HashKV(ctx, ep, rev)
			return err == nil
		}, readyTimeout, 10*time.Millisecond, "HashKV of %s at revision %d", m.Cfg.Name, rev)
		if i == 0 {
			first = h.Hash
		}
		require.Equal(t, first, h.Hash, msgAndArgs...)
	}
}

// NewMember makes the configuration of a member named name that is to
// join the cluster of ms (fresh loopback ports and data dir,
// --initial-cluster-state existing; --initial-cluster comes from
// AddMember). Nothing is started; it is stopped at the end of the test.
func (ms Members) NewMember(t testing.TB, name string) *Member {
	t.Helper()
	cfg := ms[0].Cfg
	cfg.Name = name
	cfg.DataDir = filepath.Join(t.TempDir(), name)
	client, peer := "http://"+FreeAddr(t), "http://"+FreeAddr(t)
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = client, client
	cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs = peer, peer
	cfg.InitialClusterState = "existing"
	cfg.ForceNewCluster = false
	m := &Member{Cfg: cfg, Opts: ms[0].Opts, t: t}
	t.Cleanup(m.Stop)
	return m
}

// AddMember adds m to the cluster through c (MemberAdd, as a learner if
// asked) and sets m's --initial-cluster to what etcdctl member add prints
// from the answer. It returns the new member's ID.
func AddMember(ctx context.Context, c *clientv3.Client, m *Member, learner bool) (uint64, error) {
	add := c.MemberAdd
	if learner {
		add = c.MemberAddAsLearner
	}
	resp, err := add(ctx, []string{m.Cfg.InitialAdvertisePeerURLs})
	if err != nil {
		return 0, err
	}
	m.Cfg.InitialCluster = InitialCluster(resp.Members, resp.Member.ID, m.Cfg.Name)
	return resp.Member.ID, nil
}

// InitialCluster is the --initial-cluster etcdctl member add prints: every
// member's name=peerURL, the new member (id) named name.
func InitialCluster(members []*pb.Member, id uint64, name string) string {
	var parts []string
	for _, m := range members {
		n := m.Name
		if m.ID == id {
			n = name
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// WaitSameLeader waits until every member of ms knows the same leader,
// one of ms. A request forwarded while a member still follows a leader
// that just stopped is lost and waits out its deadline (as in etcd).
func (ms Members) WaitSameLeader(t testing.TB) {
	t.Helper()
	require.Eventually(t, func() bool {
		lead := ms[0].Srv.RaftStatus().Lead
		in := false
		for _, m := range ms {
			if m.Srv.RaftStatus().Lead != lead {
				return false
			}
			in = in || m.Srv.ID() == lead
		}
		return lead != 0 && in
	}, readyTimeout, 10*time.Millisecond, "the members agree on a leader")
}
