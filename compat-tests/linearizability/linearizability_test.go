package linearizability

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/compat-tests/internal/target"
)

var endpoints []string

func TestMain(m *testing.M) { target.Main(m, &endpoints) }

func TestHistoryIsLinearizable(t *testing.T) {
	eps := endpoints
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

// Against a server that does not answer, every write's outcome is unknown
// (it may take effect at any later time), failed reads are left out, and
// the history is still linearizable; a client that cannot be made fails
// the recording.
func TestRecordWithUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	l.Close()
	h, err := Record(t.Context(), Config{Clients: 2, Keys: 1, Duration: 300 * time.Millisecond, OpTimeout: 50 * time.Millisecond, Seed: 3},
		func() (*clientv3.Client, error) {
			return clientv3.New(clientv3.Config{Endpoints: []string{dead}, DialTimeout: 50 * time.Millisecond, Logger: zap.NewNop()})
		})
	require.NoError(t, err)
	require.NotEmpty(t, h)
	for _, op := range h {
		require.True(t, op.Output.(Output).Unknown, "%v", op.Input)
		require.NotEqual(t, Get, op.Input.(Input).Kind)
		require.EqualValues(t, math.MaxInt64, op.Return)
	}
	require.Equal(t, porcupine.Ok, Check(h, time.Second))

	_, err = Record(t.Context(), Config{Clients: 1}, func() (*clientv3.Client, error) { return nil, errors.New("no client") })
	require.ErrorContains(t, err, "no client")
}
