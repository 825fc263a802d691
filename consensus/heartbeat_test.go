package consensus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHeartbeatWatch: a heartbeat more than two intervals after the
// previous one to the same peer is late, by the excess; the first to a
// peer, on-time ones, manual ticks and heartbeats after a reset are not.
func TestHeartbeatWatch(t *testing.T) {
	h := newHeartbeatWatch(Config{TickInterval: 100 * time.Millisecond, HeartbeatTicks: 1})
	t0 := time.Unix(1000, 0)
	require.Zero(t, h.observe(2, t0), "first heartbeat to a peer")
	require.Zero(t, h.observe(2, t0.Add(200*time.Millisecond)), "exactly two intervals")
	require.Equal(t, 50*time.Millisecond, h.observe(2, t0.Add(450*time.Millisecond)))
	require.Zero(t, h.observe(3, t0.Add(450*time.Millisecond)), "another peer has its own clock")
	h.reset()
	require.Zero(t, h.observe(2, t0.Add(time.Hour)), "a new leader's first heartbeat")

	manual := newHeartbeatWatch(Config{TickInterval: -1, HeartbeatTicks: 1})
	manual.observe(2, t0)
	require.Zero(t, manual.observe(2, t0.Add(time.Hour)), "manual ticks: no wall clock to judge by")
}
