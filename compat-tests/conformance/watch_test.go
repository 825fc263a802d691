package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// nextRev returns the revision after the last acknowledged write: a watch
// from it sees every later write, whichever member serves it and however
// late its create request arrives.
func nextRev(t *testing.T, c *clientv3.Client) int64 {
	t.Helper()
	r, err := c.Get(ctx(t), "compat/")
	require.NoError(t, err)
	return r.Header.Revision + 1
}

// next receives one watch response or fails after a while.
func next(t *testing.T, w clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case wr, ok := <-w:
		require.True(t, ok, "watch channel closed")
		return wr
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response")
	}
	return clientv3.WatchResponse{}
}

// events collects n events from w.
func events(t *testing.T, w clientv3.WatchChan, n int) []*clientv3.Event {
	t.Helper()
	var out []*clientv3.Event
	for len(out) < n {
		wr := next(t, w)
		require.NoError(t, wr.Err())
		out = append(out, wr.Events...)
	}
	return out
}

func TestWatchOrderPrevKVAndFilters(t *testing.T) {
	c, p := newClient(t), prefix(t)
	from := nextRev(t, c)
	w := c.Watch(ctx(t), p, clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(from))
	nodel := c.Watch(ctx(t), p, clientv3.WithPrefix(), clientv3.WithFilterDelete(), clientv3.WithRev(from))
	var revs []int64
	for i := range 5 {
		r, err := c.Put(ctx(t), p+"k", fmt.Sprint(i))
		require.NoError(t, err)
		revs = append(revs, r.Header.Revision)
	}
	d, err := c.Delete(ctx(t), p+"k")
	require.NoError(t, err)
	evs := events(t, w, 6)
	for i, ev := range evs[:5] {
		require.Equal(t, mvccpb.PUT, ev.Type)
		require.Equal(t, revs[i], ev.Kv.ModRevision, "in revision order, no gaps")
		require.EqualValues(t, i+1, ev.Kv.Version)
		if i == 0 {
			require.Nil(t, ev.PrevKv, "a create has no previous value")
		} else {
			require.Equal(t, fmt.Sprint(i-1), string(ev.PrevKv.Value))
		}
	}
	require.Equal(t, mvccpb.DELETE, evs[5].Type)
	require.Equal(t, d.Header.Revision, evs[5].Kv.ModRevision)
	require.Equal(t, "4", string(evs[5].PrevKv.Value))
	puts := events(t, nodel, 5)
	for _, ev := range puts {
		require.Equal(t, mvccpb.PUT, ev.Type)
	}
}

func TestWatchFromRevisionAndResume(t *testing.T) {
	c, p := newClient(t), prefix(t)
	var revs []int64
	for i := range 4 {
		r, err := c.Put(ctx(t), p+fmt.Sprint(i), "v")
		require.NoError(t, err)
		revs = append(revs, r.Header.Revision)
	}
	// History replay from a past revision, then live events: a watcher
	// resumed at last+1 sees each event once.
	w := c.Watch(ctx(t), p, clientv3.WithPrefix(), clientv3.WithRev(revs[1]))
	evs := events(t, w, 3)
	require.Equal(t, revs[1:], []int64{evs[0].Kv.ModRevision, evs[1].Kv.ModRevision, evs[2].Kv.ModRevision})
	wctx, cancel := context.WithCancel(ctx(t))
	w2 := c.Watch(wctx, p, clientv3.WithPrefix(), clientv3.WithRev(revs[3]+1))
	r, err := c.Put(ctx(t), p+"x", "v")
	require.NoError(t, err)
	ev := events(t, w2, 1)[0]
	require.Equal(t, r.Header.Revision, ev.Kv.ModRevision)
	cancel()
}

func TestWatchCompactedStart(t *testing.T) {
	c, p := newClient(t), prefix(t)
	r1, err := c.Put(ctx(t), p+"k", "1")
	require.NoError(t, err)
	r2, err := c.Put(ctx(t), p+"k", "2")
	require.NoError(t, err)
	_, err = c.Compact(ctx(t), r2.Header.Revision)
	require.NoError(t, err)
	// Members apply the compaction one after the other: wait until every
	// member answers for it, whichever one will serve the watch.
	for _, ep := range endpoints {
		mc := newClient(t, ep)
		require.Eventually(t, func() bool {
			_, err := mc.Get(ctx(t), p+"k", clientv3.WithRev(r1.Header.Revision), clientv3.WithSerializable())
			return errors.Is(err, rpctypes.ErrCompacted)
		}, 10*time.Second, 10*time.Millisecond, "member %s applies the compaction", ep)
	}
	w := c.Watch(ctx(t), p+"k", clientv3.WithRev(r1.Header.Revision))
	wr := next(t, w)
	require.True(t, wr.Canceled)
	require.ErrorIs(t, wr.Err(), rpctypes.ErrCompacted)
	require.GreaterOrEqual(t, wr.CompactRevision, r2.Header.Revision)
}

func TestWatchProgressAndHeader(t *testing.T) {
	c, p := newClient(t), prefix(t)
	wctx := clientv3.WithRequireLeader(ctx(t))
	w := c.Watch(wctx, p, clientv3.WithRev(nextRev(t, c)))
	r, err := c.Put(ctx(t), p, "v")
	require.NoError(t, err)
	require.Len(t, events(t, w, 1), 1)
	require.NoError(t, c.RequestProgress(wctx))
	wr := next(t, w)
	require.True(t, wr.IsProgressNotify())
	require.GreaterOrEqual(t, wr.Header.Revision, r.Header.Revision)
	require.NotZero(t, wr.Header.ClusterId)
	require.NotZero(t, wr.Header.MemberId)
}

func TestWatchManyOnOneStream(t *testing.T) {
	c, p := newClient(t), prefix(t)
	var ws []clientv3.WatchChan
	from := nextRev(t, c)
	for i := range 10 {
		ws = append(ws, c.Watch(ctx(t), fmt.Sprint(p, i), clientv3.WithRev(from)))
	}
	for i := range 10 {
		_, err := c.Put(ctx(t), fmt.Sprint(p, i), "v")
		require.NoError(t, err)
	}
	for i, w := range ws {
		ev := events(t, w, 1)[0]
		require.Equal(t, fmt.Sprint(p, i), string(ev.Kv.Key), "each watcher gets its own key only")
	}
}
