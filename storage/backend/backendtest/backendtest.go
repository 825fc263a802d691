package backendtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage/backend"
)

// OpenFunc opens a fresh, empty backend for one test. The suite closes it
// (or checks that it was closed) itself; the function may register further
// cleanup with tb.Cleanup.
type OpenFunc func(tb testing.TB) backend.Backend

// Run runs the conformance suite against the engine open returns.
func Run(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		fn   func(*testing.T, backend.Backend)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"IterateForwardReverse", testIterate},
		{"IterateBounds", testIterateBounds},
		{"SeekLTExact", testSeekLTExact},
		{"IteratorIsConsistent", testIteratorConsistent},
		{"SnapshotIsolation", testSnapshot},
		{"DeleteRange", testDeleteRange},
		{"BatchAtomicAndSingleUse", testBatch},
		{"OwnershipOfReturnedSlices", testOwnership},
		{"SizesAndCompact", testSizesCompact},
		{"EmptyAndBinaryKeys", testBinaryKeys},
		{"ConcurrentReadersAndWriters", testConcurrent},
		{"RandomAgainstModel", testModel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			defer func() { _ = b.Close() }()
			tc.fn(t, b)
		})
	}
	t.Run("ClosedBackend", func(t *testing.T) { testClosed(t, open(t)) })
}

func set(t *testing.T, b backend.Backend, kv ...string) {
	t.Helper()
	wb := b.NewBatch()
	for i := 0; i+1 < len(kv); i += 2 {
		wb.Set([]byte(kv[i]), []byte(kv[i+1]))
	}
	require.NoError(t, wb.Commit(true))
}

// collect returns "k=v" for every entry, walking forward or backward.
func collect(t *testing.T, r backend.Reader, opts backend.IterOptions, reverse bool) []string {
	t.Helper()
	it := r.NewIterator(opts)
	var out []string
	var ok bool
	if reverse {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	for ; ok; ok = step(it, reverse) {
		require.True(t, it.Valid())
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	require.False(t, it.Valid())
	require.NoError(t, it.Close())
	return out
}

func step(it backend.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

func testGetSetDelete(t *testing.T, b backend.Backend) {
	_, err := b.Get([]byte("a"))
	require.ErrorIs(t, err, backend.ErrNotFound)
	set(t, b, "a", "1", "b", "2")
	v, err := b.Get([]byte("a"))
	require.NoError(t, err)
	require.Equal(t, "1", string(v))
	set(t, b, "a", "3")
	v, err = b.Get([]byte("a"))
	require.NoError(t, err)
	require.Equal(t, "3", string(v))
	wb := b.NewBatch()
	wb.Delete([]byte("a"))
	wb.Delete([]byte("never-existed"))
	require.NoError(t, wb.Commit(false))
	_, err = b.Get([]byte("a"))
	require.ErrorIs(t, err, backend.ErrNotFound)
	v, err = b.Get([]byte("b"))
	require.NoError(t, err)
	require.Equal(t, "2", string(v))
	// An empty value is a value, not a missing key.
	set(t, b, "empty", "")
	v, err = b.Get([]byte("empty"))
	require.NoError(t, err)
	require.Empty(t, v)
}

func testIterate(t *testing.T, b backend.Backend) {
	require.Empty(t, collect(t, b, backend.IterOptions{}, false))
	set(t, b, "c", "3", "a", "1", "b", "2", "ab", "x")
	require.Equal(t, []string{"a=1", "ab=x", "b=2", "c=3"}, collect(t, b, backend.IterOptions{}, false))
	require.Equal(t, []string{"c=3", "b=2", "ab=x", "a=1"}, collect(t, b, backend.IterOptions{}, true))

	it := b.NewIterator(backend.IterOptions{})
	defer it.Close()
	require.True(t, it.SeekGE([]byte("aa")))
	require.Equal(t, "ab", string(it.Key()))
	require.True(t, it.Prev())
	require.Equal(t, "a", string(it.Key()))
	require.False(t, it.Prev())
	require.True(t, it.SeekLT([]byte("bb")))
	require.Equal(t, "b", string(it.Key()))
	require.True(t, it.Next())
	require.Equal(t, "c", string(it.Key()))
	require.False(t, it.Next())
	require.False(t, it.SeekGE([]byte("d")))
	require.False(t, it.SeekLT([]byte("a")))
	require.True(t, it.SeekLT([]byte("zzz")))
	require.Equal(t, "c", string(it.Key()))
	require.NoError(t, it.Error())
}

func testIterateBounds(t *testing.T, b backend.Backend) {
	set(t, b, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
	opts := backend.IterOptions{LowerBound: []byte("b"), UpperBound: []byte("d")}
	require.Equal(t, []string{"b=2", "c=3"}, collect(t, b, opts, false))
	require.Equal(t, []string{"c=3", "b=2"}, collect(t, b, opts, true))
	require.Equal(t, []string{"d=4", "e=5"}, collect(t, b, backend.IterOptions{LowerBound: []byte("cc")}, false))
	require.Equal(t, []string{"a=1", "b=2"}, collect(t, b, backend.IterOptions{UpperBound: []byte("bb")}, false))

	it := b.NewIterator(opts)
	defer it.Close()
	require.True(t, it.SeekGE([]byte("a")), "seek below the lower bound lands on it")
	require.Equal(t, "b", string(it.Key()))
	require.False(t, it.SeekGE([]byte("d")), "the upper bound is exclusive")
	require.True(t, it.SeekLT([]byte("z")))
	require.Equal(t, "c", string(it.Key()))
	require.False(t, it.SeekLT([]byte("b")))
	// An empty range is empty in both directions.
	require.Empty(t, collect(t, b, backend.IterOptions{LowerBound: []byte("c"), UpperBound: []byte("c")}, false))
	require.Empty(t, collect(t, b, backend.IterOptions{LowerBound: []byte("c"), UpperBound: []byte("c")}, true))
}

func testSeekLTExact(t *testing.T, b backend.Backend) {
	set(t, b, "k1", "a", "k2", "b", "k3", "c")
	it := b.NewIterator(backend.IterOptions{})
	defer it.Close()
	require.True(t, it.SeekLT([]byte("k2")))
	require.Equal(t, "k1", string(it.Key()), "SeekLT is strictly less")
	require.True(t, it.SeekGE([]byte("k2")))
	require.Equal(t, "k2", string(it.Key()), "SeekGE is inclusive")
}

func testIteratorConsistent(t *testing.T, b backend.Backend) {
	set(t, b, "a", "1", "b", "2")
	it := b.NewIterator(backend.IterOptions{})
	defer it.Close()
	set(t, b, "a", "changed", "c", "3")
	wb := b.NewBatch()
	wb.Delete([]byte("b"))
	require.NoError(t, wb.Commit(false))
	var got []string
	for ok := it.First(); ok; ok = it.Next() {
		got = append(got, string(it.Key())+"="+string(it.Value()))
	}
	require.Equal(t, []string{"a=1", "b=2"}, got, "writes after the iterator was created are invisible to it")
}

func testSnapshot(t *testing.T, b backend.Backend) {
	set(t, b, "a", "1", "b", "2")
	snap, err := b.NewSnapshot()
	require.NoError(t, err)
	set(t, b, "a", "changed", "c", "3")
	wb := b.NewBatch()
	wb.DeleteRange([]byte("b"), []byte("c"))
	require.NoError(t, wb.Commit(true))

	v, err := snap.Get([]byte("a"))
	require.NoError(t, err)
	require.Equal(t, "1", string(v))
	_, err = snap.Get([]byte("c"))
	require.ErrorIs(t, err, backend.ErrNotFound)
	require.Equal(t, []string{"a=1", "b=2"}, collect(t, snap, backend.IterOptions{}, false))
	require.Equal(t, []string{"a=changed", "c=3"}, collect(t, b, backend.IterOptions{}, false))
	require.NoError(t, snap.Close())
	_, err = snap.Get([]byte("a"))
	require.ErrorIs(t, err, backend.ErrClosed)
	require.ErrorIs(t, snap.Close(), backend.ErrClosed)
}

func testDeleteRange(t *testing.T, b backend.Backend) {
	set(t, b, "a", "1", "b", "2", "ba", "3", "c", "4", "d", "5")
	wb := b.NewBatch()
	wb.DeleteRange([]byte("b"), []byte("c"))
	wb.DeleteRange([]byte("z"), []byte("a")) // inverted: no-op
	wb.Set([]byte("bb"), []byte("after"))    // a later op in the batch wins
	require.NoError(t, wb.Commit(true))
	require.Equal(t, []string{"a=1", "bb=after", "c=4", "d=5"}, collect(t, b, backend.IterOptions{}, false))
	_, err := b.Get([]byte("ba"))
	require.ErrorIs(t, err, backend.ErrNotFound)
}

func testBatch(t *testing.T, b backend.Backend) {
	wb := b.NewBatch()
	wb.Set([]byte("x"), []byte("1"))
	wb.Set([]byte("y"), []byte("2"))
	wb.Delete([]byte("x"))
	require.Equal(t, 3, wb.Count())
	require.Positive(t, wb.Size())
	_, err := b.Get([]byte("y"))
	require.ErrorIs(t, err, backend.ErrNotFound, "nothing is visible before Commit")
	require.NoError(t, wb.Commit(true))
	require.Equal(t, []string{"y=2"}, collect(t, b, backend.IterOptions{}, false))
	require.ErrorIs(t, wb.Commit(true), backend.ErrBatchCommitted)
	wb.Close() // no-op after Commit

	discarded := b.NewBatch()
	discarded.Set([]byte("z"), []byte("lost"))
	discarded.Close()
	require.ErrorIs(t, discarded.Commit(false), backend.ErrBatchCommitted)
	_, err = b.Get([]byte("z"))
	require.ErrorIs(t, err, backend.ErrNotFound)
	require.NoError(t, b.Sync())
}

func testOwnership(t *testing.T, b backend.Backend) {
	key, val := []byte("k"), []byte("v1")
	wb := b.NewBatch()
	wb.Set(key, val)
	key[0], val[1] = 'X', '9' // the batch copied them
	require.NoError(t, wb.Commit(false))
	v, err := b.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "v1", string(v))
	v[0] = 'Z' // the caller owns Get's result
	v2, err := b.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "v1", string(v2))
}

func testSizesCompact(t *testing.T, b backend.Backend) {
	before, err := b.Sizes()
	require.NoError(t, err)
	wb := b.NewBatch()
	val := bytes.Repeat([]byte("v"), 1000)
	for i := range 2000 {
		wb.Set(fmt.Appendf(nil, "key-%06d", i), val)
	}
	require.NoError(t, wb.Commit(true))
	after, err := b.Sizes()
	require.NoError(t, err)
	require.Greater(t, after.Logical, before.Logical)
	require.Positive(t, after.Physical)
	wb = b.NewBatch()
	wb.DeleteRange([]byte("key-000000"), []byte("key-001000"))
	require.NoError(t, wb.Commit(true))
	require.NoError(t, b.Compact(nil, nil))
	require.NoError(t, b.Compact([]byte("key-001500"), []byte("key-001600")))
	n := len(collect(t, b, backend.IterOptions{}, false))
	require.Equal(t, 1000, n, "compaction never changes visible data")
	v, err := b.Get([]byte("key-001999"))
	require.NoError(t, err)
	require.Equal(t, val, v)
}

func testBinaryKeys(t *testing.T, b backend.Backend) {
	keys := [][]byte{{0}, {0, 0}, {0, 1}, {0xff}, {0xff, 0xff}, {1, 0, 2}}
	wb := b.NewBatch()
	for i, k := range keys {
		wb.Set(k, []byte{byte(i)})
	}
	require.NoError(t, wb.Commit(false))
	it := b.NewIterator(backend.IterOptions{})
	defer it.Close()
	var got [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		got = append(got, bytes.Clone(it.Key()))
	}
	want := slices.Clone(keys)
	slices.SortFunc(want, bytes.Compare)
	require.Equal(t, want, got)
}

func testConcurrent(t *testing.T, b backend.Backend) {
	var wg sync.WaitGroup
	const writers, perWriter = 4, 200
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				wb := b.NewBatch()
				wb.Set(fmt.Appendf(nil, "w%d-%04d", w, i), []byte("v"))
				if err := wb.Commit(false); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 50 {
				snap, err := b.NewSnapshot()
				if err != nil {
					t.Error(err)
					return
				}
				it := snap.NewIterator(backend.IterOptions{})
				prev := []byte(nil)
				for ok := it.First(); ok; ok = it.Next() {
					if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
						t.Errorf("keys out of order: %q then %q", prev, it.Key())
					}
					prev = bytes.Clone(it.Key())
				}
				_ = it.Close()
				_ = snap.Close()
			}
		})
	}
	wg.Wait()
	require.Len(t, collect(t, b, backend.IterOptions{}, false), writers*perWriter)
}

// testModel replays random batches against a sorted-map model and compares
// full scans, bounded scans and point reads after every batch.
func testModel(t *testing.T, b backend.Backend) {
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]string{}
	key := func() string { return fmt.Sprintf("%c%d", 'a'+rng.IntN(6), rng.IntN(30)) }
	for round := range 300 {
		wb := b.NewBatch()
		for range 1 + rng.IntN(8) {
			switch r := rng.IntN(10); {
			case r < 6:
				k, v := key(), fmt.Sprint(round, rng.IntN(1000))
				wb.Set([]byte(k), []byte(v))
				model[k] = v
			case r < 9:
				k := key()
				wb.Delete([]byte(k))
				delete(model, k)
			default:
				lo, hi := key(), key()
				wb.DeleteRange([]byte(lo), []byte(hi))
				for k := range model {
					if k >= lo && k < hi {
						delete(model, k)
					}
				}
			}
		}
		require.NoError(t, wb.Commit(rng.IntN(2) == 0))
		lo, hi := key(), key()
		if lo > hi {
			lo, hi = hi, lo
		}
		keys := make([]string, 0, len(model))
		for k := range model {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var want, wantAll []string
		for _, k := range keys {
			wantAll = append(wantAll, k+"="+model[k])
			if k >= lo && k < hi {
				want = append(want, k+"="+model[k])
			}
		}
		require.Equal(t, wantAll, nilIfEmpty(collect(t, b, backend.IterOptions{}, false)), "round %d", round)
		reverse := rng.IntN(2) == 0
		got := collect(t, b, backend.IterOptions{LowerBound: []byte(lo), UpperBound: []byte(hi)}, reverse)
		if reverse {
			slices.Reverse(got)
		}
		require.Equal(t, want, nilIfEmpty(got), "round %d [%s,%s)", round, lo, hi)
		k := key()
		v, err := b.Get([]byte(k))
		if mv, ok := model[k]; ok {
			require.NoError(t, err)
			require.Equal(t, mv, string(v))
		} else {
			require.ErrorIs(t, err, backend.ErrNotFound)
		}
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func testClosed(t *testing.T, b backend.Backend) {
	set(t, b, "a", "1")
	snap, err := b.NewSnapshot()
	require.NoError(t, err)
	it := b.NewIterator(backend.IterOptions{})
	require.True(t, it.First())
	require.NoError(t, b.Close(), "Close releases open iterators and snapshots")
	require.False(t, it.Next())
	_ = it.Close()
	_ = snap.Close()

	require.ErrorIs(t, b.Close(), backend.ErrClosed)
	_, err = b.Get([]byte("a"))
	require.ErrorIs(t, err, backend.ErrClosed)
	_, err = b.NewSnapshot()
	require.ErrorIs(t, err, backend.ErrClosed)
	it = b.NewIterator(backend.IterOptions{})
	require.False(t, it.First())
	require.True(t, errors.Is(it.Error(), backend.ErrClosed))
	wb := b.NewBatch()
	wb.Set([]byte("b"), []byte("2"))
	require.ErrorIs(t, wb.Commit(true), backend.ErrClosed)
	require.ErrorIs(t, b.Sync(), backend.ErrClosed)
	_, err = b.Sizes()
	require.ErrorIs(t, err, backend.ErrClosed)
	require.ErrorIs(t, b.Compact(nil, nil), backend.ErrClosed)
}
