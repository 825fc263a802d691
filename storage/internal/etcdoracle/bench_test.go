package etcdoracle

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.etcd.io/etcd/pkg/v3/traceutil"
	"go.etcd.io/etcd/server/v3/lease"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.uber.org/zap"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/rocksdb"
)

// kvStore is the part of both stores the side-by-side benchmarks use.
type kvStore interface {
	put(key, value []byte)
	txnPut(keys [][]byte, value []byte)
	get(key, end []byte, rev int64) int
	rev() int64
}

type etcdBench struct{ s mvcc.KV }

func (e etcdBench) put(k, v []byte) { e.s.Put(k, v, lease.NoLease) }
func (e etcdBench) txnPut(ks [][]byte, v []byte) {
	tw := e.s.Write(traceutil.TODO())
	for _, k := range ks {
		tw.Put(k, v, lease.NoLease)
	}
	tw.End()
}
func (e etcdBench) get(k, end []byte, rev int64) int {
	rr, err := e.s.Range(context.Background(), k, end, mvcc.RangeOptions{Rev: rev, WithTotalCount: true})
	if err != nil {
		panic(err)
	}
	return len(rr.KVs)
}
func (e etcdBench) rev() int64 { return e.s.Rev() }

type ourBench struct{ s *storage.Store }

func (o ourBench) put(k, v []byte) {
	if _, err := o.s.Put(k, v, 0); err != nil {
		panic(err)
	}
}
func (o ourBench) txnPut(ks [][]byte, v []byte) {
	tw, err := o.s.Write()
	if err != nil {
		panic(err)
	}
	for _, k := range ks {
		if _, err := tw.Put(k, v, 0); err != nil {
			panic(err)
		}
	}
	if _, err := tw.End(); err != nil {
		panic(err)
	}
}
func (o ourBench) get(k, end []byte, rev int64) int {
	res, err := o.s.Range(k, end, storage.RangeOptions{Rev: rev})
	if err != nil {
		panic(err)
	}
	return len(res.KVs)
}
func (o ourBench) rev() int64 { return o.s.Rev() }

// stores opens each store under test. Neither fsyncs per write here: etcd's
// mvcc commits bbolt in the background every 100 ms (the Raft WAL is its
// durability point), so ours runs with NoSync, as the server will.
func stores(b *testing.B) []struct {
	name string
	s    kvStore
} {
	bcfg := backend.DefaultBackendConfig(zap.NewNop())
	bcfg.Path = b.TempDir() + "/db"
	be := backend.New(bcfg)
	es := mvcc.NewStore(zap.NewNop(), be, &lease.FakeLessor{}, mvcc.StoreConfig{})
	b.Cleanup(func() { es.Close(); be.Close() })
	eng, err := rocksdb.Open(b.TempDir(), rocksdb.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	ours, err := storage.Open(eng, storage.Config{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ours.Close() })
	return []struct {
		name string
		s    kvStore
	}{{"etcd-mvcc-bbolt", etcdBench{es}}, {"metastore-rocksdb", ourBench{ours}}}
}

func benchKey(i int) []byte { return fmt.Appendf(nil, "/registry/pods/default/pod-%08d", i) }

func BenchmarkSideBySide_Put(b *testing.B) {
	for _, st := range stores(b) {
		b.Run("store="+st.name, func(b *testing.B) {
			val := make([]byte, 256)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				st.s.put(benchKey(i%100000), val)
				i++
			}
		})
	}
}

func BenchmarkSideBySide_TxnPut10(b *testing.B) {
	for _, st := range stores(b) {
		b.Run("store="+st.name, func(b *testing.B) {
			val := make([]byte, 256)
			ks := make([][]byte, 10)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for j := range ks {
					ks[j] = benchKey(i % 100000)
					i++
				}
				st.s.txnPut(ks, val)
			}
		})
	}
}

func BenchmarkSideBySide_Range(b *testing.B) {
	const keys, versions = 20000, 5
	for _, st := range stores(b) {
		val := make([]byte, 256)
		ks := make([][]byte, 0, 1000)
		for range versions {
			for i := 0; i < keys; i += 1000 {
				ks = ks[:0]
				for j := i; j < i+1000; j++ {
					ks = append(ks, benchKey(j))
				}
				st.s.txnPut(ks, val)
			}
		}
		old := st.s.rev() - 40
		for _, c := range []struct {
			name  string
			width int
			rev   int64
		}{{"get/rev=latest", 1, 0}, {"get/rev=old", 1, old}, {"range100/rev=latest", 100, 0}, {"range100/rev=old", 100, old}} {
			b.Run(fmt.Sprintf("store=%s/%s", st.name, c.name), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 1))
				b.ReportAllocs()
				for b.Loop() {
					i := rng.IntN(keys - c.width)
					var end []byte
					if c.width > 1 {
						end = benchKey(i + c.width)
					}
					if n := st.s.get(benchKey(i), end, c.rev); n != c.width {
						b.Fatalf("got %d keys", n)
					}
				}
			})
		}
	}
}
