package transport_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metastore/metastore/consensus/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink records what a transport delivers.
type sink struct {
	mu          sync.Mutex
	msgs        []*raftpb.Message
	snaps       map[uint64]bool
	unreachable int
	snapData    []byte // what OpenSnapshot serves
}

func (s *sink) OpenSnapshot(term, index uint64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(s.snapData)), nil
}

// ReceiveSnapshot records the message with the streamed data attached.
func (s *sink) ReceiveSnapshot(_ context.Context, m *raftpb.Message, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.Snapshot.Data = data
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	return nil
}

func (s *sink) Step(_ context.Context, m *raftpb.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	return nil
}
func (s *sink) ReportUnreachable(uint64) { s.mu.Lock(); s.unreachable++; s.mu.Unlock() }
func (s *sink) ReportSnapshot(id uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snaps == nil {
		s.snaps = map[uint64]bool{}
	}
	s.snaps[id] = ok
}
func (s *sink) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.msgs) }

// serve starts a transport for member id of cluster on a loopback port.
func serve(t *testing.T, id, cluster uint64) (*transport.Transport, *sink, string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tr := transport.New(transport.Config{ID: id, ClusterID: cluster, Logger: zaptest.NewLogger(t)})
	s := &sink{}
	tr.SetHandler(s)
	srv := grpc.NewServer(transport.ServerOptions()...)
	tr.Register(srv)
	go srv.Serve(lis)
	t.Cleanup(func() { tr.Close(); srv.Stop() })
	return tr, s, lis.Addr().String()
}

func msg(from, to uint64, typ raftpb.MessageType) *raftpb.Message {
	return &raftpb.Message{From: proto.Uint64(from), To: proto.Uint64(to), Type: typ.Enum(), Term: proto.Uint64(1)}
}

func TestDeliversBatchesAndSnapshots(t *testing.T) {
	a, aSink, aAddr := serve(t, 1, 7)
	b, bSink, bAddr := serve(t, 2, 7)
	a.AddPeer(2, []byte("http://"+bAddr))
	b.AddPeer(1, []byte("http://"+aAddr))
	var batch []*raftpb.Message
	for range 500 {
		batch = append(batch, msg(1, 2, raftpb.MsgApp))
	}
	a.Send(batch)
	require.Eventually(t, func() bool { return bSink.count() == 500 }, 10*time.Second, 5*time.Millisecond)

	data := make([]byte, 3<<20+17) // several chunks
	for i := range data {
		data[i] = byte(i)
	}
	aSink.snapData = data // streamed from the sender's "disk"
	snap := msg(1, 2, raftpb.MsgSnap)
	snap.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(9), Term: proto.Uint64(1)}}
	a.Send([]*raftpb.Message{snap})
	require.Eventually(t, func() bool { return bSink.count() == 501 }, 10*time.Second, 5*time.Millisecond)
	bSink.mu.Lock()
	got := bSink.msgs[500]
	bSink.mu.Unlock()
	require.Equal(t, data, got.GetSnapshot().GetData(), "snapshot reassembled from chunks")
	require.EqualValues(t, 9, got.GetSnapshot().GetMetadata().GetIndex())
	require.Eventually(t, func() bool { aSink.mu.Lock(); defer aSink.mu.Unlock(); return aSink.snaps[2] }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return a.Stats()[2].RTT > 0 }, 5*time.Second, 10*time.Millisecond, "round trip measured")
	require.Positive(t, a.Stats()[2].SentBytes, "batch bytes sent counted")
	require.Equal(t, a.Stats()[2].SentBytes, b.Stats()[1].ReceivedBytes, "what one sent, the other received")
}

func TestRejectsOtherClusterAndRemovedMembers(t *testing.T) {
	a, aSink, _ := serve(t, 1, 7)
	_, bSink, bAddr := serve(t, 2, 8) // another cluster
	a.AddPeer(2, []byte(bAddr))
	a.Send([]*raftpb.Message{msg(1, 2, raftpb.MsgHeartbeat)})
	require.Eventually(t, func() bool { aSink.mu.Lock(); defer aSink.mu.Unlock(); return aSink.unreachable > 0 }, 5*time.Second, 5*time.Millisecond)
	require.Zero(t, bSink.count(), "a member of another cluster is refused")

	c, _, _ := serve(t, 3, 7)
	d, dSink, dAddr := serve(t, 4, 7)
	c.AddPeer(4, []byte(dAddr))
	d.RemovePeer(3) // 4 learns that 3 was removed
	c.Send([]*raftpb.Message{msg(3, 4, raftpb.MsgHeartbeat)})
	require.Never(t, func() bool { return dSink.count() > 0 }, 300*time.Millisecond, 20*time.Millisecond, "messages from a removed member are ignored")
}

func TestUpdatePeerRedials(t *testing.T) {
	a, _, _ := serve(t, 1, 7)
	_, bSink, bAddr := serve(t, 2, 7)
	a.AddPeer(2, []byte("127.0.0.1:1")) // wrong address first
	a.Send([]*raftpb.Message{msg(1, 2, raftpb.MsgHeartbeat)})
	require.Never(t, func() bool { return bSink.count() > 0 }, 200*time.Millisecond, 20*time.Millisecond)
	a.UpdatePeer(2, []byte(bAddr))
	require.Eventually(t, func() bool {
		a.Send([]*raftpb.Message{msg(1, 2, raftpb.MsgHeartbeat)})
		return bSink.count() > 0
	}, 10*time.Second, 50*time.Millisecond, "messages flow to the new address")
}

// removalSink is a sink that records who said it was removed.
type removalSink struct {
	sink
	by chan uint64
}

func (s *removalSink) ReportRemoved(by uint64) {
	select {
	case s.by <- by:
	default:
	}
}

// TestRemovedMemberIsTold: a member the cluster removed is refused by its
// peers on its first frame, and its transport reports it; links that are
// up have an ActiveSince, links that are not do not.
func TestRemovedMemberIsTold(t *testing.T) {
	t1, _, addr1 := serve(t, 1, 7)
	t1.AddRemoved(2)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	lis.Close()
	t2 := transport.New(transport.Config{ID: 2, ClusterID: 7, Logger: zaptest.NewLogger(t)})
	s2 := &removalSink{by: make(chan uint64, 1)}
	t2.SetHandler(s2)
	t.Cleanup(t2.Close)
	require.True(t, t2.ActiveSince(1).IsZero(), "not a peer yet")
	t2.AddPeer(1, []byte(addr1))
	select {
	case by := <-s2.by:
		require.Equal(t, uint64(1), by)
	case <-time.After(10 * time.Second):
		t.Fatal("the removed member was not told")
	}

	// A member that was not removed gets an active link.
	t3 := transport.New(transport.Config{ID: 3, ClusterID: 7, Logger: zaptest.NewLogger(t)})
	t3.SetHandler(&sink{})
	t.Cleanup(t3.Close)
	t3.AddPeer(1, []byte(addr1))
	t3.AddPeer(4, []byte(lis.Addr().String())) // nobody listens there
	require.Eventually(t, func() bool { return !t3.ActiveSince(1).IsZero() }, 10*time.Second, 5*time.Millisecond)
	require.True(t, t3.ActiveSince(4).IsZero())
	require.False(t, t3.Stats()[1].ActiveSince.IsZero())
}

// TestLargeMessages: messages that together exceed a frame are split over
// frames, and one message bigger than a frame (a large entry) goes alone;
// the stream survives both (it used to be cut at gRPC's 4 MiB limit, and
// the peer then looked unreachable).
func TestLargeMessages(t *testing.T) {
	a, aSink, _ := serve(t, 1, 7)
	_, bSink, bAddr := serve(t, 2, 7)
	a.AddPeer(2, []byte(bAddr))
	entry := func(n int) *raftpb.Message {
		m := msg(1, 2, raftpb.MsgApp)
		m.Entries = []*raftpb.Entry{{Index: proto.Uint64(1), Term: proto.Uint64(1), Data: make([]byte, n)}}
		return m
	}
	var batch []*raftpb.Message
	for range 12 {
		batch = append(batch, entry(1<<20)) // 12 MiB in all
	}
	batch = append(batch, entry(6<<20)) // bigger than a frame
	a.Send(batch)
	require.Eventually(t, func() bool { return bSink.count() == len(batch) }, 20*time.Second, 5*time.Millisecond)
	aSink.mu.Lock()
	defer aSink.mu.Unlock()
	require.Zero(t, aSink.unreachable, "the stream was never cut")
}

// TestSilentPeerIsCut: a stream whose receiver takes frames but never
// answers pings (a peer that restarted behind the same address, a hung
// process) is cut and the peer reported unreachable, while a receiver
// busy reading large batches is not (TestLargeMessages).
func TestSilentPeerIsCut(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		for {
			if err := ss.RecvMsg(&wrapperspb.BytesValue{}); err != nil {
				return err
			}
		}
	}))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	a, aSink, _ := serve(t, 1, 7)
	start := time.Now()
	a.AddPeer(2, []byte(lis.Addr().String()))
	require.Eventually(t, func() bool {
		aSink.mu.Lock()
		defer aSink.mu.Unlock()
		return aSink.unreachable > 0
	}, 15*time.Second, 10*time.Millisecond, "a stream without pongs is never cut")
	require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "cut before its pongs were due")
	require.True(t, a.ActiveSince(2).IsZero(), "a link that never answered is not active")
}

// leaderless is a member that knows no leader yet: Raft holds a forwarded
// proposal until it does (here, until release is closed).
type leaderless struct {
	sink
	release chan struct{}
}

func (l *leaderless) Step(ctx context.Context, m *raftpb.Message) error {
	if m.GetType() == raftpb.MsgProp {
		select {
		case <-l.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return l.sink.Step(ctx, m)
}

// A forwarded proposal waiting for a leader holds up nothing behind it on
// the stream: the heartbeat after it is delivered at once (before the
// fix, a restarted ex-leader got the proposals queued for it first and
// heard from the new leader only once the stream was cut as stalled).
func TestProposalWaitingForALeaderDoesNotBlockTheStream(t *testing.T) {
	a, _, _ := serve(t, 1, 7)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := transport.New(transport.Config{ID: 2, ClusterID: 7, Logger: zaptest.NewLogger(t)})
	h := &leaderless{release: make(chan struct{})}
	b.SetHandler(h)
	srv := grpc.NewServer(transport.ServerOptions()...)
	b.Register(srv)
	go srv.Serve(lis)
	t.Cleanup(func() { b.Close(); srv.Stop() })
	a.AddPeer(2, []byte(lis.Addr().String()))

	prop := msg(1, 2, raftpb.MsgProp)
	prop.Entries = []*raftpb.Entry{{Data: []byte("x")}}
	a.Send([]*raftpb.Message{prop, msg(1, 2, raftpb.MsgHeartbeat)})
	require.Eventually(t, func() bool { return h.count() == 1 }, 5*time.Second, 5*time.Millisecond, "the heartbeat behind the waiting proposal")
	h.mu.Lock()
	require.Equal(t, raftpb.MsgHeartbeat, h.msgs[0].GetType())
	h.mu.Unlock()
	close(h.release)
	require.Eventually(t, func() bool { return h.count() == 2 }, 5*time.Second, 5*time.Millisecond, "the proposal once a leader is known")
}
