package rocksdb_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage/backend"
	"github.com/metastore/metastore/storage/rocksdb"
)

func benchBackend(b *testing.B) *rocksdb.Backend {
	be, err := rocksdb.Open(b.TempDir(), rocksdb.DefaultConfig())
	require.NoError(b, err)
	b.Cleanup(func() { _ = be.Close() })
	wb := be.NewBatch()
	for i := range 100000 {
		wb.Set(fmt.Appendf(nil, "key-%08d", i), make([]byte, 256))
	}
	require.NoError(b, wb.Commit(false))
	return be
}

func BenchmarkBackend_Get(b *testing.B) {
	be := benchBackend(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := be.Get(fmt.Appendf(nil, "key-%08d", i%100000)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkBackend_SnapshotGet(b *testing.B) {
	be := benchBackend(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s, err := be.NewSnapshot()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Get(fmt.Appendf(nil, "key-%08d", i%100000)); err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
		i++
	}
}

func BenchmarkBackend_IteratorSeek(b *testing.B) {
	be := benchBackend(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := fmt.Appendf(nil, "key-%08d", i%100000)
		it := be.NewIterator(backend.IterOptions{LowerBound: k, UpperBound: append(k, 0xff)})
		if !it.First() {
			b.Fatal("missing")
		}
		_ = it.Close()
		i++
	}
}

func BenchmarkBackend_Commit(b *testing.B) {
	be := benchBackend(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		wb := be.NewBatch()
		wb.Set(fmt.Appendf(nil, "key-%08d", i%100000), make([]byte, 256))
		if err := wb.Commit(false); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkBackend_Commit100(b *testing.B) {
	be := benchBackend(b)
	b.ReportAllocs()
	i := 0
	val := make([]byte, 256)
	for b.Loop() {
		wb := be.NewBatch()
		for range 100 {
			wb.Set(fmt.Appendf(nil, "key-%08d", i%100000), val)
			i++
		}
		if err := wb.Commit(false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBackend_CommitEntries commits what the server's apply writes
// for one put (four keys: the latest version, the older one, the history
// entry, the consistent index; about 300 bytes each) for entries=N puts
// in one batch, as one batch per Raft Ready would: ns/entry measures what
// grouping the apply's batches could save (the part per batch, not per
// key). WAL off, as the server runs it.
func BenchmarkBackend_CommitEntries(b *testing.B) {
	for _, entries := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) {
			cfg := rocksdb.DefaultConfig()
			cfg.DisableWAL = true
			be, err := rocksdb.Open(b.TempDir(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = be.Close() })
			b.ReportAllocs()
			val := make([]byte, 280)
			var k []byte
			n := 0
			for b.Loop() {
				wb := be.NewBatch()
				for range entries {
					for j := range 4 {
						n++
						k = fmt.Appendf(k[:0], "%c/registry/pods/default/pod-%08d", 'a'+j, n%400000)
						wb.Set(k, val)
					}
				}
				if err := wb.Commit(false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*entries), "ns/entry")
		})
	}
}
