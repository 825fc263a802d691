package storage_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/rocksdb"
)

// benchStore opens a store for a benchmark; sync selects fsync per txn.
func benchStore(b *testing.B, e engine, sync bool) *storage.Store {
	s, err := storage.Open(e.open(b, b.TempDir()), storage.Config{NoSync: !sync})
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// preload writes n keys of 256 B, versions versions each, in big txns.
func preload(b *testing.B, s *storage.Store, n, versions int) {
	val := make([]byte, 256)
	for v := range versions {
		for i := 0; i < n; i += 1000 {
			tw, err := s.Write()
			require.NoError(b, err)
			for j := i; j < min(i+1000, n); j++ {
				val[0] = byte(v)
				_, err := tw.Put(benchKey(j), val, 0)
				require.NoError(b, err)
			}
			_, err = tw.End()
			require.NoError(b, err)
		}
	}
}

func benchKey(i int) []byte { return fmt.Appendf(nil, "/registry/pods/default/pod-%08d", i) }

// appendPadded appends v in decimal, zero-padded to width digits, as
// fmt's %0*d but without boxing v.
func appendPadded(b []byte, v uint64, width int) []byte {
	var d [20]byte
	n := len(strconv.AppendUint(d[:0], v, 10))
	for ; n < width; n++ {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, v, 10)
}

func BenchmarkStore_Put(b *testing.B) {
	for _, e := range engines {
		for _, sync := range []bool{false, true} {
			if sync && e.name == "memory" {
				continue
			}
			b.Run(fmt.Sprintf("engine=%s/sync=%v", e.name, sync), func(b *testing.B) {
				s := benchStore(b, e, sync)
				val := make([]byte, 256)
				b.ReportAllocs()
				b.SetBytes(256)
				i := 0
				for b.Loop() {
					if _, err := s.Put(benchKey(i%100000), val, 0); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkStore_PutParallel shows group commit: concurrent fsynced writers
// share fsyncs.
func BenchmarkStore_PutParallel(b *testing.B) {
	e := engines[1]
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("engine=%s/sync=%v", e.name, sync), func(b *testing.B) {
			s := benchStore(b, e, sync)
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				val := make([]byte, 256)
				for pb.Next() {
					if _, err := s.Put(benchKey(int(n.Add(1)%100000)), val, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkStore_TxnPut(b *testing.B) {
	for _, e := range engines {
		for _, ops := range []int{10, 100} {
			b.Run(fmt.Sprintf("engine=%s/ops=%d", e.name, ops), func(b *testing.B) {
				s := benchStore(b, e, false)
				val := make([]byte, 256)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					tw, err := s.Write()
					if err != nil {
						b.Fatal(err)
					}
					for range ops {
						if _, err := tw.Put(benchKey(i%100000), val, 0); err != nil {
							b.Fatal(err)
						}
						i++
					}
					if _, err := tw.End(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkStore_Range(b *testing.B) {
	const keys, versions = 20000, 5
	for _, e := range engines {
		s := benchStore(b, e, false)
		preload(b, s, keys, versions)
		oldRev := s.Rev() - int64(keys*(versions-1)/2) // mid-history
		cases := []struct {
			name  string
			width int
			rev   int64
		}{
			{"get/rev=latest", 1, 0},
			{"get/rev=old", 1, oldRev},
			{"range100/rev=latest", 100, 0},
			{"range100/rev=old", 100, oldRev},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("engine=%s/%s", e.name, c.name), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 1))
				b.ReportAllocs()
				for b.Loop() {
					i := rng.IntN(keys - c.width)
					var end []byte
					if c.width > 1 {
						end = benchKey(i + c.width)
					}
					res, err := s.Range(benchKey(i), end, storage.RangeOptions{Rev: c.rev})
					if err != nil || len(res.KVs) != c.width {
						b.Fatalf("%v %d", err, len(res.KVs))
					}
				}
			})
		}
	}
}

// BenchmarkStore_Compact reports the time to compact away one superseded
// version (ns/op is per history entry removed).
func BenchmarkStore_Compact(b *testing.B) {
	for _, e := range engines {
		b.Run("engine="+e.name, func(b *testing.B) {
			s, err := storage.Open(e.open(b, b.TempDir()), storage.Config{NoSync: true, CompactionSleepInterval: -1})
			require.NoError(b, err)
			defer s.Close()
			keys := max(b.N/4, 1)
			preload(b, s, keys, 4)
			b.ReportAllocs()
			b.ResetTimer()
			done, err := s.Compact(s.Rev())
			require.NoError(b, err)
			<-done
		})
	}
}

// BenchmarkStore_WatchFanout measures one put delivered to many watchers of
// the same key (ns/op is per put, all deliveries included).
func BenchmarkStore_WatchFanout(b *testing.B) {
	for _, e := range engines {
		for _, watchers := range []int{100, 10000} {
			b.Run(fmt.Sprintf("engine=%s/watchers=%d", e.name, watchers), func(b *testing.B) {
				s := benchStore(b, e, false)
				streams := make([]*storage.WatchStream, 10)
				for i := range streams {
					streams[i] = s.NewWatchStream(4096)
					defer streams[i].Close()
					for range watchers / len(streams) {
						if _, err := streams[i].Watch(storage.WatchOptions{Key: []byte("hot")}); err != nil {
							b.Fatal(err)
						}
					}
				}
				val := make([]byte, 256)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Put([]byte("hot"), val, 0); err != nil {
						b.Fatal(err)
					}
					for _, ws := range streams {
						for range watchers / len(streams) {
							<-ws.Chan()
						}
					}
				}
			})
		}
	}
}

// BenchmarkStore_ApplyPut is one put as the server applies it under Raft:
// RocksDB with the server's settings (no WAL, no fsync: the Raft log is the
// durability point), the consistent index in the same batch, 256-byte
// values, keys cycling over 100,000 already written (each put supersedes
// a version written 100,000 puts before, as etcd benchmark's put).
func BenchmarkStore_ApplyPut(b *testing.B) {
	for _, existing := range []bool{true, false} {
		b.Run(fmt.Sprintf("existing=%v", existing), func(b *testing.B) { benchApplyPut(b, existing) })
	}
}

// benchApplyPut supersedes keys written 100,000 puts before, or (existing
// false) writes keys never written: etcd benchmark's put with --total
// equal to --key-space-size inserts only.
func benchApplyPut(b *testing.B, existing bool) {
	rc := rocksdb.DefaultConfig()
	rc.DisableWAL = true
	be, err := rocksdb.Open(b.TempDir(), rc)
	require.NoError(b, err)
	s, err := storage.Open(be, storage.Config{NoSync: true})
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	const keys = 100000
	preload(b, s, keys, 1)
	// The keys are formatted into one buffer, so that the allocations
	// reported are the store's alone.
	var kb []byte
	key := func(i uint64) []byte {
		kb = appendPadded(append(kb[:0], "/registry/pods/default/pod-"...), i%keys, 8)
		return kb
	}
	if !existing {
		key = func(i uint64) []byte {
			kb = appendPadded(append(kb[:0], "/registry/new/default/pod-"...), i, 10)
			return kb
		}
	}
	val := make([]byte, 256)
	b.ReportAllocs()
	i := uint64(1)
	for b.Loop() {
		tw, err := s.Write()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Put(key(i), val, 0); err != nil {
			b.Fatal(err)
		}
		tw.SetConsistentIndex(storage.ConsistentIndex{Index: i, Term: 2})
		if _, err := tw.End(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
