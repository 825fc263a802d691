// Package target finds the server a compat-tests package runs against:
// the -endpoints flag or ETCD_ENDPOINTS, or else an embedded etcd 3.7.3
// started for the run (the reference every test must pass against).
package target

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

var endpointsFlag = flag.String("endpoints", os.Getenv("ETCD_ENDPOINTS"),
	"comma-separated host:port of the server under test; empty starts an embedded etcd 3.7.3")

// Endpoints returns the client addresses to test and a function that
// stops what it started. Call it after flag.Parse.
func Endpoints() ([]string, func(), error) {
	if *endpointsFlag != "" {
		return strings.Split(*endpointsFlag, ","), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "compat-etcd")
	if err != nil {
		return nil, nil, err
	}
	e, err := startEtcd(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return []string{e.Clients[0].Addr().String()}, func() { e.Close(); os.RemoveAll(dir) }, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startEtcd starts a single-member etcd 3.7.3 on loopback ports.
func startEtcd(dir string) (*embed.Etcd, error) {
	ca, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pa, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := url.URL{Scheme: "http", Host: ca}, url.URL{Scheme: "http", Host: pa}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
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

// Main is a test package's TestMain: it parses the flags, sets *eps to the
// endpoints under test (starting an embedded etcd if none were given),
// runs the tests, stops what it started and exits.
func Main(m *testing.M, eps *[]string) {
	flag.Parse()
	got, stop, err := Endpoints()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat-tests:", err)
		os.Exit(1)
	}
	*eps = got
	code := m.Run()
	stop()
	os.Exit(code)
}
