package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage"
)

// op is one random operation of the differential test.
type op struct {
	kind       string
	key, end   []byte
	value      []byte
	lease      int64
	rev        int64
	opts       storage.RangeOptions
	txnPuts    int
	txnDeletes int
}

// randomOp draws an operation over a small key space so that keys get many
// versions, tombstones and generations.
func randomOp(rng *rand.Rand, cur int64) op {
	key := func() []byte {
		k := []byte(fmt.Sprintf("k%02d", rng.IntN(25)))
		if rng.IntN(10) == 0 {
			k = append(k, 0, byte(rng.IntN(3))) // keys with NUL bytes
		}
		return k
	}
	past := func() int64 { return cur - int64(rng.IntN(int(min(cur, 40)))) }
	switch r := rng.IntN(100); {
	case r < 40:
		return op{kind: "put", key: key(), value: []byte(fmt.Sprint(rng.Int64())), lease: int64(rng.IntN(3))}
	case r < 50:
		k := key()
		var end []byte
		if rng.IntN(2) == 0 {
			end = key()
		}
		return op{kind: "delete", key: k, end: end}
	case r < 60:
		return op{kind: "txn", key: key(), end: key(), txnPuts: 1 + rng.IntN(4), txnDeletes: rng.IntN(2), value: []byte(fmt.Sprint(rng.Int64()))}
	case r < 63:
		return op{kind: "compact", rev: past()}
	default:
		lo, hi := key(), key()
		if rng.IntN(5) == 0 {
			hi = []byte{0}
		}
		return op{kind: "range", key: lo, end: hi, opts: storage.RangeOptions{
			Rev:       past(),
			Limit:     int64(rng.IntN(4)),
			KeysOnly:  rng.IntN(4) == 0,
			CountOnly: rng.IntN(8) == 0,
			MinModRev: int64(rng.IntN(3)) * cur / 3,
		}}
	}
}

// apply runs o and renders its outcome as text.
func apply(s *storage.Store, o op) string {
	res := func(v any, err error) string {
		if err != nil {
			for _, e := range []error{storage.ErrCompacted, storage.ErrFutureRev, storage.ErrEmptyKey} {
				if errors.Is(err, e) {
					return "error " + e.Error()
				}
			}
			return "unexpected " + err.Error()
		}
		return fmt.Sprint(v)
	}
	switch o.kind {
	case "put":
		return res(s.Put(o.key, o.value, o.lease))
	case "delete":
		n, rev, err := s.DeleteRange(o.key, o.end)
		return res(fmt.Sprint(n, rev), err)
	case "txn":
		tw, err := s.Write()
		if err != nil {
			return res(nil, err)
		}
		var out bytes.Buffer
		for i := range o.txnPuts {
			k := append(bytes.Clone(o.key), byte('a'+i%2))
			_, err := tw.Put(k, o.value, 0)
			fmt.Fprint(&out, err, " ")
			r, err := tw.Range(o.key, []byte{0}, storage.RangeOptions{Limit: 3})
			fmt.Fprint(&out, dump(r), err, " ")
		}
		for range o.txnDeletes {
			n, err := tw.DeleteRange(o.key, o.end)
			fmt.Fprint(&out, n, err, " ")
		}
		for _, ev := range tw.Changes() {
			fmt.Fprint(&out, evString(ev), ";")
		}
		rev, err := tw.End()
		return res(fmt.Sprint(out.String(), rev), err)
	case "compact":
		done, err := s.Compact(o.rev)
		if err == nil && o.rev%2 == 0 {
			<-done
		}
		return res("compacted", err)
	default:
		r, err := s.Range(o.key, o.end, o.opts)
		return res(dump(r), err)
	}
}

func dump(r *storage.RangeResult) string {
	if r == nil {
		return "<nil>"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "rev=%d count=%d more=%v [", r.Rev, r.Count, r.More)
	for _, kv := range r.KVs {
		fmt.Fprintf(&b, "%q=%q c%d m%d v%d l%d ", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	return b.String() + "]"
}

// TestDifferentialEngines replays the same random operations on the memory
// and RocksDB engines and requires identical outcomes, hashes and watch
// streams.
func TestDifferentialEngines(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1500
	}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			stores := []*storage.Store{newStore(t, engines[0]), newStore(t, engines[1])}
			var streams []*storage.WatchStream
			for _, s := range stores {
				ws := s.NewWatchStream(1 << 16)
				_, err := ws.Watch(storage.WatchOptions{Key: []byte("k"), End: []byte("l"), PrevKV: true})
				require.NoError(t, err)
				streams = append(streams, ws)
			}
			for i := range n {
				o := randomOp(rng, stores[0].Rev())
				a, b := apply(stores[0], o), apply(stores[1], o)
				require.Equal(t, a, b, "op %d %+v", i, o)
				require.NotContains(t, a, "unexpected", "op %d", i)
				if i%500 == 0 {
					ha, err := stores[0].HashKV(0)
					require.NoError(t, err)
					hb, err := stores[1].HashKV(0)
					require.NoError(t, err)
					require.Equal(t, ha, hb, "op %d", i)
				}
			}
			// Both watch streams delivered the same events. Every write is
			// under "k", so every revision has events.
			rev := stores[0].Rev()
			var logs [2][]string
			for j, ws := range streams {
				for last := int64(0); last < rev; {
					r := recv(t, ws)
					for _, ev := range r.Events {
						logs[j] = append(logs[j], evString(ev))
						last = ev.Kv.ModRevision
					}
				}
			}
			require.GreaterOrEqual(t, len(logs[0]), int(rev-1))
			require.Equal(t, logs[0], logs[1])
		})
	}
}

// TestDifferentialLatestCache replays random operations on stores with the
// write path's latest-version cache off, tiny (constant eviction) and at
// its default: outcomes and hashes must not differ — the cache must never
// serve a version compaction, a delete or a later write changed.
func TestDifferentialLatestCache(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 1500
	}
	open := func(e engine, entries int) *storage.Store {
		cfg := testConfig(t)
		cfg.LatestCacheEntries = entries
		s, err := storage.Open(e.open(t, t.TempDir()), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	stores := []*storage.Store{open(engines[1], -1), open(engines[1], 3), open(engines[0], 0)}
	// Compactions run to the end before the next op, so the engines'
	// contents (Store.Hash covers history not yet physically compacted)
	// are comparable at any point.
	applyWaiting := func(s *storage.Store, o op) string {
		if o.kind != "compact" {
			return apply(s, o)
		}
		done, err := s.Compact(o.rev)
		if err == nil {
			<-done
			return "compacted"
		}
		return apply(s, o)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range n {
		o := randomOp(rng, stores[0].Rev())
		want := applyWaiting(stores[0], o)
		for j, s := range stores[1:] {
			require.Equal(t, want, applyWaiting(s, o), "store %d, op %d %+v", j+1, i, o)
		}
		if i%250 == 0 || i == n-1 {
			h0, err := stores[0].HashKV(0)
			require.NoError(t, err)
			e0, _, err := stores[0].Hash()
			require.NoError(t, err)
			for _, s := range stores[1:] {
				h, err := s.HashKV(0)
				require.NoError(t, err)
				require.Equal(t, h0, h, "op %d", i)
				// The whole engine, not only what HashKV covers: no
				// stray version written from a stale cached one.
				e, _, err := s.Hash()
				require.NoError(t, err)
				require.Equal(t, e0, e, "op %d: engine contents", i)
			}
		}
	}
}
