package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Config describes an embedded etcd cluster.
type Config struct {
	// Members is the cluster size (default 1).
	Members int
	// Dir holds each member's data dir, Dir/<name>. A member whose data
	// dir already holds etcd data restarts on it (--initial-cluster-state
	// existing). Required.
	Dir string
	// Names are the members' names; the default is etcd's "default" for a
	// single member and e0, e1, … otherwise.
	Names []string
	// ClientTLS, when set, serves the client port with TLS (https URLs).
	ClientTLS *transport.TLSInfo
	// Configure, when set, adjusts each member's configuration last.
	Configure func(i int, cfg *embed.Config)
	// ReadyTimeout bounds the wait for every member to be ready (default
	// 60 s).
	ReadyTimeout time.Duration
	// Logger receives etcd's logs (default: none).
	Logger *zap.Logger
}

// Cluster is a running embedded etcd cluster.
type Cluster struct {
	// Members are the running members, in Config order.
	Members []*embed.Etcd
	// Endpoints are the members' client addresses (host:port).
	Endpoints []string
	// DataDirs are the members' data dirs.
	DataDirs []string
	once     sync.Once
}

// handedOut are the addresses FreeAddr returned in this process: a test
// picks several before it binds any, and must not get one twice.
var (
	handedOutMu sync.Mutex
	handedOut   = map[string]bool{}
)

// FreeAddr returns a loopback address that was free a moment ago and that
// it has not returned before in this process. Ports come from below
// Linux's ephemeral range (32768+), which outgoing connections draw from,
// so a dial cannot take one before it is bound.
func FreeAddr() (string, error) {
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if handedOut[addr] {
			continue
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			handedOut[addr] = true
			return addr, nil
		}
	}
	return "", errors.New("etcdtest: no free loopback port")
}

func (c *Config) names() []string {
	if len(c.Names) > 0 {
		return c.Names
	}
	n := max(c.Members, 1)
	if n == 1 {
		return []string{embed.DefaultName}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("e%d", i)
	}
	return names
}

// Start starts the cluster and waits until every member is ready. Close
// it when done.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("etcdtest: Config.Dir is required")
	}
	names := cfg.names()
	if cfg.Members > 0 && len(names) != cfg.Members {
		return nil, fmt.Errorf("etcdtest: %d names for %d members", len(names), cfg.Members)
	}
	cfgs, err := memberConfigs(cfg, names)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Members: make([]*embed.Etcd, len(cfgs))}
	for _, mc := range cfgs {
		c.Endpoints = append(c.Endpoints, mc.ListenClientUrls[0].Host)
		c.DataDirs = append(c.DataDirs, mc.Dir)
	}
	timeout := cfg.ReadyTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, mc := range cfgs {
		// Members start together: each waits for a quorum before ready.
		wg.Go(func() {
			e, err := embed.StartEtcd(mc)
			if err != nil {
				errs[i] = fmt.Errorf("etcd member %s: %w", mc.Name, err)
				return
			}
			c.Members[i] = e
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			select {
			case <-e.Server.ReadyNotify():
			case <-ctx.Done():
				errs[i] = fmt.Errorf("etcd member %s not ready after %v", mc.Name, timeout)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func memberConfigs(cfg Config, names []string) ([]*embed.Config, error) {
	scheme := "http"
	if cfg.ClientTLS != nil {
		scheme = "https"
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	var initial []string
	cfgs := make([]*embed.Config, len(names))
	for i, name := range names {
		ca, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		pa, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		mc := embed.NewConfig()
		mc.Name = name
		mc.Dir = filepath.Join(cfg.Dir, name)
		mc.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg.Named(name))
		cu, pu := url.URL{Scheme: scheme, Host: ca}, url.URL{Scheme: "http", Host: pa}
		mc.ListenClientUrls, mc.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		mc.ListenPeerUrls, mc.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		if cfg.ClientTLS != nil {
			mc.ClientTLSInfo = *cfg.ClientTLS
		}
		if _, err := os.Stat(filepath.Join(mc.Dir, "member")); err == nil {
			mc.ClusterState = embed.ClusterStateFlagExisting
		}
		initial = append(initial, name+"="+pu.String())
		cfgs[i] = mc
	}
	for i, mc := range cfgs {
		mc.InitialCluster = strings.Join(initial, ",")
		if cfg.Configure != nil {
			cfg.Configure(i, mc)
		}
	}
	return cfgs, nil
}

// Close stops every member; it can be called more than once.
func (c *Cluster) Close() {
	c.once.Do(func() {
		for _, e := range c.Members {
			if e != nil {
				e.Close()
			}
		}
	})
}

// StartT is Start for a test: the cluster's data dirs go under a
// t.TempDir() unless cfg.Dir is set, a failure fails the test, and the
// cluster is closed at cleanup.
func StartT(tb testing.TB, cfg Config) *Cluster {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	c, err := Start(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}
