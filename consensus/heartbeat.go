package consensus

import (
	"time"

	"go.uber.org/zap"
)

// heartbeatWatch notices a leader that sends its heartbeats late, as
// etcd's TimeoutDetector does: a heartbeat to a peer more than two
// heartbeat intervals after the previous one means the leader was too
// busy (most often waiting on a slow disk) and followers may start an
// election. It is used only from the Ready loop.
type heartbeatWatch struct {
	interval time.Duration // 0: not watched (manual ticks)
	last     map[uint64]time.Time
}

func newHeartbeatWatch(cfg Config) heartbeatWatch {
	var d time.Duration
	if cfg.TickInterval > 0 {
		d = cfg.TickInterval * time.Duration(cfg.HeartbeatTicks)
	}
	return heartbeatWatch{interval: d, last: map[uint64]time.Time{}}
}

// observe records a heartbeat sent to peer at now and returns by how
// much it exceeded two intervals since the previous one (0 if on time).
func (h *heartbeatWatch) observe(peer uint64, now time.Time) time.Duration {
	if h.interval == 0 {
		return 0
	}
	prev, ok := h.last[peer]
	h.last[peer] = now
	if !ok {
		return 0
	}
	if late := now.Sub(prev) - 2*h.interval; late > 0 {
		return late
	}
	return 0
}

// reset forgets every peer's last heartbeat: a new term's first
// heartbeats are not late.
func (h *heartbeatWatch) reset() { clear(h.last) }

// heartbeatSent is called for each heartbeat message the leader sends.
func (n *Node[R]) heartbeatSent(to uint64, now time.Time) {
	if late := n.hb.observe(to, now); late > 0 {
		n.heartbeatsLate.Add(1)
		n.lg.Warn("leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk",
			zap.String("to", toHex(to)), zap.Duration("heartbeat-interval", n.hb.interval),
			zap.Duration("expected-duration", 2*n.hb.interval), zap.Duration("exceeded-duration", late))
	}
}
