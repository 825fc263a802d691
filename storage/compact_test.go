package storage_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage"
)

// history returns, for every revision in [from, to], a dump of the whole key
// space as seen at that revision.
func history(t *testing.T, s *storage.Store, from, to int64) []string {
	t.Helper()
	var out []string
	for rev := from; rev <= to; rev++ {
		res, err := s.Range([]byte{0}, []byte{0}, storage.RangeOptions{Rev: rev})
		require.NoError(t, err)
		var b bytes.Buffer
		for _, kv := range res.KVs {
			fmt.Fprintf(&b, "%s=%s@c%d,m%d,v%d,l%d ", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
		}
		out = append(out, b.String())
	}
	return out
}

func TestCompaction(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		for i := range 40 {
			put(t, s, fmt.Sprintf("k%d", i%5), fmt.Sprint(i)) // revs 2..41
		}
		_, _, err := s.DeleteRange([]byte("k3"), nil) // rev 42: tombstone
		require.NoError(t, err)
		_, _, err = s.DeleteRange([]byte("k4"), nil) // rev 43
		require.NoError(t, err)
		put(t, s, "k4", "back") // rev 44
		require.EqualValues(t, 44, s.Rev())

		before := history(t, s, 30, 44)
		hashBefore, err := s.HashKV(0)
		require.NoError(t, err)
		sizes0, err := s.Sizes()
		require.NoError(t, err)

		done, err := s.Compact(43)
		require.NoError(t, err)
		require.EqualValues(t, 43, s.CompactRev())
		_, err = s.Range([]byte("k1"), nil, storage.RangeOptions{Rev: 42})
		require.ErrorIs(t, err, storage.ErrCompacted, "reads below the compaction fail at once")
		<-done

		_, err = s.Range([]byte("k1"), nil, storage.RangeOptions{Rev: 42})
		require.ErrorIs(t, err, storage.ErrCompacted)
		require.Equal(t, before[13:], history(t, s, 43, 44), "reads at or above the compaction are unchanged")
		hashAfter, err := s.HashKV(0)
		require.NoError(t, err)
		require.NotEqual(t, hashBefore.Hash, hashAfter.Hash, "the compaction revision changes what is hashed")
		require.EqualValues(t, 43, hashAfter.CompactRev)
		require.EqualValues(t, 44, hashAfter.HashRev)
		// As etcd, the hash at the compaction revision is the one taken
		// before compacting, so it does not change when compaction runs.
		at43, err := s.HashKV(43)
		require.NoError(t, err)
		require.EqualValues(t, 43, at43.HashRev)
		require.EqualValues(t, -1, at43.CompactRev, "taken before the compaction")

		// Old versions are physically gone: k0 has 8 versions, 1 is left.
		res, err := s.Range([]byte("k0"), nil, storage.RangeOptions{})
		require.NoError(t, err)
		require.EqualValues(t, 8, res.KVs[0].Version, "version survives compaction")
		_, err = s.Compact(43)
		require.ErrorIs(t, err, storage.ErrCompacted)
		_, err = s.Compact(45)
		require.ErrorIs(t, err, storage.ErrFutureRev)
		require.NoError(t, s.Defragment())
		sizes1, err := s.Sizes()
		require.NoError(t, err)
		t.Logf("sizes before %+v after %+v", sizes0, sizes1)

		// Compact everything: tombstones at the compaction point go too.
		done, err = s.Compact(44)
		require.NoError(t, err)
		<-done
		require.Equal(t, before[14:], history(t, s, 44, 44))
		_, err = s.HashKV(42)
		require.ErrorIs(t, err, storage.ErrCompacted)
		_, err = s.HashKV(43)
		require.NoError(t, err, "a remembered compaction hash is still answered, as etcd")
	})
}

func TestCompactionResumesAfterReopen(t *testing.T) {
	e := engines[1] // rocksdb
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.CompactionSleepInterval = 50e6 // 50 ms between batches of 7
	s, err := storage.Open(e.open(t, dir), cfg)
	require.NoError(t, err)
	for i := range 200 {
		_, err := s.Put([]byte(fmt.Sprintf("k%d", i%3)), []byte("v"), 0)
		require.NoError(t, err)
	}
	want := history(t, s, 150, 201)
	_, err = s.Compact(150)
	require.NoError(t, err)
	require.NoError(t, s.Close()) // stops compaction midway

	s, err = storage.Open(e.open(t, dir), testConfig(t))
	require.NoError(t, err)
	defer s.Close()
	require.EqualValues(t, 150, s.CompactRev())
	done, err := s.Compact(151)
	require.NoError(t, err)
	<-done
	require.Equal(t, want[1:], history(t, s, 151, 201))
	_, err = s.Range([]byte("k0"), nil, storage.RangeOptions{Rev: 150})
	require.ErrorIs(t, err, storage.ErrCompacted)
}

// TestHashKVIndependentOfPhysicalCompaction compares a store whose
// compaction finished with one, on the other engine, whose compaction has
// barely started.
func TestHashKVIndependentOfPhysicalCompaction(t *testing.T) {
	fast := newStore(t, engines[0])
	cfg := testConfig(t)
	cfg.CompactionBatchLimit, cfg.CompactionSleepInterval = 1, 1e9 // one entry per second
	slow, err := storage.Open(engines[1].open(t, t.TempDir()), cfg)
	require.NoError(t, err)
	defer slow.Close()
	for _, s := range []*storage.Store{fast, slow} {
		for i := range 60 {
			put(t, s, fmt.Sprintf("k%d", i%7), fmt.Sprint(i))
			if i%11 == 0 {
				_, _, err := s.DeleteRange([]byte(fmt.Sprintf("k%d", i%7)), nil)
				require.NoError(t, err)
			}
		}
	}
	done, err := fast.Compact(40)
	require.NoError(t, err)
	<-done
	_, err = slow.Compact(40)
	require.NoError(t, err)
	for _, rev := range []int64{0, 40, 50, 60} {
		a, err := fast.HashKV(rev)
		require.NoError(t, err)
		b, err := slow.HashKV(rev)
		require.NoError(t, err)
		require.Equal(t, a, b, "rev %d", rev)
	}
}

// The hash at a compaction revision reads the whole history: Compact (the
// apply of a compaction request) must not wait for it — writes go on while
// it runs — and HashKV at that revision waits for it and answers the hash
// of the history before compaction, as etcd.
func TestCompactDoesNotWaitForItsHash(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		for i := range 50 {
			put(t, s, fmt.Sprintf("k%02d", i%10), fmt.Sprint(i))
		}
		rev := s.Rev()
		before, err := s.HashKV(rev)
		require.NoError(t, err)
		hold := make(chan struct{})
		release := sync.OnceFunc(func() { close(hold) })
		t.Cleanup(release) // before the store closes, should the test fail
		storage.SetHashHook(s, func() { <-hold })
		compacted := make(chan (<-chan struct{}), 1)
		go func() {
			done, err := s.Compact(rev)
			assert.NoError(t, err)
			compacted <- done
		}()
		var done <-chan struct{}
		select {
		case done = <-compacted:
		case <-time.After(20 * time.Second):
			t.Fatal("Compact waited for the compaction-time hash")
		}
		put(t, s, "during", "hash") // writes go on
		got := make(chan storage.KVHash, 1)
		go func() {
			h, err := s.HashKV(rev)
			assert.NoError(t, err)
			got <- h
		}()
		release()
		<-done
		require.Equal(t, before, <-got, "HashKV waited for the hash before compaction")
		h, err := s.HashKV(rev)
		require.NoError(t, err)
		require.Equal(t, before, h)
	})
}

// TestCompactionObserver: the observer hears the pause Compact itself
// takes, one pause per removal batch, and the end of the removal with the
// records it deleted.
func TestCompactionObserver(t *testing.T) {
	var (
		mu               sync.Mutex
		scheduled, batch int
		done             []int64
		deleted          int
	)
	cfg := testConfig(t)
	cfg.Observer = storage.Observer{
		CompactionPause: func(sched bool, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if sched {
				scheduled++
			} else {
				batch++
			}
		},
		CompactionDone: func(rev int64, took time.Duration, n int) {
			mu.Lock()
			defer mu.Unlock()
			done = append(done, rev)
			deleted += n
		},
	}
	s, err := storage.Open(engines[0].open(t, t.TempDir()), cfg)
	require.NoError(t, err)
	defer s.Close()
	for i := range 40 {
		put(t, s, fmt.Sprintf("k%d", i%5), fmt.Sprint(i)) // revs 2..41
	}
	ch, err := s.Compact(41)
	require.NoError(t, err)
	<-ch
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, scheduled)
	require.Equal(t, 6, batch, "40 history entries in batches of 7")
	require.Equal(t, []int64{41}, done)
	// 5 keys × 7 superseded versions, each a version record and its
	// history entry.
	require.Equal(t, 70, deleted)
}
