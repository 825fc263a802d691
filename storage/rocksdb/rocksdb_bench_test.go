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
