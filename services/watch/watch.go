package watch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage"
)

// errStoreGone ends a stream whose store closed under it.
var errStoreGone = status.Error(codes.Unavailable, "etcdserver: watch store closed (member stopping or restored from a snapshot); resume the watch")

// DefaultProgressNotifyInterval is etcd's --watch-progress-notify-interval.
const DefaultProgressNotifyInterval = 10 * time.Minute

// Store is what the service watches: the member's MVCC store.
type Store interface {
	NewWatchStream(bufSize int) *storage.WatchStream
	Rev() int64
}

// HeaderFiller fills the cluster ID, member ID and Raft term of a header.
type HeaderFiller interface {
	FillHeader(h *pb.ResponseHeader)
}

// Config tunes the service.
type Config struct {
	// ProgressNotifyInterval is how often watchers that asked for progress
	// notifications get one. Default 10 minutes.
	ProgressNotifyInterval time.Duration
	// MaxResponseBytes bounds one response of a fragmenting watcher
	// (etcd uses --max-request-bytes). Default 1.5 MiB.
	MaxResponseBytes int
	// Authorizer is the authorization check point: every watch needs read
	// permission on its range. Nil allows everything.
	Authorizer Authorizer
	Logger     *zap.Logger
	// Observer hears how long the stream's sends take (etcd's
	// watch_send_loop_* metrics).
	Observer Observer
}

// Observer is told how long each kind of watch response took to send.
// Nil fields are not called; calls come from the streams' goroutines.
type Observer struct {
	// Events: a response of n events (all its fragments).
	Events func(n int, d time.Duration)
	// Control: a created or canceled response answering the client.
	Control func(d time.Duration)
	// Progress: a progress notification.
	Progress func(d time.Duration)
}

// Authorizer is the authorization check point (see the kv service's):
// may the caller (identified by ctx) read or write the keys in [key, end)?
type Authorizer interface {
	Authorize(ctx context.Context, write bool, key, end []byte) error
}

// Server is the gRPC Watch service.
type Server struct {
	pb.UnimplementedWatchServer
	store func() Store
	hdr   HeaderFiller
	cfg   Config

	streams, watchers atomic.Int64  // open now
	events            atomic.Uint64 // sent since start
}

// Stats are the service's gauges and counters (etcd's
// etcd_debugging_mvcc_watch_stream_total, _watcher_total and
// _events_total).
type Stats struct {
	Streams, Watchers int64  // open now
	Events            uint64 // events sent since start
}

// Stats returns the service's current counts.
func (s *Server) Stats() Stats {
	return Stats{Streams: s.streams.Load(), Watchers: s.watchers.Load(), Events: s.events.Load()}
}

var _ pb.WatchServer = (*Server)(nil)

// NewServer returns the Watch service; store returns the current store.
func NewServer(store func() Store, hdr HeaderFiller, cfg Config) *Server {
	if cfg.ProgressNotifyInterval <= 0 {
		cfg.ProgressNotifyInterval = DefaultProgressNotifyInterval
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 3 << 19
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Server{store: store, hdr: hdr, cfg: cfg}
}

// watcherOpts are the per-watcher flags the service itself implements.
type watcherOpts struct {
	progress, fragment bool
}

// serverStream is one Watch call.
type serverStream struct {
	s      *Server
	gs     pb.Watch_WatchServer
	ws     *storage.WatchStream
	sendMu sync.Mutex // serializes gs.Send
	// createMu is held from registering a watcher until its created
	// response is sent; deliver waits for it, so no watcher's events
	// precede its creation (clientv3 cancels such a watch, as etcd never
	// sends them in that order).
	createMu sync.Mutex

	mu       sync.Mutex // guards opts
	opts     map[storage.WatchID]watcherOpts
	deferred bool // a progress request waits for watchers to sync
}

// Watch implements pb.WatchServer.
func (s *Server) Watch(gs pb.Watch_WatchServer) error {
	ss := &serverStream{s: s, gs: gs, ws: s.store().NewWatchStream(0), opts: map[storage.WatchID]watcherOpts{}}
	defer ss.ws.Close()
	s.streams.Add(1)
	defer func() {
		s.streams.Add(-1)
		ss.mu.Lock()
		s.watchers.Add(-int64(len(ss.opts)))
		ss.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(gs.Context())
	defer cancel()
	errc := make(chan error, 2)
	go func() {
		// A client that closes its side (the gateway does after the
		// create request) still gets its events, as etcd keeps the stream
		// until the client goes away.
		if err := ss.recvLoop(ctx); !errors.Is(err, io.EOF) {
			errc <- err
		}
	}()
	go func() { errc <- ss.sendLoop(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ss *serverStream) header(rev int64) *pb.ResponseHeader {
	h := &pb.ResponseHeader{Revision: rev}
	ss.s.hdr.FillHeader(h)
	return h
}

func (ss *serverStream) send(wr *pb.WatchResponse) error {
	ss.sendMu.Lock()
	defer ss.sendMu.Unlock()
	if err := ss.gs.Send(wr); err != nil {
		return err
	}
	ss.s.events.Add(uint64(len(wr.Events)))
	return nil
}

// forget drops watcher id's options, if it still has them.
func (ss *serverStream) forget(id storage.WatchID) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.opts[id]; ok {
		delete(ss.opts, id)
		ss.s.watchers.Add(-1)
	}
}

func (ss *serverStream) recvLoop(ctx context.Context) error {
	for {
		req, err := ss.gs.Recv()
		if err != nil {
			return err
		}
		switch {
		case req.GetCreateRequest() != nil:
			if err := ss.create(req.GetCreateRequest()); err != nil {
				return err
			}
		case req.GetCancelRequest() != nil:
			id := storage.WatchID(req.GetCancelRequest().WatchId)
			if ss.ws.Cancel(id) == nil {
				ss.forget(id)
				if err := ss.sendControl(&pb.WatchResponse{Header: ss.header(ss.s.store().Rev()), WatchId: int64(id), Canceled: true}); err != nil {
					return err
				}
			}
		case req.GetProgressRequest() != nil:
			if !ss.ws.RequestProgressAll() {
				ss.mu.Lock()
				ss.deferred = true // sent once every watcher is synced
				ss.mu.Unlock()
			}
		}
	}
}

func (ss *serverStream) create(c *pb.WatchCreateRequest) error {
	if a := ss.s.cfg.Authorizer; a != nil {
		if err := a.Authorize(ss.gs.Context(), false, c.Key, c.RangeEnd); err != nil {
			// As etcd: a created-and-canceled response with no watch ID.
			reason := rpctypes.ErrGRPCPermissionDenied.Error()
			if _, ok := status.FromError(err); ok {
				reason = err.Error()
			}
			return ss.sendControl(&pb.WatchResponse{
				Header: ss.header(ss.s.store().Rev()), WatchId: -1,
				Created: true, Canceled: true, CancelReason: reason,
			})
		}
	}
	if c.StartRevision < 0 {
		// As etcd 3.7: refused in one response, not a watch.
		return ss.sendControl(&pb.WatchResponse{
			Header: ss.header(ss.s.store().Rev()), WatchId: -1,
			Created: true, Canceled: true, CancelReason: rpctypes.ErrCompacted.Error(),
		})
	}
	key, end := c.Key, c.RangeEnd
	if len(key) == 0 {
		key = []byte{0} // the smallest key, as etcd
	}
	opts := storage.WatchOptions{
		ID: storage.WatchID(c.WatchId), Key: key, End: end, StartRev: c.StartRevision, PrevKV: c.PrevKv,
	}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			opts.NoPut = true
		case pb.WatchCreateRequest_NODELETE:
			opts.NoDelete = true
		}
	}
	ss.createMu.Lock()
	defer ss.createMu.Unlock()
	rev := ss.s.store().Rev()
	id, err := ss.ws.Watch(opts)
	if errors.Is(err, storage.ErrEmptyWatcherRange) && (len(end) == 0 || bytes.Compare(key, end) < 0 || (len(end) == 1 && end[0] == 0)) {
		// The range is fine: the store closed under the stream (a
		// snapshot restore in progress, or the member stopping).
		return errStoreGone
	}
	wr := &pb.WatchResponse{Header: ss.header(rev), WatchId: int64(id), Created: true, Canceled: err != nil}
	if err != nil {
		wr.CancelReason = err.Error()
	} else {
		ss.mu.Lock()
		if _, ok := ss.opts[id]; !ok {
			ss.s.watchers.Add(1)
		}
		ss.opts[id] = watcherOpts{progress: c.ProgressNotify, fragment: c.Fragment}
		ss.mu.Unlock()
	}
	return ss.sendControl(wr)
}

// sendControl sends a created or canceled response, timed.
func (ss *serverStream) sendControl(wr *pb.WatchResponse) error {
	t0 := time.Now()
	err := ss.send(wr)
	if f := ss.s.cfg.Observer.Control; f != nil && err == nil {
		f(time.Since(t0))
	}
	return err
}

func (ss *serverStream) sendLoop(ctx context.Context) error {
	progress := time.NewTicker(ss.s.cfg.ProgressNotifyInterval)
	defer progress.Stop()
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r, ok := <-ss.ws.Chan():
			if !ok {
				// The store closed: the member stops, or a snapshot from
				// the leader replaced it. Unavailable makes clients resume
				// their watches from the last revision they got.
				return errStoreGone
			}
			if err := ss.deliver(r); err != nil {
				return err
			}
		case <-progress.C:
			ss.mu.Lock()
			var ids []storage.WatchID
			for id, o := range ss.opts {
				if o.progress {
					ids = append(ids, id)
				}
			}
			ss.mu.Unlock()
			for _, id := range ids {
				ss.ws.RequestProgress(id)
			}
		case <-retry.C:
			ss.mu.Lock()
			deferred := ss.deferred
			ss.mu.Unlock()
			if deferred && ss.ws.RequestProgressAll() {
				ss.mu.Lock()
				ss.deferred = false
				ss.mu.Unlock()
			}
		}
	}
}

// deliver turns a storage response into watch responses, fragmenting
// large ones for watchers that asked for it.
func (ss *serverStream) deliver(r storage.WatchResponse) error {
	ss.createMu.Lock() // a watcher being created gets its created response first
	ss.createMu.Unlock()
	t0 := time.Now()
	err := ss.deliverTo(r)
	if err == nil {
		o := ss.s.cfg.Observer
		switch n := len(r.Events); {
		case n > 0 && o.Events != nil:
			o.Events(n, time.Since(t0))
		case n == 0 && r.CompactRevision == 0 && o.Progress != nil:
			o.Progress(time.Since(t0))
		case n == 0 && r.CompactRevision != 0 && o.Control != nil:
			o.Control(time.Since(t0))
		}
	}
	return err
}

func (ss *serverStream) deliverTo(r storage.WatchResponse) error {
	rev := r.Revision
	if r.CompactRevision != 0 {
		rev = 0 // etcd's cancel for a compacted start has an empty header
	}
	wr := &pb.WatchResponse{
		Header:          ss.header(rev),
		WatchId:         int64(r.WatchID),
		Events:          r.Events, // shared with other watchers: read-only, safe to marshal concurrently
		CompactRevision: r.CompactRevision,
		Canceled:        r.CompactRevision != 0,
	}
	if r.CompactRevision != 0 {
		ss.forget(r.WatchID)
	}
	ss.mu.Lock()
	frag := ss.opts[r.WatchID].fragment
	ss.mu.Unlock()
	if !frag || proto.Size(wr) < ss.s.cfg.MaxResponseBytes {
		return ss.send(wr)
	}
	for _, part := range fragment(wr, ss.s.cfg.MaxResponseBytes) {
		if err := ss.send(part); err != nil {
			return err
		}
	}
	return nil
}

// fragment splits a response into parts of at most limit bytes of events
// (at least one event each); every part but the last has Fragment set.
func fragment(wr *pb.WatchResponse, limit int) []*pb.WatchResponse {
	var parts []*pb.WatchResponse
	cur := &pb.WatchResponse{Header: wr.Header, WatchId: wr.WatchId}
	size := 0
	for _, ev := range wr.Events {
		n := proto.Size(ev)
		if len(cur.Events) > 0 && size+n > limit {
			cur.Fragment = true
			parts = append(parts, cur)
			cur = &pb.WatchResponse{Header: wr.Header, WatchId: wr.WatchId}
			size = 0
		}
		cur.Events = append(cur.Events, ev)
		size += n
	}
	return append(parts, cur)
}
