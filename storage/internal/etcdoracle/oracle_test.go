package etcdoracle

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/pkg/v3/traceutil"
	"go.etcd.io/etcd/server/v3/lease"
	betesting "go.etcd.io/etcd/server/v3/storage/backend/testing"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.uber.org/zap"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/memory"
	"github.com/metastore/metastore/storage/rocksdb"
)

// op is one random operation.
type op struct {
	kind      string
	key, end  []byte
	value     []byte
	lease     int64
	rev       int64
	limit     int64
	countOnly bool
	puts      int
	deletes   int
}

func randomOp(rng *rand.Rand, cur int64) op {
	key := func() []byte {
		k := []byte(fmt.Sprintf("k%02d", rng.IntN(20)))
		if rng.IntN(10) == 0 {
			k = append(k, 0, byte(rng.IntN(3)))
		}
		return k
	}
	past := func() int64 { return cur - int64(rng.IntN(int(min(cur, 30)))) }
	switch r := rng.IntN(100); {
	case r < 40:
		return op{kind: "put", key: key(), value: []byte(fmt.Sprint(rng.Int64())), lease: int64(rng.IntN(3))}
	case r < 50:
		var end []byte
		switch rng.IntN(3) {
		case 0:
			end = key()
		case 1:
			end = []byte{0}
		}
		return op{kind: "delete", key: key(), end: end}
	case r < 60:
		return op{kind: "txn", key: key(), end: key(), puts: rng.IntN(4), deletes: rng.IntN(2), value: []byte(fmt.Sprint(rng.Int64()))}
	case r < 64:
		return op{kind: "compact", rev: past() + int64(rng.IntN(3)) - 1}
	case r < 68:
		return op{kind: "hash", rev: past() + int64(rng.IntN(3)) - 1}
	default:
		end := key()
		switch rng.IntN(4) {
		case 0:
			end = nil
		case 1:
			end = []byte{0}
		}
		return op{kind: "range", key: key(), end: end, rev: past() + int64(rng.IntN(3)) - 1, limit: int64(rng.IntN(4)), countOnly: rng.IntN(8) == 0}
	}
}

// etcdEnd converts our "\x00 means from key" convention to etcd mvcc's
// (an empty, non-nil end), as etcd's server does.
func etcdEnd(end []byte) []byte {
	if len(end) == 1 && end[0] == 0 {
		return []byte{}
	}
	if len(end) == 0 {
		return nil
	}
	return end
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}

func kvText(kvs []*mvccpb.KeyValue) string {
	var b bytes.Buffer
	for _, kv := range kvs {
		fmt.Fprintf(&b, "%q=%q c%d m%d v%d l%d; ", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	return b.String()
}

// rangeText renders a range the way the KV service answers it: limit+1
// fetched to compute More, as etcd's apply layer does.
func rangeText(kvs []*mvccpb.KeyValue, count int64, more bool, rev int64) string {
	return fmt.Sprintf("rev=%d count=%d more=%v %s", rev, count, more, kvText(kvs))
}

type etcdKV struct{ s mvcc.WatchableKV }

func (e etcdKV) rangeOn(r interface {
	Range(context.Context, []byte, []byte, mvcc.RangeOptions) (*mvcc.RangeResult, error)
}, o op, rev int64) string {
	limit := o.limit
	if limit > 0 {
		limit++
	}
	rr, err := r.Range(context.Background(), o.key, etcdEnd(o.end), mvcc.RangeOptions{Rev: rev, Limit: limit, CountOnly: o.countOnly, WithTotalCount: true})
	if err != nil {
		return errText(err)
	}
	more := false
	if o.limit > 0 && int64(len(rr.KVs)) > o.limit {
		rr.KVs, more = rr.KVs[:o.limit], true
	}
	return rangeText(rr.KVs, int64(rr.Count), more, rr.Rev)
}

func (e etcdKV) apply(o op) string {
	switch o.kind {
	case "put":
		return fmt.Sprint(e.s.Put(o.key, o.value, lease.LeaseID(o.lease)))
	case "delete":
		n, rev := e.s.DeleteRange(o.key, etcdEnd(o.end))
		return fmt.Sprint(n, rev)
	case "compact":
		done, err := e.s.Compact(traceutil.TODO(), o.rev)
		if err == nil {
			<-done
		}
		return errText(err)
	case "range":
		return e.rangeOn(e.s, o, o.rev)
	case "hash":
		h, _, err := e.s.HashStorage().HashByRev(o.rev)
		if err != nil {
			return errText(err)
		}
		return fmt.Sprintf("hash %08x at %d compacted at %d", h.Hash, h.Revision, h.CompactRevision)
	}
	tw := e.s.Write(traceutil.TODO())
	var b bytes.Buffer
	for i := range o.puts {
		fmt.Fprint(&b, tw.Put(append(bytes.Clone(o.key), byte('a'+i%2)), o.value, lease.NoLease), " ")
		fmt.Fprint(&b, e.rangeOn(tw, op{key: o.key, end: []byte{0}, limit: 3}, 0), " | ")
	}
	for range o.deletes {
		n, rev := tw.DeleteRange(o.key, etcdEnd(o.end))
		fmt.Fprint(&b, n, rev, " ")
	}
	changes := tw.Changes()
	for _, kv := range changes {
		if kv.CreateRevision == 0 {
			// A delete: etcd's watchable store stamps the revision when it
			// turns changes into events (watchableStoreTxnWrite.End).
			kv.ModRevision = tw.Rev() + 1
		}
	}
	fmt.Fprint(&b, kvText(changes))
	tw.End()
	return b.String()
}

type ourKV struct{ s *storage.Store }

func (m ourKV) rangeOn(r interface {
	Range([]byte, []byte, storage.RangeOptions) (*storage.RangeResult, error)
}, o op, rev int64) string {
	res, err := r.Range(o.key, o.end, storage.RangeOptions{Rev: rev, Limit: o.limit, CountOnly: o.countOnly})
	if err != nil {
		return errText(err)
	}
	return rangeText(res.KVs, res.Count, res.More, res.Rev)
}

func (m ourKV) apply(o op) string {
	switch o.kind {
	case "put":
		rev, err := m.s.Put(o.key, o.value, o.lease)
		if err != nil {
			return errText(err)
		}
		return fmt.Sprint(rev)
	case "delete":
		n, rev, err := m.s.DeleteRange(o.key, o.end)
		if err != nil {
			return errText(err)
		}
		return fmt.Sprint(n, rev)
	case "compact":
		done, err := m.s.Compact(o.rev)
		if err == nil {
			<-done
		}
		return errText(err)
	case "range":
		return m.rangeOn(m.s, o, o.rev)
	case "hash":
		h, err := m.s.HashKV(o.rev)
		if err != nil {
			return errText(err)
		}
		return fmt.Sprintf("hash %08x at %d compacted at %d", h.Hash, h.HashRev, h.CompactRev)
	}
	tw, err := m.s.Write()
	if err != nil {
		return errText(err)
	}
	var b bytes.Buffer
	for i := range o.puts {
		rev, err := tw.Put(append(bytes.Clone(o.key), byte('a'+i%2)), o.value, 0)
		if err != nil {
			return errText(err)
		}
		fmt.Fprint(&b, rev, " ")
		fmt.Fprint(&b, m.rangeOn(tw, op{key: o.key, end: []byte{0}, limit: 3}, 0), " | ")
	}
	for range o.deletes {
		n, err := tw.DeleteRange(o.key, o.end)
		if err != nil {
			return errText(err)
		}
		fmt.Fprint(&b, n, tw.Rev()+boolInt(len(tw.Changes()) > 0), " ")
	}
	var kvs []*mvccpb.KeyValue
	for _, ev := range tw.Changes() {
		kvs = append(kvs, ev.Kv)
	}
	fmt.Fprint(&b, kvText(kvs))
	if _, err := tw.End(); err != nil {
		return errText(err)
	}
	return b.String()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func newEtcd(t *testing.T) mvcc.WatchableKV {
	b, _ := betesting.NewDefaultTmpBackend(t)
	s := mvcc.New(zap.NewNop(), b, &lease.FakeLessor{}, mvcc.StoreConfig{})
	t.Cleanup(func() {
		s.Close()
		b.Close()
	})
	return s
}

func newOurs(t *testing.T, rocks bool) *storage.Store {
	var s *storage.Store
	var err error
	if rocks {
		eng, oerr := rocksdb.Open(t.TempDir(), rocksdb.Config{BlockCacheBytes: 8 << 20, WriteBufferBytes: 1 << 20})
		require.NoError(t, oerr)
		s, err = storage.Open(eng, storage.Config{NoSync: true, CompactionSleepInterval: -1, CompactionBatchLimit: 5})
	} else {
		s, err = storage.Open(memory.New(), storage.Config{CompactionSleepInterval: -1})
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestAgainstEtcdMVCC replays random operations on etcd's mvcc store and
// on ours (both engines) and requires identical answers.
func TestAgainstEtcdMVCC(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 1000
	}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			oracle := etcdKV{newEtcd(t)}
			ours := []ourKV{{newOurs(t, false)}, {newOurs(t, true)}}
			for i := range n {
				o := randomOp(rng, ours[0].s.Rev())
				want := oracle.apply(o)
				for j, m := range ours {
					require.Equal(t, want, m.apply(o), "op %d on store %d: %+v", i, j, o)
				}
			}
		})
	}
}

// TestWatchAgainstEtcdMVCC compares the event streams of watchers created
// at random points, from random start revisions, on both stores.
func TestWatchAgainstEtcdMVCC(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	oracle := etcdKV{newEtcd(t)}
	ours := ourKV{newOurs(t, true)}
	ews := oracle.s.NewWatchStream()
	defer ews.Close()
	ows := ours.s.NewWatchStream(1 << 12)
	defer ows.Close()
	type wdesc struct {
		key, end []byte
		start    int64
	}
	var watchers []wdesc
	for i := range 600 {
		o := randomOp(rng, ours.s.Rev())
		if o.kind == "compact" || o.kind == "range" {
			continue // compaction would cancel old watchers differently timed
		}
		require.Equal(t, oracle.apply(o), ours.apply(o), "op %d", i)
		if i%60 == 0 {
			w := wdesc{key: []byte("k0"), end: []byte("k2"), start: rng.Int64N(ours.s.Rev()+2) + 1}
			if i%120 == 0 {
				w.end = nil
				w.key = []byte("k05")
			}
			id, err := ews.Watch(context.Background(), mvcc.WatchID(len(watchers)+1), w.key, etcdEnd(w.end), w.start)
			require.NoError(t, err)
			oid, err := ows.Watch(storage.WatchOptions{ID: storage.WatchID(len(watchers) + 1), Key: w.key, End: w.end, StartRev: w.start})
			require.NoError(t, err)
			require.EqualValues(t, id, oid)
			watchers = append(watchers, w)
		}
	}
	final := ours.s.Rev()
	collect := func(ch func() (int64, []*mvccpb.Event, bool)) map[int64][]string {
		got := map[int64][]string{}
		deadline := time.After(20 * time.Second)
		for {
			id, evs, ok := ch()
			if !ok {
				select {
				case <-deadline:
					return got
				case <-time.After(300 * time.Millisecond):
					id, evs, ok = ch()
					if !ok {
						return got // quiet: every watcher caught up
					}
				}
			}
			for _, ev := range evs {
				got[id] = append(got[id], fmt.Sprintf("%s %q=%q m%d v%d", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision, ev.Kv.Version))
			}
		}
	}
	etcdEvents := collect(func() (int64, []*mvccpb.Event, bool) {
		select {
		case r := <-ews.Chan():
			return int64(r.WatchID), r.Events, true
		default:
			return 0, nil, false
		}
	})
	ourEvents := collect(func() (int64, []*mvccpb.Event, bool) {
		select {
		case r := <-ows.Chan():
			return int64(r.WatchID), r.Events, true
		default:
			return 0, nil, false
		}
	})
	require.GreaterOrEqual(t, len(etcdEvents), 5, "most watchers saw events")
	require.Equal(t, etcdEvents, ourEvents, "final revision %d", final)
}

// TestImportEtcdHistory replays random operations on etcd's mvcc store,
// imports its key bucket (what an etcd snapshot holds) into our store, and
// requires the same answers at every revision — ranges and HashKV — and
// the same key-bucket pairs back from ForEachEtcdKV, and that the imported
// store goes on from there as etcd does.
func TestImportEtcdHistory(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			b, _ := betesting.NewDefaultTmpBackend(t)
			es := mvcc.New(zap.NewNop(), b, &lease.FakeLessor{}, mvcc.StoreConfig{})
			t.Cleanup(func() { es.Close(); b.Close() })
			oracle := etcdKV{es}
			for range 800 {
				o := randomOp(rng, es.Rev())
				if o.kind != "range" && o.kind != "hash" {
					oracle.apply(o)
				}
			}
			b.ForceCommit()
			var pairs [][2][]byte
			tx := b.ReadTx()
			tx.RLock()
			require.NoError(t, tx.UnsafeForEach(schema.Key, func(k, v []byte) error {
				pairs = append(pairs, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
				return nil
			}))
			tx.RUnlock()
			compactRev := int64(-1) // the first revision etcd still serves
			for r := int64(1); r <= es.Rev(); r++ {
				if _, err := es.Range(context.Background(), []byte("k"), nil, mvcc.RangeOptions{Rev: r}); err == nil {
					if r > 1 {
						compactRev = r
					}
					break
				}
			}

			eng := memory.New()
			im, err := storage.NewImporter(eng)
			require.NoError(t, err)
			for _, p := range pairs {
				require.NoError(t, im.PutEtcdKV(p[0], p[1]))
			}
			require.NoError(t, im.Finish(compactRev, storage.ConsistentIndex{Index: 5, Term: 2}))
			s, err := storage.Open(eng, storage.Config{CompactionSleepInterval: -1})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			ours := ourKV{s}
			require.Equal(t, es.Rev(), s.Rev())
			require.EqualValues(t, 5, s.ConsistentIndex().Index)

			sn, err := s.Snapshot()
			require.NoError(t, err)
			var back [][2][]byte
			require.NoError(t, sn.ForEachEtcdKV(func(k, v []byte) error {
				back = append(back, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
				return nil
			}))
			sn.Close()
			require.Equal(t, pairs, back, "the key bucket comes back as it went in")

			for r := max(compactRev, 1) - 1; r <= es.Rev()+1; r++ {
				for _, o := range []op{
					{kind: "range", key: []byte{0}, end: []byte{0}, rev: r},
					{kind: "range", key: []byte("k05"), end: []byte("k15"), rev: r, limit: 3},
					{kind: "hash", rev: r},
				} {
					if o.kind == "hash" && r <= compactRev {
						// etcd answers the hashes it took while compacting,
						// from memory: a store made from its file has none.
						continue
					}
					require.Equal(t, oracle.apply(o), ours.apply(o), "%s at %d", o.kind, r)
				}
			}
			for i := range 200 {
				o := randomOp(rng, es.Rev())
				require.Equal(t, oracle.apply(o), ours.apply(o), "op %d after the import: %+v", i, o)
			}
		})
	}
}
