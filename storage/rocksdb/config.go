package rocksdb

import (
	"errors"
	"fmt"
)

// Compression names a block compression algorithm.
type Compression string

// Supported compression algorithms.
const (
	CompressionNone   Compression = "none"
	CompressionSnappy Compression = "snappy"
	CompressionLZ4    Compression = "lz4"
	CompressionZSTD   Compression = "zstd"
)

// Defaults for Config fields.
const (
	DefaultBlockCacheBytes   = 128 << 20
	DefaultWriteBufferBytes  = 64 << 20
	DefaultMaxWriteBuffers   = 4
	DefaultMaxBackgroundJobs = 4
	DefaultMaxOpenFiles      = 4096
	DefaultBloomBitsPerKey   = 10
	DefaultBlockSizeBytes    = 16 << 10
	DefaultCompression       = CompressionLZ4
	DefaultBottomCompression = CompressionZSTD
	DefaultInfoLogLevel      = "warn"
	DefaultMaxTotalWALBytes  = 512 << 20
	DefaultBytesPerSyncBytes = 1 << 20
)

// Config tunes the RocksDB engine. The zero value of a field means "use the
// default" unless stated otherwise; DefaultConfig returns the defaults
// spelled out.
type Config struct {
	// BlockCacheBytes is the size of the shared LRU block cache, in bytes.
	// It bounds how much of the data set is kept in memory for reads.
	// Default 128 MiB.
	BlockCacheBytes int64
	// WriteBufferBytes is the size of one memtable, in bytes. Default 64 MiB.
	WriteBufferBytes int64
	// MaxWriteBuffers is the number of memtables (active + immutable) kept
	// before writes stall, at least 2. Default 4.
	MaxWriteBuffers int
	// MaxBackgroundJobs bounds concurrent flushes and compactions. Default 4.
	MaxBackgroundJobs int
	// MaxOpenFiles bounds the table files kept open; -1 means unlimited.
	// Default 4096.
	MaxOpenFiles int
	// BloomBitsPerKey sizes the per-table bloom filters used by point reads;
	// 0 takes the default (10), a negative value disables them.
	BloomBitsPerKey int
	// BlockSizeBytes is the uncompressed size of a data block. Default 16 KiB.
	BlockSizeBytes int
	// Compression is used for every level but the last. Default lz4.
	Compression Compression
	// BottommostCompression is used for the last level. Default zstd.
	BottommostCompression Compression
	// MaxTotalWALBytes forces memtable flushes once the write-ahead logs
	// exceed it, in bytes. Default 512 MiB.
	MaxTotalWALBytes int64
	// BytesPerSync makes RocksDB sync table files incrementally every this
	// many bytes, smoothing I/O. Default 1 MiB.
	BytesPerSync int64
	// InfoLogLevel is RocksDB's own LOG verbosity: debug, info, warn, error
	// or fatal. Default warn.
	InfoLogLevel string
	// DisableWAL makes writes skip RocksDB's write-ahead log: a write is a
	// memtable insert, and a crash loses everything not yet flushed to
	// table files (always a prefix of the writes). Sync, and Commit with
	// sync, flush the memtables instead of syncing a log. For callers
	// with a log of their own that replay what a crash loses — the Raft
	// log under the server, which never compacts past what Sync covered.
	DisableWAL bool
	// NoFlushOnClose makes Close leave the memtables as they are (RocksDB's
	// own flush at shutdown is skipped too), so closing writes no new file:
	// it is quick under load and still succeeds if the directory was
	// removed under a stopping process. With DisableWAL, what the memtables
	// held is lost at Close exactly as at a crash; for callers that replay
	// it from a log of their own, as the server does from the Raft log.
	NoFlushOnClose bool
}

// DefaultConfig returns a Config with every field set to its default.
func DefaultConfig() Config {
	return Config{
		BlockCacheBytes:       DefaultBlockCacheBytes,
		WriteBufferBytes:      DefaultWriteBufferBytes,
		MaxWriteBuffers:       DefaultMaxWriteBuffers,
		MaxBackgroundJobs:     DefaultMaxBackgroundJobs,
		MaxOpenFiles:          DefaultMaxOpenFiles,
		BloomBitsPerKey:       DefaultBloomBitsPerKey,
		BlockSizeBytes:        DefaultBlockSizeBytes,
		Compression:           DefaultCompression,
		BottommostCompression: DefaultBottomCompression,
		MaxTotalWALBytes:      DefaultMaxTotalWALBytes,
		BytesPerSync:          DefaultBytesPerSyncBytes,
		InfoLogLevel:          DefaultInfoLogLevel,
	}
}

// withDefaults returns a copy of c with zero fields filled in.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDefault(&c.BlockCacheBytes, d.BlockCacheBytes)
	setDefault(&c.WriteBufferBytes, d.WriteBufferBytes)
	setDefault(&c.MaxWriteBuffers, d.MaxWriteBuffers)
	setDefault(&c.MaxBackgroundJobs, d.MaxBackgroundJobs)
	setDefault(&c.MaxOpenFiles, d.MaxOpenFiles)
	setDefault(&c.BloomBitsPerKey, d.BloomBitsPerKey)
	setDefault(&c.BlockSizeBytes, d.BlockSizeBytes)
	setDefault(&c.Compression, d.Compression)
	setDefault(&c.BottommostCompression, d.BottommostCompression)
	setDefault(&c.MaxTotalWALBytes, d.MaxTotalWALBytes)
	setDefault(&c.BytesPerSync, d.BytesPerSync)
	setDefault(&c.InfoLogLevel, d.InfoLogLevel)
	return c
}

// Validate reports every invalid field at once. Zero values are valid (they
// mean "default"). It does not modify c.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.BlockCacheBytes < 0 {
		bad("rocksdb: BlockCacheBytes must be >= 0, got %d", c.BlockCacheBytes)
	}
	if c.WriteBufferBytes < 0 || (c.WriteBufferBytes > 0 && c.WriteBufferBytes < 64<<10) {
		bad("rocksdb: WriteBufferBytes must be 0 (default) or >= 64 KiB, got %d", c.WriteBufferBytes)
	}
	if c.MaxWriteBuffers < 0 || c.MaxWriteBuffers == 1 {
		bad("rocksdb: MaxWriteBuffers must be 0 (default) or >= 2, got %d", c.MaxWriteBuffers)
	}
	if c.MaxBackgroundJobs < 0 {
		bad("rocksdb: MaxBackgroundJobs must be >= 0, got %d", c.MaxBackgroundJobs)
	}
	if c.MaxOpenFiles < -1 || (c.MaxOpenFiles > 0 && c.MaxOpenFiles < 16) {
		bad("rocksdb: MaxOpenFiles must be -1, 0 (default) or >= 16, got %d", c.MaxOpenFiles)
	}
	if c.BlockSizeBytes < 0 || c.BlockSizeBytes > 1<<30 {
		bad("rocksdb: BlockSizeBytes must be in [0, 1 GiB], got %d", c.BlockSizeBytes)
	}
	for name, v := range map[string]Compression{"Compression": c.Compression, "BottommostCompression": c.BottommostCompression} {
		if _, ok := compressionTypes[v]; !ok && v != "" {
			bad("rocksdb: %s must be one of none, snappy, lz4, zstd, got %q", name, v)
		}
	}
	if c.MaxTotalWALBytes < 0 {
		bad("rocksdb: MaxTotalWALBytes must be >= 0, got %d", c.MaxTotalWALBytes)
	}
	if c.BytesPerSync < 0 {
		bad("rocksdb: BytesPerSync must be >= 0, got %d", c.BytesPerSync)
	}
	if _, ok := infoLogLevels[c.InfoLogLevel]; !ok && c.InfoLogLevel != "" {
		bad("rocksdb: InfoLogLevel must be one of debug, info, warn, error, fatal, got %q", c.InfoLogLevel)
	}
	return errors.Join(errs...)
}

// setDefault sets *field to def when it holds its zero value.
func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
