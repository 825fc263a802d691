package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/metastore/metastore/storage/backend"
)

// Store is an MVCC key-value store over a backend.Backend. All methods are
// safe for concurrent use.
//
// Lock order: writeMu before mu and before watch.mu; watch.mu before mu.
// mu is only held for short, bounded work (taking a read view, publishing a
// committed batch) and nothing is acquired while holding it.
type Store struct {
	cfg Config
	lg  *zap.Logger
	be  backend.Backend

	// notifyPending is the revision whose write is committed but whose
	// events are not yet handed to the synced watchers (0: none).
	notifyPending atomic.Int64

	// writeMu serializes write transactions, compaction scheduling and
	// restore: the holder owns the next revision.
	writeMu sync.Mutex

	mu         sync.RWMutex // guards the fields below
	rev        int64        // current revision
	compactRev int64        // scheduled compaction revision, -1 if none
	ci         ConsistentIndex
	closed     bool

	durable groupSync
	watch   *watchState
	// latest caches keys' latest versions for the write path (nil: off).
	// Only write transactions use it, under writeMu; it never holds a
	// tombstone, the only latest entry compaction removes.
	latest *simplelru.LRU[string, cachedLatest]
	// wbuf is the write transactions' scratch space for the engine keys
	// and values they hand their batch (Batch.Set copies), under writeMu.
	wbuf []byte

	hashMu      sync.Mutex
	hashes      []KVHash               // taken at compaction time, newest last (HashKV)
	hashPending map[int64]*pendingHash // compaction-time hashes being computed
	hashHook    func()                 // tests: runs before a compaction-time hash
	comp        *compactor
	keys        keyCount // live keys, counted on demand

	stop chan struct{}
	wg   sync.WaitGroup
}

// cachedLatest is a key's latest version: its revision and encoded record.
type cachedLatest struct {
	rev Revision
	raw []byte
}

// ConsistentIndex is the position of the last Raft entry whose effects the
// store holds, saved atomically with them.
type ConsistentIndex struct {
	Index uint64
	Term  uint64
}

// Open opens the store kept in be, initializing an empty engine. The store
// takes ownership of be and closes it in Close. Opening reads a few meta
// keys only: its cost does not depend on the amount of data.
func Open(be backend.Backend, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{cfg: cfg, lg: cfg.Logger, be: be, compactRev: -1, stop: make(chan struct{})}
	s.durable.be = be
	if err := s.load(); err != nil {
		return nil, err
	}
	if cfg.LatestCacheEntries > 0 {
		c, err := simplelru.NewLRU[string, cachedLatest](cfg.LatestCacheEntries, nil)
		if err != nil {
			return nil, fmt.Errorf("storage: latest-version cache: %w", err)
		}
		s.latest = c
	}
	s.watch = newWatchState(s)
	s.comp = newCompactor(s)
	s.wg.Add(3)
	go s.comp.run()
	go s.watch.syncLoop()
	go s.watch.victimLoop()
	s.lg.Info("opened store", zap.Int64("revision", s.rev), zap.Int64("compact-revision", s.compactRev),
		zap.Uint64("consistent-index", s.ci.Index))
	return s, nil
}

// load reads the meta keys, initializing a fresh engine.
func (s *Store) load() error {
	if _, err := s.be.Get(metaRestoring); err == nil {
		return ErrIncompleteRestore
	} else if !errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("storage: read meta: %w", err)
	}
	f, err := s.be.Get(metaFormat)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return s.initialize()
	case err != nil:
		return fmt.Errorf("storage: read meta: %w", err)
	case string(f) != formatVersion:
		return fmt.Errorf("%w: unknown format version %q", ErrCorrupt, f)
	}
	if s.compactRev, err = s.metaInt(metaCompactSched, -1); err != nil {
		return err
	}
	if s.rev, err = s.currentRev(s.compactRev); err != nil {
		return err
	}
	v, err := s.be.Get(metaConsistentIndex)
	if err == nil && len(v) == 16 {
		s.ci = ConsistentIndex{Index: binary.BigEndian.Uint64(v), Term: binary.BigEndian.Uint64(v[8:])}
	} else if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("storage: read meta: %w", err)
	}
	return nil
}

// currentRev finds the store's revision on open. Every revision that
// changed something wrote history entries in the same batch, so it is the
// newest history entry's — unless compaction removed that entry (a
// tombstone compacted at the current revision), when the compaction
// revision is. The revision key is written at initialization and by
// earlier versions, which kept it current: a floor.
func (s *Store) currentRev(compactRev int64) (int64, error) {
	rev, err := s.metaInt(metaRev, 1)
	if err != nil {
		return 0, err
	}
	it := s.be.NewIterator(backend.IterOptions{LowerBound: []byte{prefixHistory}, UpperBound: []byte{prefixHistory + 1}})
	if it.Last() {
		r, err := parseHistoryKey(it.Key())
		if err != nil {
			_ = it.Close()
			return 0, err
		}
		rev = max(rev, r.Main)
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("storage: read history: %w", err)
	}
	return max(rev, compactRev), nil
}

func (s *Store) initialize() error {
	it := s.be.NewIterator(backend.IterOptions{})
	nonEmpty := it.First()
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: inspect engine: %w", err)
	}
	if nonEmpty {
		return fmt.Errorf("%w: engine holds data but no storage format marker", ErrCorrupt)
	}
	wb := s.be.NewBatch()
	wb.Set(metaFormat, []byte(formatVersion))
	wb.Set(metaRev, encodeInt(1))
	if err := wb.Commit(true); err != nil {
		return fmt.Errorf("storage: initialize: %w", err)
	}
	s.rev = 1
	return nil
}

func (s *Store) metaInt(key []byte, def int64) (int64, error) {
	v, err := s.be.Get(key)
	if errors.Is(err, backend.ErrNotFound) {
		return def, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: read meta %q: %w", key, err)
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: meta %q", ErrCorrupt, key)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func encodeInt(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// Rev returns the current revision.
func (s *Store) Rev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// CompactRev returns the revision of the latest compaction (scheduled, its
// physical removal may still run), or -1 if the store was never compacted.
func (s *Store) CompactRev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.compactRev
}

// ConsistentIndex returns the consistent index saved by the latest write
// transaction that set one.
func (s *Store) ConsistentIndex() ConsistentIndex {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ci
}

// Sync makes every committed write transaction durable (one engine fsync,
// shared with concurrent callers). With Config.NoSync, callers use it to
// learn what survives a crash: every consistent index read before Sync
// returns nil is durable.
func (s *Store) Sync() error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.durable.wait(s.durable.last())
}

// Sizes reports the engine's space usage.
func (s *Store) Sizes() (backend.Sizes, error) {
	if err := s.checkOpen(); err != nil {
		return backend.Sizes{}, err
	}
	return s.be.Sizes()
}

// Defragment asks the engine to reclaim the space of deleted data. It runs
// online: reads and writes continue while it works.
func (s *Store) Defragment() error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	failpoint(fpDefragBeforeCompact)
	if err := s.be.Compact(nil, nil); err != nil {
		return err
	}
	failpoint(fpDefragAfterCompact)
	return nil
}

func (s *Store) checkOpen() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Close stops background work, closes every watch stream and closes the
// engine. Calls after Close return ErrClosed.
func (s *Store) Close() error {
	s.writeMu.Lock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.writeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.writeMu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.watch.closeAll()
	s.lg.Info("closing store", zap.Int64("revision", s.rev))
	return s.be.Close()
}

// view is a consistent read view: an engine snapshot and the revisions it
// reflects.
type view struct {
	snap       backend.Snapshot
	rev        int64
	compactRev int64
}

func (s *Store) newView() (view, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return view{}, ErrClosed
	}
	snap, err := s.be.NewSnapshot()
	if err != nil {
		return view{}, fmt.Errorf("storage: snapshot: %w", err)
	}
	return view{snap: snap, rev: s.rev, compactRev: s.compactRev}, nil
}

// groupSync makes committed batches durable with as few fsyncs as possible:
// a writer that finds a sync in flight waits for it and the next one
// instead of issuing its own.
type groupSync struct {
	be        backend.Backend
	mu        sync.Mutex
	cond      *sync.Cond
	committed uint64 // sequence of the last committed batch
	synced    uint64 // every batch up to this sequence is durable
	syncing   bool
}

// commit records that one more batch was committed and returns its sequence.
func (g *groupSync) commit() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.committed++
	return g.committed
}

// last returns the sequence of the last committed batch.
func (g *groupSync) last() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.committed
}

// wait returns once batch seq is durable.
func (g *groupSync) wait(seq uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	for g.synced < seq {
		if g.syncing {
			g.cond.Wait()
			continue
		}
		g.syncing = true
		target := g.committed
		g.mu.Unlock()
		err := g.be.Sync()
		g.mu.Lock()
		g.syncing = false
		g.cond.Broadcast()
		if err != nil {
			return fmt.Errorf("storage: sync: %w", err)
		}
		if target > g.synced {
			g.synced = target
		}
	}
	return nil
}

// keyInRange reports whether key is in the range [start, end) with etcd's
// conventions: empty end means the single key start, end "\x00" means every
// key >= start.
func keyInRange(key, start, end []byte) bool {
	if len(end) == 0 {
		return bytes.Equal(key, start)
	}
	if len(end) == 1 && end[0] == 0 {
		return bytes.Compare(key, start) >= 0
	}
	return bytes.Compare(key, start) >= 0 && bytes.Compare(key, end) < 0
}
