package rocksdb_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage/backend"
	"github.com/metastore/metastore/storage/backend/backendtest"
	"github.com/metastore/metastore/storage/rocksdb"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(tb testing.TB) backend.Backend {
		b, err := rocksdb.Open(tb.TempDir(), rocksdb.Config{BlockCacheBytes: 8 << 20, WriteBufferBytes: 1 << 20})
		require.NoError(tb, err)
		return b
	})
}

func TestConformanceWithoutWAL(t *testing.T) {
	backendtest.Run(t, func(tb testing.TB) backend.Backend {
		b, err := rocksdb.Open(tb.TempDir(), rocksdb.Config{BlockCacheBytes: 8 << 20, WriteBufferBytes: 1 << 20, DisableWAL: true})
		require.NoError(tb, err)
		return b
	})
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	b, err := rocksdb.Open(dir, rocksdb.Config{})
	require.NoError(t, err)
	wb := b.NewBatch()
	wb.Set([]byte("k"), []byte("v"))
	require.NoError(t, wb.Commit(true))
	require.NoError(t, b.Close())
	b, err = rocksdb.Open(dir, rocksdb.Config{})
	require.NoError(t, err)
	defer b.Close()
	v, err := b.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, rocksdb.Config{}.Validate())
	require.NoError(t, rocksdb.DefaultConfig().Validate())
	err := rocksdb.Config{
		BlockCacheBytes: -1,
		MaxWriteBuffers: 1,
		Compression:     "gzip",
		InfoLogLevel:    "loud",
	}.Validate()
	require.Error(t, err)
	for _, field := range []string{"BlockCacheBytes", "MaxWriteBuffers", "Compression", "InfoLogLevel"} {
		require.Contains(t, err.Error(), field, "every invalid field is reported")
	}
	_, err = rocksdb.Open(t.TempDir(), rocksdb.Config{Compression: "gzip"})
	require.Error(t, err)
}

func TestProperty(t *testing.T) {
	b, err := rocksdb.Open(t.TempDir(), rocksdb.Config{})
	require.NoError(t, err)
	require.Contains(t, b.Property("rocksdb.stats"), "Cumulative writes")
	require.NoError(t, b.Close())
	require.Empty(t, b.Property("rocksdb.stats"), "closed")
}

// TestNoFlushOnClose checks that Close with NoFlushOnClose writes nothing:
// it succeeds although the directory is gone (a flush there fails, after
// RocksDB's one-second error-recovery wait), and what was not synced is
// lost as at a crash while what Sync covered stays.
func TestNoFlushOnClose(t *testing.T) {
	cfg := rocksdb.Config{DisableWAL: true, NoFlushOnClose: true}
	dir := filepath.Join(t.TempDir(), "db")
	b, err := rocksdb.Open(dir, cfg)
	require.NoError(t, err)
	wb := b.NewBatch()
	wb.Set([]byte("synced"), []byte("v"))
	require.NoError(t, wb.Commit(true))
	wb = b.NewBatch()
	wb.Set([]byte("unsynced"), []byte("v"))
	require.NoError(t, wb.Commit(false))
	require.NoError(t, b.Close())

	b, err = rocksdb.Open(dir, cfg)
	require.NoError(t, err)
	v, err := b.Get([]byte("synced"))
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	_, err = b.Get([]byte("unsynced"))
	require.ErrorIs(t, err, backend.ErrNotFound, "Close flushed the memtable")

	wb = b.NewBatch()
	wb.Set([]byte("k"), []byte("v"))
	require.NoError(t, wb.Commit(false))
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, b.Close(), "Close touched the removed directory")
}

// TestCloseFlushesWithoutWAL is the default's side: without a WAL, Close
// flushes, so nothing written is lost.
func TestCloseFlushesWithoutWAL(t *testing.T) {
	cfg := rocksdb.Config{DisableWAL: true}
	dir := t.TempDir()
	b, err := rocksdb.Open(dir, cfg)
	require.NoError(t, err)
	wb := b.NewBatch()
	wb.Set([]byte("k"), []byte("v"))
	require.NoError(t, wb.Commit(false))
	require.NoError(t, b.Close())
	b, err = rocksdb.Open(dir, cfg)
	require.NoError(t, err)
	defer b.Close()
	v, err := b.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
}
