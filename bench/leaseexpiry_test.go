package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/tools/etcdtest"
)

// Leases granted through the run expire, and WaitExpiry sees every one
// revoked and measures when.
func TestLeaseExpiry(t *testing.T) {
	c := etcdtest.StartT(t, etcdtest.Config{})
	ctx := context.Background()
	cfg := Config{Endpoints: c.Endpoints, Clients: 4, Total: 40, Timeout: 5 * time.Second}
	conns, err := Dial(ctx, cfg)
	require.NoError(t, err)
	defer closeAll(conns)
	sums, err := RunOn(ctx, conns, cfg, "lease-grant", LeaseGrant(2))
	require.NoError(t, err)
	require.Equal(t, 40, sums[0].Total)
	require.Empty(t, sums[0].ErrorCounts)
	due := time.Now().Add(2 * time.Second)
	e, err := WaitExpiry(ctx, conns[0], due, 100*time.Millisecond, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 40, e.Leases)
	require.Greater(t, e.RevokesPerSecond, 0.0)
	require.True(t, e.Drained.After(due.Add(-time.Second)), "not revoked before they expired")
	require.Zero(t, e.Timeline[len(e.Timeline)-1].Left)

	// Nothing left to expire: a list that never empties is reported.
	_, err = conns[0].Grant(ctx, 3600)
	require.NoError(t, err)
	_, err = WaitExpiry(ctx, conns[0], time.Now(), 50*time.Millisecond, 200*time.Millisecond)
	require.ErrorContains(t, err, "1 of 1 leases still alive")
}
