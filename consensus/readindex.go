package consensus

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
)

// readBatch is one ReadIndex round shared by every reader that joined it.
type readBatch struct {
	done  chan struct{}
	index uint64
	err   error
}

// readBatcher batches concurrent ReadIndex callers: while one round is in
// flight, new readers queue for the next, so many reads cost one heartbeat
// round.
type readBatcher struct {
	mu      sync.Mutex
	next    *readBatch // readers waiting for the next round
	kick    chan struct{}
	states  chan raft.ReadState
	leaderc chan struct{}
	seq     uint64
	rounds  atomic.Uint64
}

func (b *readBatcher) init() {
	b.kick = make(chan struct{}, 1)
	b.states = make(chan raft.ReadState, 64)
	b.leaderc = make(chan struct{}, 1)
}

func (b *readBatcher) join() *readBatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == nil {
		b.next = &readBatch{done: make(chan struct{})}
	}
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return b.next
}

func (b *readBatcher) take() *readBatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	rb := b.next
	b.next = nil
	return rb
}

func (b *readBatcher) deliver(states []raft.ReadState) {
	for _, s := range states {
		select {
		case b.states <- s:
		default: // nobody waits for it any more
		}
	}
}

func (b *readBatcher) leaderChanged() {
	select {
	case b.leaderc <- struct{}{}:
	default:
	}
}

// ReadIndex returns an index such that every write acknowledged before the
// call is at or below it, once the entry at that index is applied here —
// which ReadIndex waits for. Concurrent callers share one Raft round.
func (n *Node[R]) ReadIndex(ctx context.Context) (uint64, error) {
	if n.removed.Load() {
		return 0, ErrRemoved
	}
	rb := n.read.join()
	select {
	case <-rb.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.stopc:
		return 0, ErrStopped
	}
	if rb.err != nil {
		return 0, rb.err
	}
	idx := rb.index
	if n.lead.Load() == n.id {
		// Raft's rule that a leader serves reads only once an entry of
		// its term is committed, which raft skips for a single member.
		idx = max(idx, n.leadStart.Load())
	}
	if err := n.WaitApplied(ctx, idx); err != nil {
		return 0, err
	}
	return idx, nil
}

// readLoop runs one ReadIndex round at a time for the waiting batch.
func (n *Node[R]) readLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stopc:
			return
		case <-n.read.kick:
		}
		rb := n.read.take()
		if rb == nil {
			continue
		}
		rb.index, rb.err = n.readRound()
		close(rb.done)
	}
}

func (n *Node[R]) readRound() (uint64, error) {
	if n.lead.Load() == raft.None {
		return 0, ErrNoLeader
	}
	n.read.seq++
	n.read.rounds.Add(1)
	rctx := binary.BigEndian.AppendUint64(nil, n.read.seq)
	// Drain a stale leader-change signal: only changes during this round
	// matter.
	select {
	case <-n.read.leaderc:
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ReadIndexTimeout)
	defer cancel()
	if err := n.rn.ReadIndex(ctx, rctx); err != nil {
		return 0, n.mapErr(ctx, err, 0, 0)
	}
	retry := time.NewTicker(n.cfg.ReadIndexTimeout / 10)
	defer retry.Stop()
	for {
		select {
		case s := <-n.read.states:
			if string(s.RequestCtx) == string(rctx) {
				return s.Index, nil
			}
		case <-n.read.leaderc:
			return 0, ErrLeaderChanged
		case <-retry.C:
			// The request may have been dropped (e.g. sent before the new
			// leader committed in its term): ask again.
			if err := n.rn.ReadIndex(ctx, rctx); err != nil {
				return 0, n.mapErr(ctx, err, 0, 0)
			}
		case <-ctx.Done():
			return 0, ErrTimeout
		case <-n.stopc:
			return 0, ErrStopped
		}
	}
}
