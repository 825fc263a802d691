package storage_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage"
)

func TestRevisionsAndGenerations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		require.EqualValues(t, 1, s.Rev(), "a new store is at revision 1, as etcd")
		require.EqualValues(t, 2, put(t, s, "a", "1"))
		require.EqualValues(t, 3, put(t, s, "a", "2"))
		res, err := s.Range([]byte("a"), nil, storage.RangeOptions{})
		require.NoError(t, err)
		require.Equal(t, []*mvccpb.KeyValue{{Key: []byte("a"), Value: []byte("2"), CreateRevision: 2, ModRevision: 3, Version: 2}}, res.KVs)
		require.EqualValues(t, 3, res.Rev)
		require.EqualValues(t, 1, res.Count)

		n, rev, err := s.DeleteRange([]byte("a"), nil)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		require.EqualValues(t, 4, rev)
		_, ok := get(t, s, "a", 0)
		require.False(t, ok)

		require.EqualValues(t, 5, put(t, s, "a", "3"))
		res, err = s.Range([]byte("a"), nil, storage.RangeOptions{})
		require.NoError(t, err)
		require.Equal(t, []*mvccpb.KeyValue{{Key: []byte("a"), Value: []byte("3"), CreateRevision: 5, ModRevision: 5, Version: 1}}, res.KVs,
			"re-creating a deleted key starts a new generation")

		// Past revisions see the past.
		for rev, want := range map[int64]string{2: "1", 3: "2", 4: "", 5: "3"} {
			v, ok := get(t, s, "a", rev)
			require.Equal(t, want != "", ok, "rev %d", rev)
			require.Equal(t, want, v, "rev %d", rev)
		}
		// Deleting nothing does not move the revision.
		n, rev, err = s.DeleteRange([]byte("nothing"), nil)
		require.NoError(t, err)
		require.Zero(t, n)
		require.EqualValues(t, 5, rev)
		require.EqualValues(t, 5, s.Rev())
	})
}

func TestRangeOptions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			put(t, s, k, "v-"+k) // revs 2..6
		}
		put(t, s, "b", "v-b2") // rev 7: b mod 7, create 3
		all := func(opts storage.RangeOptions) *storage.RangeResult {
			t.Helper()
			res, err := s.Range([]byte("a"), []byte("z"), opts)
			require.NoError(t, err)
			return res
		}
		res := all(storage.RangeOptions{})
		require.Equal(t, []string{"a", "b", "c", "d", "e"}, keys(res))
		require.EqualValues(t, 5, res.Count)
		require.False(t, res.More)

		res = all(storage.RangeOptions{Limit: 2})
		require.Equal(t, []string{"a", "b"}, keys(res))
		require.EqualValues(t, 5, res.Count, "count ignores limit")
		require.True(t, res.More)
		res = all(storage.RangeOptions{Limit: 5})
		require.False(t, res.More)

		res = all(storage.RangeOptions{KeysOnly: true})
		require.Len(t, res.KVs, 5)
		for _, kv := range res.KVs {
			require.Nil(t, kv.Value)
			require.NotZero(t, kv.ModRevision)
		}
		res = all(storage.RangeOptions{CountOnly: true})
		require.Empty(t, res.KVs)
		require.EqualValues(t, 5, res.Count)
		require.False(t, res.More)

		res = all(storage.RangeOptions{MinModRev: 5})
		require.Equal(t, []string{"b", "d", "e"}, keys(res))
		require.EqualValues(t, 5, res.Count, "filters do not change count, as in etcd")
		res = all(storage.RangeOptions{MaxModRev: 4})
		require.Equal(t, []string{"a", "c"}, keys(res))
		res = all(storage.RangeOptions{MinCreateRev: 3, MaxCreateRev: 4})
		require.Equal(t, []string{"b", "c"}, keys(res))
		res = all(storage.RangeOptions{MinModRev: 5, Limit: 1})
		require.Equal(t, []string{"b"}, keys(res))
		require.True(t, res.More, "more counts filtered keys beyond the limit")

		res = all(storage.RangeOptions{Rev: 4})
		require.Equal(t, []string{"a", "b", "c"}, keys(res))
		require.EqualValues(t, 7, res.Rev, "the header revision is the current one")
		require.Equal(t, "v-b", string(res.KVs[1].Value))

		// From-key ("\x00" end) and inverted ranges.
		res, err := s.Range([]byte("c"), []byte{0}, storage.RangeOptions{})
		require.NoError(t, err)
		require.Equal(t, []string{"c", "d", "e"}, keys(res))
		res, err = s.Range([]byte{0}, []byte{0}, storage.RangeOptions{CountOnly: true})
		require.NoError(t, err)
		require.EqualValues(t, 5, res.Count)
		res, err = s.Range([]byte("d"), []byte("b"), storage.RangeOptions{})
		require.NoError(t, err)
		require.Empty(t, res.KVs, "an inverted range is empty, as in etcd")
		require.Zero(t, res.Count)

		_, err = s.Range([]byte("a"), nil, storage.RangeOptions{Rev: 8})
		require.ErrorIs(t, err, storage.ErrFutureRev)
		_, err = s.Range(nil, nil, storage.RangeOptions{})
		require.ErrorIs(t, err, storage.ErrEmptyKey)
	})
}

func TestBinaryKeysKeepByteOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		ks := []string{"a", "a\x00", "a\x00\x00", "a\x00\x01", "a\x01", "a\xff", "a\xff\x00", "b"}
		for i := len(ks) - 1; i >= 0; i-- {
			put(t, s, ks[i], "v")
			put(t, s, ks[i], "v2") // two versions each
		}
		res, err := s.Range([]byte("a"), []byte("b\x00"), storage.RangeOptions{})
		require.NoError(t, err)
		require.Equal(t, ks, keys(res))
		res, err = s.Range([]byte("a\x00"), []byte("a\x01"), storage.RangeOptions{})
		require.NoError(t, err)
		require.Equal(t, []string{"a\x00", "a\x00\x00", "a\x00\x01"}, keys(res))
		v, ok := get(t, s, "a\x00", 0)
		require.True(t, ok)
		require.Equal(t, "v2", v)
	})
}

func TestTxnAtomicAndReadYourWrites(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		put(t, s, "x", "0") // rev 2
		tw, err := s.Write()
		require.NoError(t, err)
		require.EqualValues(t, 2, tw.Rev())
		rev, err := tw.Put([]byte("x"), []byte("1"), 0)
		require.NoError(t, err)
		require.EqualValues(t, 3, rev)
		_, err = tw.Put([]byte("x"), []byte("2"), 0)
		require.NoError(t, err)
		_, err = tw.Put([]byte("y"), []byte("1"), 0)
		require.NoError(t, err)
		n, err := tw.DeleteRange([]byte("y"), nil)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		_, err = tw.Put([]byte("y"), []byte("again"), 0)
		require.NoError(t, err)

		res, err := tw.Range([]byte("a"), []byte("z"), storage.RangeOptions{})
		require.NoError(t, err)
		require.EqualValues(t, 3, res.Rev)
		require.Equal(t, []*mvccpb.KeyValue{
			{Key: []byte("x"), Value: []byte("2"), CreateRevision: 2, ModRevision: 3, Version: 3},
			{Key: []byte("y"), Value: []byte("again"), CreateRevision: 3, ModRevision: 3, Version: 1},
		}, res.KVs)
		old, err := tw.Range([]byte("x"), nil, storage.RangeOptions{Rev: 2})
		require.NoError(t, err)
		require.Equal(t, "0", string(old.KVs[0].Value))

		// Readers outside the txn do not see it before End.
		v, _ := get(t, s, "x", 0)
		require.Equal(t, "0", v)

		evs := tw.Changes()
		require.Len(t, evs, 5)
		require.Equal(t, mvccpb.PUT, evs[0].Type)
		require.Equal(t, "0", string(evs[0].PrevKv.Value), "prev_kv is the state before the txn")
		require.Equal(t, "0", string(evs[1].PrevKv.Value))
		require.Nil(t, evs[2].PrevKv, "create event")
		require.Equal(t, mvccpb.DELETE, evs[3].Type)
		require.Nil(t, evs[3].PrevKv, "y did not exist before the txn")

		rev, err = tw.End()
		require.NoError(t, err)
		require.EqualValues(t, 3, rev)
		require.EqualValues(t, 3, s.Rev())
		_, err = tw.End()
		require.ErrorIs(t, err, storage.ErrTxnDone)

		// Abort discards everything.
		tw, err = s.Write()
		require.NoError(t, err)
		_, err = tw.Put([]byte("x"), []byte("lost"), 0)
		require.NoError(t, err)
		tw.Abort()
		v, _ = get(t, s, "x", 0)
		require.Equal(t, "2", v)
		require.EqualValues(t, 3, s.Rev())

		// A txn without changes keeps the revision.
		tw, err = s.Write()
		require.NoError(t, err)
		rev, err = tw.End()
		require.NoError(t, err)
		require.EqualValues(t, 3, rev)
	})
}

func TestLeaseIndex(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		ls := func(lease int64) []string {
			t.Helper()
			ks, err := s.LeaseKeys(lease)
			require.NoError(t, err)
			var out []string
			for _, k := range ks {
				out = append(out, string(k))
			}
			return out
		}
		_, err := s.Put([]byte("a"), []byte("1"), 7)
		require.NoError(t, err)
		_, err = s.Put([]byte("b"), []byte("1"), 7)
		require.NoError(t, err)
		_, err = s.Put([]byte("c"), []byte("1"), 8)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, ls(7))
		res, err := s.Range([]byte("a"), nil, storage.RangeOptions{})
		require.NoError(t, err)
		require.EqualValues(t, 7, res.KVs[0].Lease)

		_, err = s.Put([]byte("a"), []byte("2"), 8) // moves to lease 8
		require.NoError(t, err)
		_, err = s.Put([]byte("b"), []byte("2"), 0) // detaches
		require.NoError(t, err)
		_, _, err = s.DeleteRange([]byte("c"), nil)
		require.NoError(t, err)
		require.Empty(t, ls(7))
		require.Equal(t, []string{"a"}, ls(8))
	})
}

func TestBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		cfg := testConfig(t)
		cfg.MaxKeyBytes, cfg.MaxValueBytes = 10, 20
		s, err := storage.Open(e.open(t, t.TempDir()), cfg)
		require.NoError(t, err)
		_, err = s.Put(nil, []byte("v"), 0)
		require.ErrorIs(t, err, storage.ErrEmptyKey)
		_, err = s.Put(make([]byte, 11), nil, 0)
		require.ErrorIs(t, err, storage.ErrKeyTooLarge)
		_, err = s.Put([]byte("k"), make([]byte, 21), 0)
		require.ErrorIs(t, err, storage.ErrValueTooLarge)
		_, _, err = s.DeleteRange(nil, []byte("z"))
		require.ErrorIs(t, err, storage.ErrEmptyKey)
		require.EqualValues(t, 1, s.Rev(), "rejected writes leave no trace")

		// A txn that fails midway and is aborted leaves nothing behind.
		tw, err := s.Write()
		require.NoError(t, err)
		_, err = tw.Put([]byte("ok"), []byte("v"), 0)
		require.NoError(t, err)
		_, err = tw.Put([]byte("k"), make([]byte, 21), 0)
		require.ErrorIs(t, err, storage.ErrValueTooLarge)
		tw.Abort()
		_, ok := get(t, s, "ok", 0)
		require.False(t, ok)

		_, err = s.Compact(5)
		require.ErrorIs(t, err, storage.ErrFutureRev)
		_, err = s.HashKV(5)
		require.ErrorIs(t, err, storage.ErrFutureRev)

		require.NoError(t, s.Close())
		require.ErrorIs(t, s.Close(), storage.ErrClosed)
		_, err = s.Put([]byte("k"), nil, 0)
		require.ErrorIs(t, err, storage.ErrClosed)
		_, err = s.Range([]byte("k"), nil, storage.RangeOptions{})
		require.ErrorIs(t, err, storage.ErrClosed)
		_, err = s.Compact(1)
		require.ErrorIs(t, err, storage.ErrClosed)
		_, err = s.HashKV(0)
		require.ErrorIs(t, err, storage.ErrClosed)
		_, err = s.Snapshot()
		require.ErrorIs(t, err, storage.ErrClosed)
		_, err = s.LeaseKeys(1)
		require.ErrorIs(t, err, storage.ErrClosed)
		require.Error(t, storage.Config{MaxKeyBytes: -1, WatchBatchMaxRevs: -2}.Validate())
	})
}

func TestRangeNoTotalCount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			put(t, s, k, "v")
		}
		res, err := s.Range([]byte("a"), []byte("z"), storage.RangeOptions{Limit: 2, NoTotalCount: true})
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, keys(res))
		require.True(t, res.More)
		require.EqualValues(t, 3, res.Count, "only the keys read are counted")
		res, err = s.Range([]byte("a"), []byte("z"), storage.RangeOptions{NoTotalCount: true})
		require.NoError(t, err)
		require.EqualValues(t, 5, res.Count, "without a limit every key is read")
	})
}

func TestSyncWithNoSync(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		cfg := testConfig(t)
		cfg.NoSync = true
		s, err := storage.Open(e.open(t, t.TempDir()), cfg)
		require.NoError(t, err)
		put(t, s, "a", "1")
		require.NoError(t, s.Sync())
		require.NoError(t, s.Close())
		require.ErrorIs(t, s.Sync(), storage.ErrClosed)
	})
}
