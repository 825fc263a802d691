package storage

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Defaults for Config fields.
const (
	// DefaultMaxKeyBytes matches etcd's default request size limit.
	DefaultMaxKeyBytes = 3 << 19 // 1.5 MiB
	// DefaultMaxValueBytes bounds a single value.
	DefaultMaxValueBytes = 64 << 20
	// DefaultCompactionBatchLimit is the number of history entries one
	// compaction batch examines before it commits and yields.
	DefaultCompactionBatchLimit = 1000
	// DefaultCompactionSleepInterval is the pause between compaction batches.
	DefaultCompactionSleepInterval = 10 * time.Millisecond
	// DefaultWatchResyncInterval is how often unsynced watchers catch up.
	DefaultWatchResyncInterval = 100 * time.Millisecond
	// DefaultWatchBatchMaxRevs bounds the revisions in one catch-up response.
	DefaultWatchBatchMaxRevs = 1000
	// DefaultMaxWatchersPerSync bounds the watchers one catch-up round serves.
	DefaultMaxWatchersPerSync = 512
	// DefaultWatchStreamBuffer is the channel capacity of a WatchStream.
	DefaultWatchStreamBuffer = 128
	// DefaultLatestCacheEntries is how many keys' latest versions the
	// write path keeps in memory (records up to latestCacheMaxRecord
	// bytes): about 60 MiB with 256-byte values.
	DefaultLatestCacheEntries = 128 << 10
)

// latestCacheMaxRecord is the largest record the latest-version cache
// keeps; bigger values are read from the engine when superseded.
const latestCacheMaxRecord = 1 << 10

// Config tunes a Store. A zero field takes its default.
type Config struct {
	// Logger receives the store's logs. Nil means no logging.
	Logger *zap.Logger
	// NoSync skips the fsync at the end of each write transaction. Set it
	// only when something else makes writes durable (the Raft log does for
	// MetaStore's server); otherwise a crash can lose acknowledged writes.
	NoSync bool
	// MaxKeyBytes bounds key length. Default 1.5 MiB.
	MaxKeyBytes int
	// MaxValueBytes bounds value length. Default 64 MiB.
	MaxValueBytes int
	// CompactionBatchLimit is the number of history entries a compaction
	// batch examines before committing and sleeping. Default 1000.
	CompactionBatchLimit int
	// CompactionSleepInterval is the pause between compaction batches, so
	// compaction never hogs the engine. Default 10 ms; negative means none.
	CompactionSleepInterval time.Duration
	// WatchResyncInterval is how often unsynced watchers catch up from
	// history. Default 100 ms.
	WatchResyncInterval time.Duration
	// WatchBatchMaxRevs bounds the revisions in one catch-up response.
	// Default 1000.
	WatchBatchMaxRevs int
	// MaxWatchersPerSync bounds the watchers served per catch-up round.
	// Default 512.
	MaxWatchersPerSync int
	// LatestCacheEntries bounds the cache of keys' latest versions that
	// spares a write the engine read of the version it supersedes (LRU;
	// records over 1 KiB are not cached). Default 131072; negative turns
	// the cache off.
	LatestCacheEntries int
	// Observer hears about compaction as it runs (MetaStore's server
	// feeds etcd's etcd_debugging_mvcc_*compaction* metrics from it).
	Observer Observer
}

// Observer is told about the store's background work as it happens. Nil
// fields are not called. The calls come from the store's own goroutines
// and must not block.
type Observer struct {
	// CompactionPause is called with each stretch compaction held
	// writers off: scheduled is true for Compact itself (which records
	// the revision and takes the hash), false for each removal batch
	// committed under the write lock.
	CompactionPause func(scheduled bool, d time.Duration)
	// CompactionDone is called when the removal for a compaction at rev
	// finished: how long it ran and how many engine records it deleted.
	CompactionDone func(rev int64, took time.Duration, deleted int)
}

// DefaultConfig returns a Config with every default spelled out.
func DefaultConfig() Config {
	return Config{
		MaxKeyBytes:             DefaultMaxKeyBytes,
		MaxValueBytes:           DefaultMaxValueBytes,
		CompactionBatchLimit:    DefaultCompactionBatchLimit,
		CompactionSleepInterval: DefaultCompactionSleepInterval,
		WatchResyncInterval:     DefaultWatchResyncInterval,
		WatchBatchMaxRevs:       DefaultWatchBatchMaxRevs,
		MaxWatchersPerSync:      DefaultMaxWatchersPerSync,
		LatestCacheEntries:      DefaultLatestCacheEntries,
	}
}

// Validate reports every invalid field at once; it does not modify c.
func (c Config) Validate() error {
	var errs []error
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("storage: %s must be >= 0, got %d", name, v))
		}
	}
	neg("MaxKeyBytes", int64(c.MaxKeyBytes))
	neg("MaxValueBytes", int64(c.MaxValueBytes))
	neg("CompactionBatchLimit", int64(c.CompactionBatchLimit))
	neg("WatchResyncInterval", int64(c.WatchResyncInterval))
	neg("WatchBatchMaxRevs", int64(c.WatchBatchMaxRevs))
	neg("MaxWatchersPerSync", int64(c.MaxWatchersPerSync))
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	setDefault(&c.MaxKeyBytes, d.MaxKeyBytes)
	setDefault(&c.MaxValueBytes, d.MaxValueBytes)
	setDefault(&c.CompactionBatchLimit, d.CompactionBatchLimit)
	setDefault(&c.CompactionSleepInterval, d.CompactionSleepInterval)
	setDefault(&c.WatchResyncInterval, d.WatchResyncInterval)
	setDefault(&c.WatchBatchMaxRevs, d.WatchBatchMaxRevs)
	setDefault(&c.MaxWatchersPerSync, d.MaxWatchersPerSync)
	setDefault(&c.LatestCacheEntries, d.LatestCacheEntries)
	return c
}

// setDefault sets *field to def when it holds its zero value.
func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
