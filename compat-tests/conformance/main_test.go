package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var endpointsFlag = flag.String("endpoints", os.Getenv("ETCD_ENDPOINTS"),
	"comma-separated host:port of the server under test; empty starts an embedded etcd 3.7.3")

// endpoints are the client addresses of the server under test.
var endpoints []string

func TestMain(m *testing.M) {
	flag.Parse()
	if *endpointsFlag != "" {
		endpoints = strings.Split(*endpointsFlag, ",")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "compat-etcd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e, err := startEtcd(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded etcd:", err)
		os.Exit(1)
	}
	endpoints = []string{e.Clients[0].Addr().String()}
	code := m.Run()
	e.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startEtcd starts a single-member etcd 3.7.3 on loopback ports.
func startEtcd(dir string) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := &url.URL{Scheme: "http", Host: freeAddr()}, &url.URL{Scheme: "http", Host: freeAddr()}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, errors.New("etcd not ready")
	}
}

// newClient returns a client of the server under test, closed at cleanup.
func newClient(t testing.TB, eps ...string) *clientv3.Client {
	t.Helper()
	if len(eps) == 0 {
		eps = endpoints
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// ctx is a per-test context with a deadline.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// prefix returns a key prefix of the test's own, so tests can share a
// server that holds other data.
func prefix(t testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("compat/%s/%s/", t.Name(), hex.EncodeToString(b))
}

// skipIfUnimplemented turns an Unimplemented answer into a skip with the
// reason: features the target does not build are reported, never passed.
func skipIfUnimplemented(t testing.TB, err error) {
	t.Helper()
	if status.Code(err) == codes.Unimplemented || strings.Contains(fmt.Sprint(err), "Unimplemented") {
		t.Skipf("the target reports Unimplemented: %v", err)
	}
}
