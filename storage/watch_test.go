package storage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage"
)

// recv waits for the next response on ws.
func recv(t *testing.T, ws *storage.WatchStream) storage.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-ws.Chan():
		require.True(t, ok, "stream closed")
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response")
		return storage.WatchResponse{}
	}
}

// noRecv checks that nothing is waiting on ws.
func noRecv(t *testing.T, ws *storage.WatchStream) {
	t.Helper()
	select {
	case r := <-ws.Chan():
		t.Fatalf("unexpected response %+v", r)
	default:
	}
}

func evString(ev *mvccpb.Event) string {
	s := fmt.Sprintf("%s %s=%s@%d", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
	if ev.PrevKv != nil {
		s += fmt.Sprintf(" prev=%s@%d", ev.PrevKv.Value, ev.PrevKv.ModRevision)
	}
	return s
}

func evStrings(evs []*mvccpb.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, evString(ev))
	}
	return out
}

func TestWatchSynced(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		ws := s.NewWatchStream(0)
		defer ws.Close()
		id0, err := ws.Watch(storage.WatchOptions{Key: []byte("a")})
		require.NoError(t, err)
		require.EqualValues(t, 0, id0, "automatic IDs start at 0, as in etcd")
		idRange, err := ws.Watch(storage.WatchOptions{Key: []byte("a"), End: []byte("c"), PrevKV: true})
		require.NoError(t, err)
		require.EqualValues(t, 1, idRange)
		_, err = ws.Watch(storage.WatchOptions{ID: 1, Key: []byte("x")})
		require.ErrorIs(t, err, storage.ErrWatcherDuplicateID)
		_, err = ws.Watch(storage.WatchOptions{Key: []byte("b"), End: []byte("a")})
		require.ErrorIs(t, err, storage.ErrEmptyWatcherRange)
		idNoPut, err := ws.Watch(storage.WatchOptions{ID: 100, Key: []byte("b"), NoPut: true})
		require.NoError(t, err)

		put(t, s, "a", "1") // rev 2
		got := map[storage.WatchID][]string{}
		for range 2 {
			r := recv(t, ws)
			require.EqualValues(t, 2, r.Revision)
			got[r.WatchID] = evStrings(r.Events)
		}
		require.Equal(t, []string{"PUT a=1@2"}, got[id0])
		require.Equal(t, []string{"PUT a=1@2"}, got[idRange])

		tw, err := s.Write()
		require.NoError(t, err)
		_, err = tw.Put([]byte("b"), []byte("1"), 0)
		require.NoError(t, err)
		_, err = tw.Put([]byte("a"), []byte("2"), 0)
		require.NoError(t, err)
		_, err = tw.Put([]byte("z"), []byte("1"), 0)
		require.NoError(t, err)
		_, err = tw.End()
		require.NoError(t, err) // rev 3
		got = map[storage.WatchID][]string{}
		for range 2 {
			r := recv(t, ws)
			got[r.WatchID] = evStrings(r.Events)
		}
		require.Equal(t, []string{"PUT a=2@3"}, got[id0], "no prev_kv unless asked")
		require.Equal(t, []string{"PUT b=1@3", "PUT a=2@3 prev=1@2"}, got[idRange], "one response per revision, events in order")

		_, _, err = s.DeleteRange([]byte("b"), nil) // rev 4
		require.NoError(t, err)
		got = map[storage.WatchID][]string{}
		for range 2 {
			r := recv(t, ws)
			got[r.WatchID] = evStrings(r.Events)
		}
		require.Equal(t, []string{"DELETE b=@4"}, got[idNoPut])
		require.Equal(t, []string{"DELETE b=@4 prev=1@3"}, got[idRange])

		require.NoError(t, ws.Cancel(id0))
		require.ErrorIs(t, ws.Cancel(id0), storage.ErrWatcherNotExist)
		put(t, s, "a", "3")
		r := recv(t, ws)
		require.Equal(t, idRange, r.WatchID, "a cancelled watcher gets nothing")
		noRecv(t, ws)

		ws.RequestProgress(idRange)
		r = recv(t, ws)
		require.Equal(t, storage.WatchResponse{WatchID: idRange, Revision: 5}, r)
		require.True(t, ws.RequestProgressAll())
		r = recv(t, ws)
		require.Equal(t, storage.WatchResponse{WatchID: storage.ProgressWatchID, Revision: 5}, r)
	})
}

func TestWatchFromPastRevision(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		for i := range 10 {
			put(t, s, fmt.Sprintf("k%d", i%3), fmt.Sprint(i)) // revs 2..11
		}
		ws := s.NewWatchStream(0)
		defer ws.Close()
		_, err := ws.Watch(storage.WatchOptions{Key: []byte("k1"), StartRev: 3, PrevKV: true})
		require.NoError(t, err)
		r := recv(t, ws)
		require.Equal(t, []string{"PUT k1=1@3", "PUT k1=4@6 prev=1@3", "PUT k1=7@9 prev=4@6"}, evStrings(r.Events))
		require.EqualValues(t, 11, r.Revision)
		put(t, s, "k1", "new") // now synced: arrives from the write path
		r = recv(t, ws)
		require.Equal(t, []string{"PUT k1=new@12 prev=7@9"}, evStrings(r.Events))

		// A watcher from a compacted revision is cancelled with the compact revision.
		done, err := s.Compact(8)
		require.NoError(t, err)
		<-done
		id, err := ws.Watch(storage.WatchOptions{Key: []byte("k1"), StartRev: 5})
		require.NoError(t, err)
		r = recv(t, ws)
		require.Equal(t, storage.WatchResponse{WatchID: id, CompactRevision: 8, Revision: 12}, r)
		// From the compaction revision itself is fine.
		id, err = ws.Watch(storage.WatchOptions{Key: []byte("k0"), StartRev: 8})
		require.NoError(t, err)
		r = recv(t, ws)
		require.Equal(t, id, r.WatchID)
		require.Equal(t, []string{"PUT k0=6@8", "PUT k0=9@11"}, evStrings(r.Events))
	})
}

// TestWatchSlowConsumer fills a tiny stream buffer while writing fast: the
// writer never blocks, and the consumer still sees every event exactly once,
// in order.
func TestWatchSlowConsumer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		ws := s.NewWatchStream(1)
		defer ws.Close()
		_, err := ws.Watch(storage.WatchOptions{Key: []byte("k"), End: []byte("l")})
		require.NoError(t, err)
		const n = 500
		for i := range n {
			put(t, s, fmt.Sprintf("k%03d", i%17), fmt.Sprint(i)) // never blocks on the watcher
		}
		st := s.WatchStats()
		require.Equal(t, 1, st.Slow, "the watcher waits behind its full buffer")
		require.Positive(t, st.PendingEvents, "with the events it could not deliver")
		next := int64(2)
		for next <= n+1 {
			r := recv(t, ws)
			for _, ev := range r.Events {
				require.Equal(t, next, ev.Kv.ModRevision, "no gap, no duplicate")
				require.Equal(t, fmt.Sprint(next-2), string(ev.Kv.Value))
				next++
			}
		}
		noRecv(t, ws)
		require.Equal(t, storage.WatchStats{}, s.WatchStats(), "caught up")
	})
}

func TestWatchStreamClosedByStoreClose(t *testing.T) {
	s, err := storage.Open(engines[0].open(t, ""), testConfig(t))
	require.NoError(t, err)
	ws := s.NewWatchStream(0)
	_, err = ws.Watch(storage.WatchOptions{Key: []byte("a")})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, ok := <-ws.Chan()
	require.False(t, ok)
	_, err = ws.Watch(storage.WatchOptions{Key: []byte("a")})
	require.ErrorIs(t, err, storage.ErrEmptyWatcherRange)
	ws.Close() // idempotent
}

// TestWatchProgressNeverAheadOfEvents: progress reports, asked for while
// writes go on, never carry a revision whose event the watcher has not
// been given yet: each is at least the last event's revision, and every
// later event is above it (etcd's "bookmarkable" guarantee; a client
// resumes a broken watch from a progress revision + 1). The robustness
// suite caught a report of a committed revision whose notification was
// still on its way, and a watch resumed after it missed that event.
func TestWatchProgressNeverAheadOfEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		ws := s.NewWatchStream(1 << 16)
		defer ws.Close()
		id, err := ws.Watch(storage.WatchOptions{Key: []byte("k"), End: []byte("l")})
		require.NoError(t, err)
		const writes = 3000
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range writes {
				if _, err := s.Put([]byte(fmt.Sprintf("k%d", i%7)), []byte("v"), 0); err != nil {
					return
				}
			}
		}()
		go func() {
			for {
				select {
				case <-done:
					return
				default:
					ws.RequestProgress(id)
					ws.RequestProgressAll()
				}
			}
		}()
		var lastEvent, lastProgress int64
		for lastEvent < writes+1 {
			r := recv(t, ws)
			for _, ev := range r.Events {
				require.Greater(t, ev.Kv.ModRevision, lastProgress, "an event at or below a progress report already sent")
				lastEvent = ev.Kv.ModRevision
			}
			if len(r.Events) == 0 && r.CompactRevision == 0 {
				require.GreaterOrEqual(t, r.Revision, lastEvent, "a progress report below an event already sent")
				lastProgress = r.Revision
			}
		}
		<-done
	})
}

// TestWatchFromCompactionRevisionGetsItsDeletion: a deletion at exactly the
// compaction revision survives that compaction, as in etcd (its key index
// keeps the generation whose tombstone is at the compaction revision), so
// a watch from the compaction revision still gets it; the next compaction
// removes it. The robustness suite caught watches from such a revision
// starting one event late.
func TestWatchFromCompactionRevisionGetsItsDeletion(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		put(t, s, "a", "1")
		_, del, err := s.DeleteRange([]byte("a"), nil)
		require.NoError(t, err)
		after := put(t, s, "b", "2")
		done, err := s.Compact(del)
		require.NoError(t, err)
		<-done

		ws := s.NewWatchStream(0)
		defer ws.Close()
		_, err = ws.Watch(storage.WatchOptions{Key: []byte("a"), End: []byte("c"), StartRev: del})
		require.NoError(t, err)
		r := recv(t, ws)
		require.Equal(t, []string{fmt.Sprintf("DELETE a=@%d", del), fmt.Sprintf("PUT b=2@%d", after)}, evStrings(r.Events))

		// The next compaction removes it.
		done, err = s.Compact(after)
		require.NoError(t, err)
		<-done
		_, err = ws.Watch(storage.WatchOptions{Key: []byte("a"), End: []byte("c"), StartRev: after})
		require.NoError(t, err)
		r = recv(t, ws)
		require.Equal(t, []string{fmt.Sprintf("PUT b=2@%d", after)}, evStrings(r.Events))
		res, err := s.Range([]byte("a"), []byte("c"), storage.RangeOptions{Rev: after})
		require.NoError(t, err)
		require.Len(t, res.KVs, 1)
	})
}
