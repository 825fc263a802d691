package storage_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/backend"
	"github.com/metastore/metastore/storage/memory"
	"github.com/metastore/metastore/storage/rocksdb"
)

// engine opens backends of one kind; reopen is nil for engines that do not
// persist.
type engine struct {
	name string
	open func(tb testing.TB, dir string) backend.Backend
}

var engines = []engine{
	{"memory", func(testing.TB, string) backend.Backend { return memory.New() }},
	{"rocksdb", func(tb testing.TB, dir string) backend.Backend {
		b, err := rocksdb.Open(dir, rocksdb.Config{BlockCacheBytes: 8 << 20, WriteBufferBytes: 4 << 20})
		require.NoError(tb, err)
		return b
	}},
}

// forEachEngine runs fn once per engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { fn(t, e) })
	}
}

func testConfig(tb testing.TB) storage.Config {
	return storage.Config{
		Logger:                  zaptest.NewLogger(tb),
		CompactionBatchLimit:    7, // small, so tests cross batch boundaries
		CompactionSleepInterval: -1,
		WatchResyncInterval:     5e6, // 5 ms
	}
}

// newStore opens a fresh store on engine e and closes it at cleanup.
func newStore(t testing.TB, e engine) *storage.Store {
	t.Helper()
	s, err := storage.Open(e.open(t, t.TempDir()), testConfig(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func put(t testing.TB, s *storage.Store, k, v string) int64 {
	t.Helper()
	rev, err := s.Put([]byte(k), []byte(v), 0)
	require.NoError(t, err)
	return rev
}

// get returns the value of k at rev, and whether it exists.
func get(t testing.TB, s *storage.Store, k string, rev int64) (string, bool) {
	t.Helper()
	res, err := s.Range([]byte(k), nil, storage.RangeOptions{Rev: rev})
	require.NoError(t, err)
	if len(res.KVs) == 0 {
		return "", false
	}
	return string(res.KVs[0].Value), true
}

// keys returns the keys of a range result.
func keys(res *storage.RangeResult) []string {
	var out []string
	for _, kv := range res.KVs {
		out = append(out, string(kv.Key))
	}
	return out
}
