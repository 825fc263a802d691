package transport

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metastore/metastore/consensus/internal/failpoint"
)

const (
	frameHello byte = 0
	frameBatch byte = 1
	framePing  byte = 2
	framePong  byte = 3
	frameChunk byte = 4

	serviceName  = "metastore.raft.Peer"
	streamMethod = "/" + serviceName + "/Stream"
	snapMethod   = "/" + serviceName + "/Snapshot"

	// DefaultQueueSize bounds the messages waiting for one peer.
	DefaultQueueSize = 4096
	// maxBatchBytes bounds a frame of several messages; a single message
	// may be bigger (one large entry) and travels alone.
	maxBatchBytes = 4 << 20
	// MaxRecvMsgBytes is the largest frame a peer server must accept
	// (ServerOptions): a single Raft message with one entry of up to
	// etcd's largest --max-request-bytes.
	MaxRecvMsgBytes = 1 << 30
	chunkBytes      = 1 << 20
	// proposalQueue bounds the forwarded proposals of one stream waiting
	// for this member to know a leader.
	proposalQueue = 1024
)

// ErrClusterIDMismatch is returned to a peer of another cluster.
var ErrClusterIDMismatch = errors.New("transport: cluster ID mismatch")

// Handler receives what peers send and provides snapshot data to send;
// *consensus.Node implements it.
type Handler interface {
	Step(ctx context.Context, m *raftpb.Message) error
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, ok bool)
	OpenSnapshot(term, index uint64) (io.ReadCloser, error)
	ReceiveSnapshot(ctx context.Context, m *raftpb.Message, r io.Reader) error
}

// Config configures a Transport.
type Config struct {
	// ID is this member's Raft ID.
	ID uint64
	// ClusterID must match on both ends of every stream.
	ClusterID uint64
	// PeerAddrs turns a member's context into gRPC dial targets. The
	// default reads a JSON {"name", "peerURLs"} context (what
	// consensus.MemberContext encodes) or a comma-separated list of URLs
	// or host:port.
	PeerAddrs func(id uint64, context []byte) []string
	// Creds secures outgoing connections; nil means plaintext.
	Creds credentials.TransportCredentials
	// QueueSize bounds each peer's outgoing queue. Default 4096.
	QueueSize int
	// Logger; nil means none.
	Logger *zap.Logger
	// RTTObserver, if set, is called with every measured round trip to a
	// peer (etcd's etcd_network_peer_round_trip_time_seconds).
	RTTObserver func(peer uint64, rtt time.Duration)
}

// Transport implements consensus.Transport, PeerManager and
// SnapshotReporter over gRPC.
type Transport struct {
	cfg Config
	lg  *zap.Logger

	handler atomic.Pointer[handlerBox]

	mu      sync.Mutex
	peers   map[uint64]*peer
	removed map[uint64]bool
	// recvBytes counts the bytes of raft messages received, by sender.
	recvBytes map[uint64]*atomic.Uint64
	closed    bool
	wg        sync.WaitGroup
}

type handlerBox struct{ h Handler }

// New returns a transport; register it on a gRPC server with Register and
// give it the node with SetHandler.
func New(cfg Config) *Transport {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.PeerAddrs == nil {
		cfg.PeerAddrs = defaultPeerAddrs
	}
	return &Transport{cfg: cfg, lg: cfg.Logger, peers: map[uint64]*peer{}, removed: map[uint64]bool{}}
}

func defaultPeerAddrs(_ uint64, c []byte) []string {
	var urls []string
	if len(c) > 0 && c[0] == '{' {
		var m struct {
			PeerURLs []string `json:"peerURLs"`
		}
		if json.Unmarshal(c, &m) == nil {
			urls = m.PeerURLs
		}
	} else {
		urls = strings.Split(string(c), ",")
	}
	var out []string
	for _, u := range urls {
		u = strings.TrimSpace(u)
		u = strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
		if u != "" {
			out = append(out, u)
		}
	}
	return out
}

// SetHandler sets the receiver of incoming messages.
func (t *Transport) SetHandler(h Handler) { t.handler.Store(&handlerBox{h}) }

func (t *Transport) h() Handler {
	if b := t.handler.Load(); b != nil {
		return b.h
	}
	return nil
}

// ReportsSnapshots implements consensus.SnapshotReporter.
func (t *Transport) ReportsSnapshots() bool { return true }

// AddPeer implements consensus.PeerManager.
func (t *Transport) AddPeer(id uint64, context []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || id == t.cfg.ID || t.peers[id] != nil {
		return
	}
	delete(t.removed, id)
	p := newPeer(t, id, t.cfg.PeerAddrs(id, context))
	t.peers[id] = p
	t.wg.Add(1)
	go p.run()
}

// UpdatePeer implements consensus.PeerManager: the peer's streams are
// re-opened to its new addresses.
func (t *Transport) UpdatePeer(id uint64, context []byte) {
	t.mu.Lock()
	old := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if old != nil {
		old.stop()
	}
	t.AddPeer(id, context)
}

// RemovePeer implements consensus.PeerManager; messages from a removed
// member are refused from now on.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.removed[id] = true
	t.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Send implements consensus.Transport. It never blocks.
func (t *Transport) Send(msgs []*raftpb.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		p := t.peers[m.GetTo()]
		if p == nil {
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			p.sendSnapshot(m)
			continue
		}
		select {
		case p.queue <- m:
		default:
			p.dropped.Add(1)
			if h := t.h(); h != nil {
				go h.ReportUnreachable(m.GetTo())
			}
		}
	}
}

// PeerStats describes one peer's link.
type PeerStats struct {
	Connected bool
	// ActiveSince is when the link last became active (zero when down).
	ActiveSince time.Time
	RTT         time.Duration // last measured round trip
	Sent        uint64        // messages sent
	Dropped     uint64        // messages dropped (queue full or link down)
	// SentBytes and ReceivedBytes are the bytes of raft message batches
	// sent to and received from the peer.
	SentBytes, ReceivedBytes uint64
}

// Stats returns per-peer link statistics.
func (t *Transport) Stats() map[uint64]PeerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[uint64]PeerStats{}
	for id, p := range t.peers {
		out[id] = PeerStats{Connected: p.connected.Load(), ActiveSince: p.activeTime(), RTT: time.Duration(p.rtt.Load()),
			Sent: p.sent.Load(), Dropped: p.dropped.Load(), SentBytes: p.sentBytes.Load()}
		if c := t.recvBytes[id]; c != nil {
			st := out[id]
			st.ReceivedBytes = c.Load()
			out[id] = st
		}
	}
	return out
}

// ActiveSince returns when the link to peer id last became active (a
// stream that answers pings), or the zero time when it is down or id is
// not a peer, as etcd's Transporter.ActiveSince.
func (t *Transport) ActiveSince(id uint64) time.Time {
	t.mu.Lock()
	p := t.peers[id]
	t.mu.Unlock()
	if p == nil {
		return time.Time{}
	}
	return p.activeTime()
}

// AddRemoved records members the cluster removed (from its persisted
// member table at start): their streams are refused, and told why.
func (t *Transport) AddRemoved(ids ...uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		t.removed[id] = true
	}
}

// Close stops every peer.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	peers := t.peers
	t.peers = map[uint64]*peer{}
	t.mu.Unlock()
	for _, p := range peers {
		p.stop()
	}
	t.wg.Wait()
}

// ServerOptions are the options the gRPC server the transport is
// registered on needs: gRPC's default 4 MiB receive limit would cut
// streams carrying a large entry.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxRecvMsgBytes)}
}

// Register adds the peer service to s.
func (t *Transport) Register(s *grpc.Server) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{
			{StreamName: "Stream", Handler: t.serveStream, ServerStreams: true, ClientStreams: true},
			{StreamName: "Snapshot", Handler: t.serveSnapshot, ClientStreams: true},
		},
		Metadata: "metastore/raft/peer",
	}, t)
}

func hello(cluster, from, to uint64) []byte {
	b := []byte{frameHello}
	b = binary.BigEndian.AppendUint64(b, cluster)
	b = binary.BigEndian.AppendUint64(b, from)
	return binary.BigEndian.AppendUint64(b, to)
}

// accept checks a hello frame and returns the sender.
func (t *Transport) accept(f []byte) (uint64, error) {
	if len(f) != 25 || f[0] != frameHello {
		return 0, status.Error(codes.InvalidArgument, "transport: expected hello")
	}
	cluster, from, to := binary.BigEndian.Uint64(f[1:]), binary.BigEndian.Uint64(f[9:]), binary.BigEndian.Uint64(f[17:])
	if cluster != t.cfg.ClusterID {
		t.lg.Warn("rejected peer of another cluster", zap.String("remote-peer-id", fmt.Sprintf("%x", from)),
			zap.String("remote-cluster-id", fmt.Sprintf("%x", cluster)))
		return 0, status.Error(codes.FailedPrecondition, ErrClusterIDMismatch.Error())
	}
	if to != t.cfg.ID {
		return 0, status.Errorf(codes.FailedPrecondition, "transport: stream for member %x reached member %x", to, t.cfg.ID)
	}
	t.mu.Lock()
	removed := t.removed[from]
	t.mu.Unlock()
	if removed {
		return 0, status.Errorf(codes.PermissionDenied, "%s (member %x)", removedMsg, from)
	}
	return from, nil
}

func (t *Transport) serveStream(_ any, ss grpc.ServerStream) error {
	in := &wrapperspb.BytesValue{}
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	from, err := t.accept(in.GetValue())
	if err != nil {
		return err
	}
	t.mu.Lock()
	if t.recvBytes == nil {
		t.recvBytes = map[uint64]*atomic.Uint64{}
	}
	recv := t.recvBytes[from]
	if recv == nil {
		recv = &atomic.Uint64{}
		t.recvBytes[from] = recv
	}
	t.mu.Unlock()
	// A forwarded proposal waits in Raft until this member knows a leader
	// (a member just restarted does not yet): it is stepped beside the
	// stream, never in its way, or the heartbeats and appends behind it —
	// which would tell this member the leader — and the pongs would wait
	// with it until the sender cut the stream as stalled. etcd's rafthttp
	// keeps proposals off its receive path too.
	props := make(chan *raftpb.Message, proposalQueue)
	defer close(props)
	go func() {
		for m := range props {
			if h := t.h(); h != nil {
				_ = h.Step(ss.Context(), m)
			}
		}
	}()
	for {
		in := &wrapperspb.BytesValue{}
		if err := ss.RecvMsg(in); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		f := in.GetValue()
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case framePing:
			// A removed member pings too: tell it at once.
			t.mu.Lock()
			removed := t.removed[from]
			t.mu.Unlock()
			if removed {
				return status.Errorf(codes.PermissionDenied, "%s (member %x)", removedMsg, from)
			}
			f[0] = framePong
			if err := ss.SendMsg(wrapperspb.Bytes(f)); err != nil {
				return err
			}
		case frameBatch:
			recv.Add(uint64(len(f)))
			t.mu.Lock()
			removed := t.removed[from]
			t.mu.Unlock()
			if removed {
				return status.Errorf(codes.PermissionDenied, "%s (member %x)", removedMsg, from)
			}
			msgs, err := decodeBatch(f[1:])
			if err != nil {
				return status.Error(codes.InvalidArgument, err.Error())
			}
			if h := t.h(); h != nil {
				for _, m := range msgs {
					if m.GetType() == raftpb.MsgProp {
						select {
						case props <- m:
						default: // dropped, as Raft drops them without a leader: the proposer retries
							t.lg.Debug("dropped a forwarded proposal: too many wait for a leader", zap.String("remote-peer-id", toHex(from)))
						}
						continue
					}
					_ = h.Step(ss.Context(), m)
				}
			}
		}
	}
}

func (t *Transport) serveSnapshot(_ any, ss grpc.ServerStream) error {
	in := &wrapperspb.BytesValue{}
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	if _, err := t.accept(in.GetValue()); err != nil {
		return err
	}
	in = &wrapperspb.BytesValue{}
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	f := in.GetValue()
	head := &raftpb.Message{}
	if len(f) == 0 || f[0] != frameChunk || proto.Unmarshal(f[1:], head) != nil || head.GetSnapshot() == nil {
		return status.Error(codes.InvalidArgument, "transport: expected snapshot header")
	}
	h := t.h()
	if h == nil {
		return status.Error(codes.Unavailable, "transport: not ready")
	}
	// The data streams from the wire to the node's disk, chunk by chunk.
	if err := h.ReceiveSnapshot(ss.Context(), head, &chunkReader{ss: ss}); err != nil {
		t.lg.Warn("failed to receive snapshot", zap.String("remote-peer-id", toHex(head.GetFrom())),
			zap.Uint64("snapshot-index", head.GetSnapshot().GetMetadata().GetIndex()), zap.Error(err))
		return status.Error(codes.Unavailable, err.Error())
	}
	return ss.SendMsg(wrapperspb.Bytes(nil))
}

// chunkReader reads the data chunks of a snapshot stream as one stream.
type chunkReader struct {
	ss  grpc.ServerStream
	buf []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		failpoint.Eval(fpSnapshotBeforeReceiveChunk)
		in := &wrapperspb.BytesValue{}
		if err := c.ss.RecvMsg(in); err != nil {
			return 0, err // io.EOF at the end of the stream
		}
		f := in.GetValue()
		if len(f) == 0 || f[0] != frameChunk {
			return 0, errors.New("transport: expected snapshot chunk")
		}
		c.buf = f[1:]
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

func encodeBatch(msgs []*raftpb.Message) ([]byte, error) {
	b := []byte{frameBatch}
	b = binary.AppendUvarint(b, uint64(len(msgs)))
	for _, m := range msgs {
		mb, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(mb)))
		b = append(b, mb...)
	}
	return b, nil
}

func decodeBatch(b []byte) ([]*raftpb.Message, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > 1<<20 {
		return nil, errors.New("transport: bad batch header")
	}
	b = b[k:]
	msgs := make([]*raftpb.Message, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return nil, errors.New("transport: truncated batch")
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(b[k:k+int(l)], m); err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
		b = b[k+int(l):]
	}
	return msgs, nil
}

func (t *Transport) dialOpts() []grpc.DialOption {
	creds := t.cfg.Creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds)}
}
