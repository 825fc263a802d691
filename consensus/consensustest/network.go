package consensustest

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Stepper receives messages and moves snapshots; *consensus.Node
// implements it.
type Stepper interface {
	Step(ctx context.Context, m *raftpb.Message) error
	OpenSnapshot(term, index uint64) (io.ReadCloser, error)
	ReceiveSnapshot(ctx context.Context, m *raftpb.Message, r io.Reader) error
	ReportSnapshot(id uint64, ok bool)
}

// Network delivers Raft messages between registered nodes in memory. Links
// can be cut per direction; a node can be isolated. Delivery is
// asynchronous (one inbox goroutine per node), as on a real network.
type Network struct {
	mu      sync.Mutex
	inboxes map[uint64]*inbox
	cut     map[[2]uint64]bool          // from, to
	delay   map[[2]uint64]time.Duration // from, to
	drop    map[[2]uint64]float64       // from, to: probability
	rng     *rand.Rand
	stopped bool
	wg      sync.WaitGroup
}

type inbox struct {
	ch   chan *raftpb.Message
	node Stepper
	stop chan struct{}
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{
		inboxes: map[uint64]*inbox{}, cut: map[[2]uint64]bool{},
		delay: map[[2]uint64]time.Duration{}, drop: map[[2]uint64]float64{},
		rng: rand.New(rand.NewPCG(1, 1)),
	}
}

// Register attaches node as the receiver for id, replacing an earlier one.
func (nw *Network) Register(id uint64, node Stepper) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if old := nw.inboxes[id]; old != nil {
		close(old.stop)
	}
	in := &inbox{ch: make(chan *raftpb.Message, 8192), node: node, stop: make(chan struct{})}
	nw.inboxes[id] = in
	nw.wg.Add(1)
	go func() {
		defer nw.wg.Done()
		for {
			select {
			case <-in.stop:
				return
			case m := <-in.ch:
				_ = in.node.Step(context.Background(), m)
			}
		}
	}()
}

// Unregister detaches id: messages to it are dropped.
func (nw *Network) Unregister(id uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if in := nw.inboxes[id]; in != nil {
		close(in.stop)
		delete(nw.inboxes, id)
	}
}

// Transport returns the transport node id sends through.
func (nw *Network) Transport(id uint64) *Transport { return &Transport{nw: nw, from: id} }

// Cut drops every message from one node to another (one direction).
func (nw *Network) Cut(from, to uint64) {
	nw.mu.Lock()
	nw.cut[[2]uint64{from, to}] = true
	nw.mu.Unlock()
}

// Isolate cuts every link to and from id.
func (nw *Network) Isolate(id uint64, others ...uint64) {
	for _, o := range others {
		if o != id {
			nw.Cut(id, o)
			nw.Cut(o, id)
		}
	}
}

// Delay holds every message from one node to another for d (one
// direction); 0 removes the delay.
func (nw *Network) Delay(from, to uint64, d time.Duration) {
	nw.mu.Lock()
	nw.delay[[2]uint64{from, to}] = d
	nw.mu.Unlock()
}

// Drop loses each message from one node to another with probability p,
// from a seeded source.
func (nw *Network) Drop(from, to uint64, p float64) {
	nw.mu.Lock()
	nw.drop[[2]uint64{from, to}] = p
	nw.mu.Unlock()
}

// Heal restores every link: no cuts, delays or drops.
func (nw *Network) Heal() {
	nw.mu.Lock()
	nw.cut = map[[2]uint64]bool{}
	nw.delay = map[[2]uint64]time.Duration{}
	nw.drop = map[[2]uint64]float64{}
	nw.mu.Unlock()
}

// Close stops every inbox.
func (nw *Network) Close() {
	nw.mu.Lock()
	for id, in := range nw.inboxes {
		close(in.stop)
		delete(nw.inboxes, id)
	}
	nw.stopped = true
	nw.mu.Unlock()
	nw.wg.Wait()
}

func (nw *Network) send(from uint64, msgs []*raftpb.Message) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for _, m := range msgs {
		to := m.GetTo()
		link := [2]uint64{from, to}
		in := nw.inboxes[to]
		if in == nil || nw.cut[link] {
			continue
		}
		if p := nw.drop[link]; p > 0 && nw.rng.Float64() < p {
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			if src := nw.inboxes[from]; src != nil {
				go transferSnapshot(src.node, in.node, m)
			}
			continue
		}
		if d := nw.delay[link]; d > 0 {
			time.AfterFunc(d, func() { deliver(in, m) })
			continue
		}
		deliver(in, m)
	}
}

// transferSnapshot streams a snapshot's data from one node to another,
// as a real transport does, and reports the outcome to the sender.
func transferSnapshot(from, to Stepper, m *raftpb.Message) {
	md := m.GetSnapshot().GetMetadata()
	r, err := from.OpenSnapshot(md.GetTerm(), md.GetIndex())
	if err == nil {
		err = to.ReceiveSnapshot(context.Background(), m, r)
		r.Close()
	}
	from.ReportSnapshot(m.GetTo(), err == nil)
}

func deliver(in *inbox, m *raftpb.Message) {
	select {
	case in.ch <- m:
	case <-in.stop:
	default: // inbox full: dropped, Raft retries
	}
}

// Transport is one node's view of the Network; it implements
// consensus.Transport.
type Transport struct {
	nw   *Network
	from uint64
}

// Send delivers msgs asynchronously.
func (t *Transport) Send(msgs []*raftpb.Message) { t.nw.send(t.from, msgs) }

// ReportsSnapshots implements consensus.SnapshotReporter: snapshot
// transfers report their own outcome.
func (t *Transport) ReportsSnapshots() bool { return true }
