package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metastore/metastore/consensus/internal/failpoint"
)

const (
	// pingInterval is how often a stream is pinged to measure RTT and
	// prove the stream alive.
	pingInterval = 250 * time.Millisecond
	// deadAfter is how long without a pong makes a stream dead, when
	// nothing sent before the ping is still being read.
	deadAfter = 2 * time.Second
	// drainFloor is the slowest rate at which a live receiver is assumed
	// to read batches: a ping waits behind the batches sent before it, so
	// each byte not yet answered for extends deadAfter at this rate (18
	// MiB of large entries read by a busy receiver is not a dead stream).
	drainFloor = 2 << 20 // bytes per second
)

var errStalled = errors.New("transport: peer stream stalled (no pong)")

// peer owns the outgoing streams to one member.
type peer struct {
	t     *Transport
	id    uint64
	addrs []string
	queue chan *raftpb.Message

	connected atomic.Bool
	// activeSince is when the current stream got its first pong (Unix
	// nanoseconds), 0 while there is none: etcd's ActiveSince.
	activeSince atomic.Int64
	rtt         atomic.Int64
	sent        atomic.Uint64
	dropped     atomic.Uint64
	sentBytes   atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	snapWG sync.WaitGroup
}

func newPeer(t *Transport, id uint64, addrs []string) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	return &peer{t: t, id: id, addrs: addrs, queue: make(chan *raftpb.Message, t.cfg.QueueSize), ctx: ctx, cancel: cancel}
}

func (p *peer) stop() {
	p.cancel()
	p.snapWG.Wait()
}

func (p *peer) lg() *zap.Logger {
	return p.t.lg.With(zap.String("remote-peer-id", toHex(p.id)))
}

// run keeps a stream open and drains the queue into it, reconnecting with
// exponential backoff.
func (p *peer) run() {
	defer p.t.wg.Done()
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if p.ctx.Err() != nil {
			return
		}
		addr := ""
		if len(p.addrs) > 0 {
			addr = p.addrs[attempt%len(p.addrs)]
		}
		start := time.Now()
		err := p.stream(addr)
		p.connected.Store(false)
		p.activeSince.Store(0)
		if p.ctx.Err() != nil {
			return
		}
		if isRemovedErr(err) {
			// The peer's member table says this member was removed.
			if r, ok := p.t.h().(RemovalReporter); ok {
				r.ReportRemoved(p.id)
			}
		}
		if time.Since(start) > 5*time.Second {
			backoff = 50 * time.Millisecond // it was up for a while
		}
		p.lg().Debug("peer stream ended", zap.String("address", addr), zap.Error(err))
		if h := p.t.h(); h != nil {
			h.ReportUnreachable(p.id)
		}
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

func (p *peer) stream(addr string) error {
	cc, err := grpc.NewClient(addr, p.t.dialOpts()...)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	cs, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, streamMethod)
	if err != nil {
		return err
	}
	if err := cs.SendMsg(wrapperspb.Bytes(hello(p.t.cfg.ClusterID, p.t.cfg.ID, p.id))); err != nil {
		return err
	}
	p.connected.Store(true)
	var lastPong, acked atomic.Int64 // acked: the sent-bytes of the last pong
	lastPong.Store(time.Now().UnixNano())
	var sent int64 // batch bytes sent on this stream (this goroutine only)
	pingFrame := func() []byte {
		f := binary.BigEndian.AppendUint64([]byte{framePing}, uint64(time.Now().UnixNano()))
		return binary.BigEndian.AppendUint64(f, uint64(sent))
	}
	recvErr := make(chan error, 1)
	go func() { // pongs
		for {
			in := &wrapperspb.BytesValue{}
			if err := cs.RecvMsg(in); err != nil {
				recvErr <- err
				return
			}
			if f := in.GetValue(); len(f) == 17 && f[0] == framePong {
				now := time.Now().UnixNano()
				rtt := now - int64(binary.BigEndian.Uint64(f[1:]))
				acked.Store(int64(binary.BigEndian.Uint64(f[9:])))
				p.rtt.Store(rtt)
				if obs := p.t.cfg.RTTObserver; obs != nil {
					obs(p.id, time.Duration(rtt))
				}
				lastPong.Store(now)
				p.activeSince.CompareAndSwap(0, now)
			}
		}
	}()
	// Ping at once: the first pong marks the link active (ActiveSince,
	// which membership checks read), so it should not wait a tick.
	if err := cs.SendMsg(wrapperspb.Bytes(pingFrame())); err != nil {
		return err
	}
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case <-p.ctx.Done():
			_ = cs.CloseSend()
			return nil
		case err := <-recvErr:
			return err
		case <-ping.C:
			// A stream whose pongs stopped is dead even if gRPC has not
			// noticed (a peer that restarted behind the same address):
			// tear it down and dial again.
			// A receiver still reading what was sent before the last
			// answered ping is busy, not dead: it gets time to drain.
			unread := time.Duration(sent-acked.Load()) * time.Second / drainFloor
			if time.Since(time.Unix(0, lastPong.Load())) > deadAfter+unread {
				return errStalled
			}
			if err := cs.SendMsg(wrapperspb.Bytes(pingFrame())); err != nil {
				return err
			}
		case m := <-p.queue:
			// Frames stay under maxBatchBytes (a message bigger than that
			// travels alone): what does not fit opens the next frame.
			for m != nil {
				batch := []*raftpb.Message{m}
				size := proto.Size(m)
				m = nil
			drain:
				for size < maxBatchBytes {
					select {
					case next := <-p.queue:
						if n := proto.Size(next); size+n > maxBatchBytes {
							m = next
							break drain
						} else {
							size += n
						}
						batch = append(batch, next)
					default:
						break drain
					}
				}
				f, err := encodeBatch(batch)
				if err != nil {
					return err
				}
				if err := cs.SendMsg(wrapperspb.Bytes(f)); err != nil {
					p.dropped.Add(uint64(len(batch)))
					return err
				}
				p.sent.Add(uint64(len(batch)))
				p.sentBytes.Add(uint64(len(f)))
				sent += int64(len(f))
			}
		}
	}
}

// sendSnapshot streams a MsgSnap in chunks on its own stream and reports
// the outcome to the node.
func (p *peer) sendSnapshot(m *raftpb.Message) {
	p.snapWG.Add(1)
	go func() {
		defer p.snapWG.Done()
		err := p.snapshot(m)
		if h := p.t.h(); h != nil {
			h.ReportSnapshot(p.id, err == nil)
			if err != nil {
				h.ReportUnreachable(p.id)
			}
		}
		if err != nil {
			p.lg().Warn("failed to send snapshot", zap.Error(err))
		}
	}()
}

func (p *peer) snapshot(m *raftpb.Message) (err error) {
	if len(p.addrs) == 0 {
		return context.Canceled
	}
	cc, err := grpc.NewClient(p.addrs[0], p.t.dialOpts()...)
	if err != nil {
		return err
	}
	defer cc.Close()
	cs, err := cc.NewStream(p.ctx, &grpc.StreamDesc{ClientStreams: true}, snapMethod)
	if err != nil {
		return err
	}
	defer func() {
		// A send fails with io.EOF when the receiver ended the stream:
		// its status says why (no space for the snapshot, say).
		if errors.Is(err, io.EOF) {
			if rerr := cs.RecvMsg(&wrapperspb.BytesValue{}); rerr != nil && !errors.Is(rerr, io.EOF) {
				err = rerr
			}
		}
	}()
	if err := cs.SendMsg(wrapperspb.Bytes(hello(p.t.cfg.ClusterID, p.t.cfg.ID, p.id))); err != nil {
		return err
	}
	h := p.t.h()
	if h == nil {
		return context.Canceled
	}
	md := m.GetSnapshot().GetMetadata()
	data, err := h.OpenSnapshot(md.GetTerm(), md.GetIndex())
	if err != nil {
		return err
	}
	defer data.Close()
	head := proto.Clone(m).(*raftpb.Message)
	head.Snapshot.Data = nil
	hb, err := proto.Marshal(head)
	if err != nil {
		return err
	}
	if err := cs.SendMsg(wrapperspb.Bytes(append([]byte{frameChunk}, hb...))); err != nil {
		return err
	}
	// Stream from disk: at most one chunk in memory.
	buf := make([]byte, chunkBytes)
	for {
		n, rerr := io.ReadFull(data, buf)
		if n > 0 {
			failpoint.Eval(fpSnapshotBeforeSendChunk)
			if err := cs.SendMsg(wrapperspb.Bytes(append([]byte{frameChunk}, buf[:n]...))); err != nil {
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	return cs.RecvMsg(&wrapperspb.BytesValue{})
}

// RemovalReporter is an optional Handler ability: told when a peer
// refuses this member because the cluster removed it
// (consensus.RemovalReporter).
type RemovalReporter interface {
	ReportRemoved(by uint64)
}

// removedMsg starts the refusal a removed member gets from its peers.
const removedMsg = "transport: the member has been permanently removed from the cluster"

func isRemovedErr(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.PermissionDenied && strings.HasPrefix(st.Message(), removedMsg)
}

func toHex(id uint64) string { return strconv.FormatUint(id, 16) }

func (p *peer) activeTime() time.Time {
	if ns := p.activeSince.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}
