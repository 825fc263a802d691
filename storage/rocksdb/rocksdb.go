package rocksdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/linxGnu/grocksdb"

	"github.com/metastore/metastore/storage/backend"
)

var compressionTypes = map[Compression]grocksdb.CompressionType{
	CompressionNone:   grocksdb.NoCompression,
	CompressionSnappy: grocksdb.SnappyCompression,
	CompressionLZ4:    grocksdb.LZ4Compression,
	CompressionZSTD:   grocksdb.ZSTDCompression,
}

var infoLogLevels = map[string]grocksdb.InfoLogLevel{
	"debug": grocksdb.DebugInfoLogLevel,
	"info":  grocksdb.InfoInfoLogLevel,
	"warn":  grocksdb.WarnInfoLogLevel,
	"error": grocksdb.ErrorInfoLogLevel,
	"fatal": grocksdb.FatalInfoLogLevel,
}

// Backend is the RocksDB engine. Create it with Open.
//
// Lock order: Backend.mu, then Backend.openMu, then an iterator's or
// snapshot's own mu.
type Backend struct {
	dir string

	mu      sync.RWMutex // guards closed, and the DB handle's lifetime
	closing atomic.Bool  // set by the first Close
	db      *grocksdb.DB
	closed  bool
	// open tracks live iterators and snapshots so Close can release them
	// before closing the DB (Debian's RocksDB asserts otherwise).
	openMu sync.Mutex
	open   map[closer]struct{}

	opts     *grocksdb.Options
	bbto     *grocksdb.BlockBasedTableOptions
	cache    *grocksdb.Cache
	ro       *grocksdb.ReadOptions
	woSync   *grocksdb.WriteOptions
	woNoSync *grocksdb.WriteOptions
	noWAL    bool
	// noFlushOnClose: Close neither flushes nor syncs (Config.NoFlushOnClose).
	noFlushOnClose bool

	// spare holds cleared write batches for NewBatch to reuse: one per
	// write transaction otherwise costs a C allocation and a Go one.
	spareMu sync.Mutex
	spare   []*grocksdb.WriteBatch
	spareOK bool // false once closed: batches closed later are destroyed
}

// Batches up to spareBatchBytes are kept for reuse, at most spareBatches
// of them; a cleared batch keeps its buffer.
const (
	spareBatches    = 4
	spareBatchBytes = 1 << 20
)

// closer is something Close must release before the DB goes away.
type closer interface{ release() }

var _ backend.Backend = (*Backend)(nil)

// Open opens (creating if needed) a RocksDB database in dir.
func Open(dir string, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("rocksdb: create dir %q: %w", dir, err)
	}
	b := &Backend{dir: dir, open: make(map[closer]struct{}), spareOK: true}
	b.cache = grocksdb.NewLRUCache(uint64(cfg.BlockCacheBytes))
	b.bbto = grocksdb.NewDefaultBlockBasedTableOptions()
	b.bbto.SetBlockCache(b.cache)
	b.bbto.SetBlockSize(cfg.BlockSizeBytes)
	if cfg.BloomBitsPerKey > 0 {
		b.bbto.SetFilterPolicy(grocksdb.NewBloomFilterFull(float64(cfg.BloomBitsPerKey)))
	}
	b.bbto.SetCacheIndexAndFilterBlocks(true)
	b.bbto.SetPinL0FilterAndIndexBlocksInCache(true)
	// Partitioned index and filters: a point read loads one small filter
	// and index partition, not a table's whole filter block (hundreds of
	// KiB for a large table), which data blocks would push out of the
	// cache again; only the top-level index stays pinned.
	b.bbto.SetIndexType(grocksdb.KTwoLevelIndexSearchIndexType)
	b.bbto.SetPartitionFilters(true)
	b.bbto.SetMetadataBlockSize(4096)
	b.bbto.SetPinTopLevelIndexAndFilter(true)
	b.bbto.SetCacheIndexAndFilterBlocksWithHighPriority(true)

	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetBlockBasedTableFactory(b.bbto)
	o.SetInfoLogLevel(infoLogLevels[cfg.InfoLogLevel])
	o.SetKeepLogFileNum(2)
	o.SetWriteBufferSize(uint64(cfg.WriteBufferBytes))
	o.SetMaxWriteBufferNumber(cfg.MaxWriteBuffers)
	o.SetMaxBackgroundJobs(cfg.MaxBackgroundJobs)
	o.SetMaxOpenFiles(cfg.MaxOpenFiles)
	o.SetCompression(compressionTypes[cfg.Compression])
	o.SetBottommostCompression(compressionTypes[cfg.BottommostCompression])
	o.SetLevelCompactionDynamicLevelBytes(true)
	o.SetMaxTotalWalSize(uint64(cfg.MaxTotalWALBytes))
	o.SetBytesPerSync(uint64(cfg.BytesPerSync))
	if cfg.NoFlushOnClose {
		// grocksdb has no setter for this DB option; RocksDB's options
		// string is its supported way in.
		no, err := grocksdb.GetOptionsFromString(o, "avoid_flush_during_shutdown=true")
		o.Destroy()
		if err != nil {
			b.bbto.Destroy()
			b.cache.Destroy()
			return nil, fmt.Errorf("rocksdb: options: %w", err)
		}
		o = no
		b.noFlushOnClose = true
	}
	b.opts = o

	db, err := grocksdb.OpenDb(o, dir)
	if err != nil {
		b.destroyOptions()
		return nil, fmt.Errorf("rocksdb: open %q: %w", dir, err)
	}
	b.db = db
	b.ro = grocksdb.NewDefaultReadOptions()
	b.woSync = grocksdb.NewDefaultWriteOptions()
	b.woSync.SetSync(true)
	b.woNoSync = grocksdb.NewDefaultWriteOptions()
	if cfg.DisableWAL {
		b.noWAL = true
		b.woNoSync.DisableWAL(true)
	}
	return b, nil
}

func (b *Backend) destroyOptions() {
	b.opts.Destroy()
	b.bbto.Destroy()
	b.cache.Destroy()
}

// Dir returns the directory the database lives in.
func (b *Backend) Dir() string { return b.dir }

// Get implements backend.Reader.
func (b *Backend) Get(key []byte) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, backend.ErrClosed
	}
	return get(b.db, b.ro, key)
}

func get(db *grocksdb.DB, ro *grocksdb.ReadOptions, key []byte) ([]byte, error) {
	s, err := db.GetPinned(ro, key)
	if err != nil {
		return nil, fmt.Errorf("rocksdb: get: %w", err)
	}
	defer s.Destroy()
	if !s.Exists() {
		return nil, backend.ErrNotFound
	}
	return bytes.Clone(s.Data()), nil
}

// NewIterator implements backend.Reader.
func (b *Backend) NewIterator(opts backend.IterOptions) backend.Iterator {
	return b.newIterator(nil, opts)
}

func (b *Backend) newIterator(snap *grocksdb.Snapshot, opts backend.IterOptions) backend.Iterator {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return &iterator{err: backend.ErrClosed, closed: true}
	}
	ro := grocksdb.NewDefaultReadOptions()
	it := &iterator{b: b, ro: ro}
	if opts.LowerBound != nil {
		it.lower = bytes.Clone(opts.LowerBound)
		ro.SetIterateLowerBound(it.lower)
	}
	if opts.UpperBound != nil {
		it.upper = bytes.Clone(opts.UpperBound)
		ro.SetIterateUpperBound(it.upper)
	}
	if snap != nil {
		ro.SetSnapshot(snap)
	}
	it.it = b.db.NewIterator(ro)
	b.track(it)
	return it
}

// NewSnapshot implements backend.Backend.
func (b *Backend) NewSnapshot() (backend.Snapshot, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, backend.ErrClosed
	}
	s := &snapshot{b: b, snap: b.db.NewSnapshot()}
	s.ro = grocksdb.NewDefaultReadOptions()
	s.ro.SetSnapshot(s.snap)
	b.track(s)
	return s, nil
}

// track adds c to the set Close must release.
func (b *Backend) track(c closer) {
	b.openMu.Lock()
	b.open[c] = struct{}{}
	b.openMu.Unlock()
}

// forget removes c from the set Close must release.
func (b *Backend) forget(c closer) {
	b.openMu.Lock()
	delete(b.open, c)
	b.openMu.Unlock()
}

// NewBatch implements backend.Backend.
func (b *Backend) NewBatch() backend.Batch {
	b.spareMu.Lock()
	defer b.spareMu.Unlock()
	if n := len(b.spare); n > 0 {
		wb := b.spare[n-1]
		b.spare = b.spare[:n-1]
		return &batch{b: b, wb: wb}
	}
	return &batch{b: b, wb: grocksdb.NewWriteBatch()}
}

// recycle keeps wb, which holds about size bytes, for a later NewBatch,
// or destroys it.
func (b *Backend) recycle(wb *grocksdb.WriteBatch, size int) {
	if size <= spareBatchBytes {
		b.spareMu.Lock()
		if b.spareOK && len(b.spare) < spareBatches {
			wb.Clear()
			b.spare = append(b.spare, wb)
			b.spareMu.Unlock()
			return
		}
		b.spareMu.Unlock()
	}
	wb.Destroy()
}

// dropSpares destroys the spare batches; later ones are not kept.
func (b *Backend) dropSpares() {
	b.spareMu.Lock()
	defer b.spareMu.Unlock()
	for _, wb := range b.spare {
		wb.Destroy()
	}
	b.spare, b.spareOK = nil, false
}

// Sync implements backend.Backend: it fsyncs the write-ahead log.
func (b *Backend) Sync() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return backend.ErrClosed
	}
	return b.syncLocked()
}

// syncLocked makes every committed write durable: an fsync of the WAL,
// or a memtable flush without one. The caller holds b.mu.
func (b *Backend) syncLocked() error {
	if b.noWAL {
		fo := grocksdb.NewDefaultFlushOptions()
		defer fo.Destroy()
		fo.SetWait(true)
		if err := b.db.Flush(fo); err != nil {
			return fmt.Errorf("rocksdb: flush memtables: %w", err)
		}
		return nil
	}
	if err := b.db.FlushWAL(true); err != nil {
		return fmt.Errorf("rocksdb: sync wal: %w", err)
	}
	return nil
}

// Compact implements backend.Backend with a manual RocksDB compaction of the
// range. It blocks until the compaction finishes; readers and writers are
// not blocked. RocksDB's C API reports no status for a manual compaction:
// one that fails (no space for its output, an I/O error) only counts a
// background error, so Compact returns an error when that count grew
// while it ran.
func (b *Backend) Compact(start, end []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return backend.ErrClosed
	}
	before := b.intProperty("rocksdb.background-errors")
	b.db.CompactRange(grocksdb.Range{Start: start, Limit: end})
	if after := b.intProperty("rocksdb.background-errors"); after > before {
		return fmt.Errorf("%w: RocksDB counted %d background error(s) while it ran; its LOG in %s says which", ErrCompactionFailed, after-before, b.dir)
	}
	return nil
}

// ErrCompactionFailed is returned by Compact when RocksDB's compaction
// failed.
var ErrCompactionFailed = errors.New("rocksdb: compaction failed")

// Sizes implements backend.Backend. Physical is the sum of the sizes of the
// files in the database directory (plus the memtables with DisableWAL);
// Logical is RocksDB's estimate of live data plus the memtables.
func (b *Backend) Sizes() (backend.Sizes, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return backend.Sizes{}, backend.ErrClosed
	}
	var s backend.Sizes
	s.Logical = b.intProperty("rocksdb.estimate-live-data-size") + b.intProperty("rocksdb.cur-size-all-mem-tables")
	err := filepath.WalkDir(b.dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // files come and go under compaction
		}
		if info, ierr := d.Info(); ierr == nil && !d.IsDir() {
			s.Physical += info.Size()
		}
		return nil
	})
	if b.noWAL {
		// Without a WAL, unflushed writes exist only in the memtables:
		// count them, they are on their way to disk.
		s.Physical += b.intProperty("rocksdb.cur-size-all-mem-tables")
	}
	return s, err
}

func (b *Backend) intProperty(name string) int64 {
	v, err := strconv.ParseInt(b.db.GetProperty(name), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// Close implements backend.Backend. Iterators and snapshots still open are
// released first, after which they report backend.ErrClosed.
func (b *Backend) Close() error {
	// A manual compaction (Compact) holds b.mu for as long as it runs:
	// pause it, so closing does not wait for it to finish (a second or
	// more after a snapshot install). Only the first Close may, while the
	// handle is open.
	if b.closing.CompareAndSwap(false, true) {
		b.db.DisableManualCompaction()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return backend.ErrClosed
	}
	b.closed = true
	b.dropSpares()
	b.openMu.Lock()
	for c := range b.open {
		c.release()
	}
	b.open = map[closer]struct{}{}
	b.openMu.Unlock()
	// What the memtables hold must survive: with a WAL, syncing it is
	// enough (the next Open replays it); without one, flush them. A
	// memtable flush on every close made shutdown take a second or more
	// under load, for a slightly shorter replay.
	var err error
	if b.noFlushOnClose {
		// Nothing: the caller replays what the memtables held.
	} else if b.noWAL {
		fo := grocksdb.NewDefaultFlushOptions()
		fo.SetWait(true)
		err = b.db.Flush(fo)
		fo.Destroy()
	} else {
		err = b.db.FlushWAL(true)
	}
	// Running compactions stop at their next check instead of finishing.
	b.db.CancelAllBackgroundWork(true)
	b.db.Close()
	b.ro.Destroy()
	b.woSync.Destroy()
	b.woNoSync.Destroy()
	b.destroyOptions()
	if err != nil {
		return fmt.Errorf("rocksdb: flush on close: %w", err)
	}
	return nil
}

type snapshot struct {
	b    *Backend
	mu   sync.Mutex // guards snap and ro
	snap *grocksdb.Snapshot
	ro   *grocksdb.ReadOptions
}

func (s *snapshot) Get(key []byte) ([]byte, error) {
	s.b.mu.RLock()
	defer s.b.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil {
		return nil, backend.ErrClosed
	}
	return get(s.b.db, s.ro, key)
}

func (s *snapshot) NewIterator(opts backend.IterOptions) backend.Iterator {
	s.mu.Lock()
	snap := s.snap
	s.mu.Unlock()
	if snap == nil {
		return &iterator{err: backend.ErrClosed, closed: true}
	}
	return s.b.newIterator(snap, opts)
}

// release frees the snapshot; the caller holds b.mu.
func (s *snapshot) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil {
		return
	}
	s.ro.Destroy()
	s.b.db.ReleaseSnapshot(s.snap)
	s.snap, s.ro = nil, nil
}

func (s *snapshot) Close() error {
	s.b.mu.RLock()
	defer s.b.mu.RUnlock()
	s.mu.Lock()
	done := s.snap == nil
	s.mu.Unlock()
	if done {
		return backend.ErrClosed
	}
	s.release()
	s.b.forget(s)
	return nil
}

type batch struct {
	b  *Backend
	wb *grocksdb.WriteBatch
	n  int // bytes of keys and values added (asking RocksDB costs an allocation)
}

func (w *batch) Set(key, value []byte) {
	if w.wb != nil {
		w.wb.Put(key, value)
		w.n += len(key) + len(value)
	}
}

func (w *batch) Delete(key []byte) {
	if w.wb != nil {
		w.wb.Delete(key)
		w.n += len(key)
	}
}

func (w *batch) DeleteRange(start, end []byte) {
	if w.wb != nil && bytes.Compare(start, end) < 0 {
		w.wb.DeleteRange(start, end)
		w.n += len(start) + len(end)
	}
}

func (w *batch) Count() int {
	if w.wb == nil {
		return 0
	}
	return w.wb.Count()
}

func (w *batch) Size() int {
	if w.wb == nil {
		return 0
	}
	return w.n
}

func (w *batch) Commit(sync bool) error {
	if w.wb == nil {
		return backend.ErrBatchCommitted
	}
	defer w.Close()
	b := w.b
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return backend.ErrClosed
	}
	wo := b.woNoSync
	if sync && !b.noWAL {
		wo = b.woSync
	}
	if err := b.db.Write(wo, w.wb); err != nil {
		return fmt.Errorf("rocksdb: write batch: %w", err)
	}
	if sync && b.noWAL {
		return b.syncLocked()
	}
	return nil
}

func (w *batch) Close() {
	if w.wb != nil {
		w.b.recycle(w.wb, w.n)
		w.wb = nil
	}
}

// Property returns a RocksDB property, such as "rocksdb.stats".
func (b *Backend) Property(name string) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ""
	}
	return b.db.GetProperty(name)
}
