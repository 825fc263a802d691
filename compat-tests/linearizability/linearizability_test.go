package linearizability

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

var endpointsFlag = flag.String("endpoints", os.Getenv("ETCD_ENDPOINTS"),
	"comma-separated host:port of the server under test; empty starts an embedded etcd 3.7.3")

func endpoints(t *testing.T) []string {
	if *endpointsFlag != "" {
		return strings.Split(*endpointsFlag, ",")
	}
	addr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		return l.Addr().String()
	}
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := &url.URL{Scheme: "http", Host: addr()}, &url.URL{Scheme: "http", Host: addr()}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	<-e.Server.ReadyNotify()
	return []string{client.Host}
}

func TestHistoryIsLinearizable(t *testing.T) {
	eps := endpoints(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	cfg := Config{Clients: 6, Keys: 3, Duration: 2 * time.Second, Prefix: fmt.Sprintf("lin/%s/", hex.EncodeToString(b)), Seed: 7}
	h, err := Record(context.Background(), cfg, func() (*clientv3.Client, error) {
		return clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	})
	require.NoError(t, err)
	require.Greater(t, len(h), 100, "enough operations to mean something")
	res := Check(h, time.Minute)
	require.Equal(t, porcupine.Ok, res, "%d operations", len(h))
	t.Logf("%d operations, linearizable", len(h))
}

// The checker does reject a stale read: a get that returns the old value
// after a put completed.
func TestCheckerRejectsStaleRead(t *testing.T) {
	h := []porcupine.Operation{
		{ClientId: 0, Input: Input{Kind: Put, Key: "k", Value: "1"}, Call: 0, Output: Output{}, Return: 10},
		{ClientId: 1, Input: Input{Kind: Put, Key: "k", Value: "2"}, Call: 20, Output: Output{}, Return: 30},
		{ClientId: 2, Input: Input{Kind: Get, Key: "k"}, Call: 40, Output: Output{Value: "1", Found: true}, Return: 50},
	}
	require.Equal(t, porcupine.Illegal, Check(h, time.Second))
	h[2].Output = Output{Value: "2", Found: true}
	require.Equal(t, porcupine.Ok, Check(h, time.Second))
	// An unknown write may have happened or not.
	h = append(h, porcupine.Operation{ClientId: 3, Input: Input{Kind: Put, Key: "k", Value: "3"}, Call: 60, Output: Output{Unknown: true}, Return: 1 << 62})
	h = append(h, porcupine.Operation{ClientId: 2, Input: Input{Kind: Get, Key: "k"}, Call: 70, Output: Output{Value: "2", Found: true}, Return: 80})
	require.Equal(t, porcupine.Ok, Check(h, time.Second))
}
