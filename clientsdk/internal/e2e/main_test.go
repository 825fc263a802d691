package e2e

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	v3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

var endpointsFlag = flag.String("endpoints", os.Getenv("ETCD_ENDPOINTS"), "comma-separated endpoints to test against instead of an embedded etcd")

var endpoints []string

func TestMain(m *testing.M) {
	flag.Parse()
	if *endpointsFlag != "" {
		endpoints = strings.Split(*endpointsFlag, ",")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "clientsdk-etcd")
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

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startEtcd starts a single-member etcd on loopback ports.
func startEtcd(dir string) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := &url.URL{Scheme: "http", Host: freePort()}, &url.URL{Scheme: "http", Host: freePort()}
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
		return nil, fmt.Errorf("etcd not ready")
	}
}

// newClient returns a client of the endpoint under test.
func newClient(t testing.TB) *v3.Client {
	t.Helper()
	c, err := v3.New(v3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// prefix returns a key prefix unique to this test, so the suite can run
// against a shared, non-empty endpoint.
func prefix(t testing.TB) string {
	return fmt.Sprintf("/clientsdk-test/%s/%d", t.Name(), time.Now().UnixNano())
}
