package storage

import (
	"bytes"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage/backend"
)

// WatchID identifies a watcher within its WatchStream.
type WatchID int64

// AutoWatchID asks Watch to choose the ID (the lowest unused one from 0 up,
// as etcd does).
const AutoWatchID WatchID = 0

// ProgressWatchID is the WatchID of a stream-wide progress notification.
const ProgressWatchID WatchID = -1

// WatchResponse is one delivery on a WatchStream's channel.
type WatchResponse struct {
	// WatchID is the watcher the response is for, or ProgressWatchID.
	WatchID WatchID
	// Events are whole revisions, in revision order. Empty for progress
	// notifications and compaction cancellations.
	Events []*mvccpb.Event
	// Revision is the store revision the response was produced at.
	Revision int64
	// CompactRevision is set when the watcher's start revision was
	// compacted: the watcher is cancelled and gets no further responses.
	CompactRevision int64
}

// WatchOptions describe a watcher.
type WatchOptions struct {
	// ID is the watcher's ID; AutoWatchID lets the stream choose.
	ID WatchID
	// Key and End select keys with Range's conventions (empty End: the
	// single key; End "\x00": every key >= Key).
	Key, End []byte
	// StartRev is the first revision to deliver; 0 means the next one.
	StartRev int64
	// PrevKV attaches the previous version of each key to its events.
	PrevKV bool
	// NoPut and NoDelete drop PUT or DELETE events.
	NoPut, NoDelete bool
}

type watcherState uint8

const (
	stateSynced   watcherState = iota // gets events from notify
	stateUnsynced                     // catches up from history
	stateVictim                       // holds an undelivered response
	stateGone                         // cancelled or compacted
)

type watcher struct {
	ws      *WatchStream
	id      WatchID
	opts    WatchOptions
	minRev  int64 // next revision to deliver
	state   watcherState
	pending *WatchResponse // undelivered response of a victim
}

func (w *watcher) matches(key []byte) bool { return keyInRange(key, w.opts.Key, w.opts.End) }

// filter returns the events w wants among evs with revision >= w.minRev.
func (w *watcher) filter(evs []*mvccpb.Event) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, ev := range evs {
		if ev.Kv.ModRevision < w.minRev || !w.matches(ev.Kv.Key) {
			continue
		}
		if (ev.Type == mvccpb.PUT && w.opts.NoPut) || (ev.Type == mvccpb.DELETE && w.opts.NoDelete) {
			continue
		}
		e := &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
		if w.opts.PrevKV {
			e.PrevKv = ev.PrevKv
		}
		out = append(out, e)
	}
	return out
}

// WatchStream multiplexes watchers onto one channel. Its methods are safe
// for concurrent use.
type WatchStream struct {
	st       *watchState
	ch       chan WatchResponse
	watchers map[WatchID]*watcher // guarded by st.mu
	nextID   WatchID
	closed   bool
}

// NewWatchStream returns a stream whose channel buffers bufSize responses
// (0 means DefaultWatchStreamBuffer). When the buffer is full, watchers
// wait as victims; writers are never blocked.
func (s *Store) NewWatchStream(bufSize int) *WatchStream {
	if bufSize <= 0 {
		bufSize = DefaultWatchStreamBuffer
	}
	ws := &WatchStream{st: s.watch, ch: make(chan WatchResponse, bufSize), watchers: map[WatchID]*watcher{}}
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if s.watch.closed {
		ws.closed = true
		close(ws.ch)
		return ws
	}
	s.watch.streams[ws] = struct{}{}
	return ws
}

// Chan returns the channel responses arrive on. It is closed by Close.
func (ws *WatchStream) Chan() <-chan WatchResponse { return ws.ch }

// Watch adds a watcher and returns its ID.
func (ws *WatchStream) Watch(opts WatchOptions) (WatchID, error) {
	if len(opts.End) > 0 && !(len(opts.End) == 1 && opts.End[0] == 0) && bytes.Compare(opts.Key, opts.End) >= 0 {
		return -1, ErrEmptyWatcherRange
	}
	st := ws.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if ws.closed {
		return -1, ErrEmptyWatcherRange
	}
	id := opts.ID
	if id == AutoWatchID {
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
		ws.nextID++
	} else if _, ok := ws.watchers[id]; ok {
		return -1, ErrWatcherDuplicateID
	}
	opts.Key, opts.End = bytes.Clone(opts.Key), bytes.Clone(opts.End)
	w := &watcher{ws: ws, id: id, opts: opts}
	cur := st.s.Rev()
	if opts.StartRev == 0 || opts.StartRev > cur {
		w.minRev = max(cur+1, opts.StartRev)
		st.add(w, stateSynced)
	} else {
		w.minRev = opts.StartRev
		st.add(w, stateUnsynced)
		st.kickSync()
	}
	ws.watchers[id] = w
	return id, nil
}

// Cancel removes a watcher; responses not yet delivered to it are dropped.
func (ws *WatchStream) Cancel(id WatchID) error {
	ws.st.mu.Lock()
	defer ws.st.mu.Unlock()
	w, ok := ws.watchers[id]
	if !ok {
		return ErrWatcherNotExist
	}
	ws.st.remove(w)
	delete(ws.watchers, id)
	return nil
}

// RequestProgress sends an empty response carrying the current revision to
// watcher id if it is synced; an unsynced watcher will report progress
// through its events soon, as in etcd.
func (ws *WatchStream) RequestProgress(id WatchID) {
	ws.st.mu.Lock()
	defer ws.st.mu.Unlock()
	w, ok := ws.watchers[id]
	if !ok || w.state != stateSynced {
		return
	}
	ws.send(WatchResponse{WatchID: id, Revision: ws.st.progressRev(w)})
}

// progressRev is the revision a progress notification to the synced
// watcher w may carry: every event of w up to it has been handed to its
// stream, and none after it. The store's revision is not it while the
// writer of that revision has not yet notified the synced watchers (a
// progress report would then run ahead of the event, and a client that
// resumes from it would miss the event); a watcher brought up to date by
// a catch-up read of that revision is past it. st.mu is held.
func (st *watchState) progressRev(w *watcher) int64 {
	cur := st.s.Rev()
	rev := cur
	if p := st.s.notifyPending.Load(); p != 0 && p <= cur {
		rev = p - 1
	}
	if caught := w.minRev - 1; caught > rev && caught <= cur {
		rev = caught
	}
	return rev
}

// RequestProgressAll sends one response with WatchID ProgressWatchID and the
// current revision if every watcher on the stream is synced, and reports
// whether it did. Callers retry later when it returns false. A stream
// with no watchers gets no response (as etcd) and it reports true.
func (ws *WatchStream) RequestProgressAll() bool {
	ws.st.mu.Lock()
	defer ws.st.mu.Unlock()
	if ws.closed {
		return false
	}
	if len(ws.watchers) == 0 {
		return true // nothing to report progress of: no response, as etcd
	}
	rev := int64(-1)
	for _, w := range ws.watchers {
		if w.state != stateSynced {
			return false
		}
		// One revision must be right for every watcher; they differ only
		// while a write is between its commit and its notification.
		if r := ws.st.progressRev(w); rev < 0 {
			rev = r
		} else if r != rev {
			return false
		}
	}
	return ws.send(WatchResponse{WatchID: ProgressWatchID, Revision: rev})
}

// Close cancels every watcher and closes the channel.
func (ws *WatchStream) Close() {
	ws.st.mu.Lock()
	defer ws.st.mu.Unlock()
	ws.closeLocked()
	delete(ws.st.streams, ws)
}

func (ws *WatchStream) closeLocked() {
	if ws.closed {
		return
	}
	for id, w := range ws.watchers {
		ws.st.remove(w)
		delete(ws.watchers, id)
	}
	ws.closed = true
	close(ws.ch)
}

// send tries to deliver without blocking; st.mu is held.
func (ws *WatchStream) send(r WatchResponse) bool {
	if ws.closed {
		return true // nobody listens: treat as delivered
	}
	select {
	case ws.ch <- r:
		return true
	default:
		return false
	}
}

// watchState holds every watcher of a store, grouped by state.
type watchState struct {
	s *Store

	mu          sync.Mutex
	syncedKey   map[string]map[*watcher]struct{} // synced single-key watchers
	syncedRange map[*watcher]struct{}            // synced range watchers
	unsynced    map[*watcher]struct{}
	victims     map[*watcher]struct{}
	streams     map[*WatchStream]struct{}
	closed      bool

	kick chan struct{}
}

func newWatchState(s *Store) *watchState {
	return &watchState{
		s:           s,
		syncedKey:   map[string]map[*watcher]struct{}{},
		syncedRange: map[*watcher]struct{}{},
		unsynced:    map[*watcher]struct{}{},
		victims:     map[*watcher]struct{}{},
		streams:     map[*WatchStream]struct{}{},
		kick:        make(chan struct{}, 1),
	}
}

func (st *watchState) kickSync() {
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// add puts w in the group for state.
func (st *watchState) add(w *watcher, state watcherState) {
	w.state = state
	switch state {
	case stateSynced:
		if len(w.opts.End) == 0 {
			k := string(w.opts.Key)
			if st.syncedKey[k] == nil {
				st.syncedKey[k] = map[*watcher]struct{}{}
			}
			st.syncedKey[k][w] = struct{}{}
		} else {
			st.syncedRange[w] = struct{}{}
		}
	case stateUnsynced:
		st.unsynced[w] = struct{}{}
	case stateVictim:
		st.victims[w] = struct{}{}
	}
}

// remove takes w out of its group.
func (st *watchState) remove(w *watcher) {
	switch w.state {
	case stateSynced:
		if len(w.opts.End) == 0 {
			k := string(w.opts.Key)
			delete(st.syncedKey[k], w)
			if len(st.syncedKey[k]) == 0 {
				delete(st.syncedKey, k)
			}
		} else {
			delete(st.syncedRange, w)
		}
	case stateUnsynced:
		delete(st.unsynced, w)
	case stateVictim:
		delete(st.victims, w)
	}
	w.state = stateGone
	w.pending = nil
}

func (st *watchState) move(w *watcher, to watcherState) {
	st.remove(w)
	st.add(w, to)
}

// notify hands the events of the transaction at rev to synced watchers.
// Called by the committing writer, in revision order.
func (st *watchState) notify(rev int64, evs []*mvccpb.Event) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.syncedKey) == 0 && len(st.syncedRange) == 0 {
		return
	}
	affected := map[*watcher]struct{}{}
	for i := range evs {
		for w := range st.syncedKey[string(evs[i].Kv.Key)] {
			affected[w] = struct{}{}
		}
	}
	for w := range st.syncedRange {
		affected[w] = struct{}{}
	}
	for w := range affected {
		if rev < w.minRev {
			continue
		}
		out := w.filter(evs)
		w.minRev = rev + 1
		if len(out) == 0 {
			continue
		}
		r := WatchResponse{WatchID: w.id, Events: out, Revision: rev}
		if !w.ws.send(r) {
			st.move(w, stateVictim)
			w.pending = &r
		}
	}
}

// closeAll closes every stream; used by Store.Close.
func (st *watchState) closeAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closed = true
	for ws := range st.streams {
		ws.closeLocked()
	}
	st.streams = nil
}

// victimLoop retries delivering the responses of victims.
func (st *watchState) victimLoop() {
	defer st.s.wg.Done()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-st.s.stop:
			return
		case <-t.C:
			st.retryVictims()
		}
	}
}

func (st *watchState) retryVictims() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.victims) == 0 {
		return
	}
	cur := st.s.Rev()
	kick := false
	for w := range st.victims {
		if !w.ws.send(*w.pending) {
			continue
		}
		w.pending = nil
		if w.minRev > cur {
			st.move(w, stateSynced)
		} else {
			st.move(w, stateUnsynced)
			kick = true
		}
	}
	if kick {
		st.kickSync()
	}
}

// syncLoop catches unsynced watchers up from history.
func (st *watchState) syncLoop() {
	defer st.s.wg.Done()
	t := time.NewTicker(st.s.cfg.WatchResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-st.s.stop:
			return
		case <-t.C:
		case <-st.kick:
		}
		if more := st.syncOnce(); more {
			st.kickSync()
		}
	}
}

// syncOnce serves up to MaxWatchersPerSync unsynced watchers from one read
// view and reports whether unsynced watchers remain.
func (st *watchState) syncOnce() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.unsynced) == 0 {
		return false
	}
	v, err := st.s.newView()
	if err != nil {
		return false
	}
	defer v.snap.Close()

	var chosen []*watcher
	minRev := int64(-1)
	for w := range st.unsynced {
		if len(chosen) >= st.s.cfg.MaxWatchersPerSync {
			break
		}
		if w.minRev < v.compactRev {
			// Its start revision is gone: cancel it with the compact revision.
			if w.ws.send(WatchResponse{WatchID: w.id, CompactRevision: v.compactRev, Revision: v.rev}) {
				st.remove(w)
			}
			continue
		}
		chosen = append(chosen, w)
		if minRev < 0 || w.minRev < minRev {
			minRev = w.minRev
		}
	}
	if len(chosen) > 0 {
		evs, next, err := readHistory(v, minRev, st.s.cfg.WatchBatchMaxRevs)
		if err != nil {
			st.s.lg.Warn("watch catch-up failed")
			return true
		}
		prevCache := map[int]*mvccpb.KeyValue{}
		for _, w := range chosen {
			out := w.filter(evs)
			if w.opts.PrevKV {
				attachPrev(v, evs, out, prevCache)
			}
			w.minRev = max(w.minRev, next)
			if len(out) > 0 {
				r := WatchResponse{WatchID: w.id, Events: out, Revision: v.rev}
				if !w.ws.send(r) {
					st.move(w, stateVictim)
					w.pending = &r
					continue
				}
			}
			if w.minRev > v.rev {
				st.move(w, stateSynced)
			}
		}
	}
	return len(st.unsynced) > 0
}

// readHistory returns the events of revisions [from, v.rev], cut after
// maxRevs whole revisions, and the first revision not returned.
func readHistory(v view, from int64, maxRevs int) ([]*mvccpb.Event, int64, error) {
	it := v.snap.NewIterator(backend.IterOptions{
		LowerBound: historyKey(Revision{Main: from}),
		UpperBound: historyKey(Revision{Main: v.rev + 1}),
	})
	defer it.Close()
	var evs []*mvccpb.Event
	revs, last := 0, int64(0)
	for ok := it.First(); ok; ok = it.Next() {
		r, err := parseHistoryKey(it.Key())
		if err != nil {
			return nil, 0, err
		}
		if r.Main != last {
			if revs == maxRevs {
				return evs, r.Main, nil
			}
			revs, last = revs+1, r.Main
		}
		key, tomb, err := parseHistoryValue(it.Value())
		if err != nil {
			return nil, 0, err
		}
		if tomb {
			evs = append(evs, &mvccpb.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: key, ModRevision: r.Main}})
			continue
		}
		raw, err := recordAt(v.snap, key, r)
		if err != nil {
			return nil, 0, err
		}
		rec, err := decodeRecord(raw, true)
		if err != nil {
			return nil, 0, err
		}
		evs = append(evs, &mvccpb.Event{Type: mvccpb.PUT, Kv: rec.kv(key, r.Main)})
	}
	return evs, v.rev + 1, it.Error()
}

// attachPrev fills PrevKv of the filtered events out (which alias entries
// of evs by key and revision) with the key's state before the event's
// revision, as etcd does: none for create events or compacted history.
func attachPrev(v view, evs, out []*mvccpb.Event, cache map[int]*mvccpb.KeyValue) {
	j := 0
	for i := range out {
		for j < len(evs) && (evs[j].Kv.ModRevision != out[i].Kv.ModRevision || !bytes.Equal(evs[j].Kv.Key, out[i].Kv.Key)) {
			j++
		}
		if j == len(evs) {
			return
		}
		if out[i].Type == mvccpb.PUT && out[i].Kv.Version == 1 {
			continue
		}
		prev, ok := cache[j]
		if !ok {
			rev := evs[j].Kv.ModRevision - 1
			if rev >= v.compactRev {
				if rec, mod, found, err := latest(v.snap, evs[j].Kv.Key, rev, true); err == nil && found && !rec.tombstone {
					prev = rec.kv(evs[j].Kv.Key, mod.Main)
				}
			}
			cache[j] = prev
		}
		out[i].PrevKv = prev
	}
}

// WatchStats are counts of the store's watchers that lag behind.
type WatchStats struct {
	// Slow is the number of watchers not caught up with the store: those
	// catching up from history and those whose stream's buffer was full
	// (etcd's etcd_debugging_mvcc_slow_watcher_total).
	Slow int
	// PendingEvents is the number of events held for watchers whose
	// stream's buffer was full (etcd's
	// etcd_debugging_mvcc_pending_events_total).
	PendingEvents int
}

// WatchStats returns the current counts.
func (s *Store) WatchStats() WatchStats {
	st := s.watch
	st.mu.Lock()
	defer st.mu.Unlock()
	ws := WatchStats{Slow: len(st.unsynced) + len(st.victims)}
	for w := range st.victims {
		if w.pending != nil {
			ws.PendingEvents += len(w.pending.Events)
		}
	}
	return ws
}
