package e2e

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	v3 "go.etcd.io/etcd/client/v3"
	etcdconcurrency "go.etcd.io/etcd/client/v3/concurrency"

	"github.com/metastore/metastore/clientsdk/concurrency"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func session(t *testing.T, c *v3.Client, opts ...concurrency.SessionOption) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestMutexNeverLosesAnUpdate: clients increment a shared counter under the
// lock with a plain read-modify-write; no increment may be lost.
func TestMutexNeverLosesAnUpdate(t *testing.T) {
	pfx := prefix(t)
	counter := pfx + "/counter"
	const clients, rounds = 5, 10
	var wg sync.WaitGroup
	for range clients {
		c := newClient(t)
		m := concurrency.NewMutex(session(t, c), pfx+"/lock")
		wg.Go(func() {
			for range rounds {
				require.NoError(t, m.Lock(ctx(t)))
				resp, err := c.Get(ctx(t), counter)
				require.NoError(t, err)
				n := 0
				if len(resp.Kvs) == 1 {
					n, _ = strconv.Atoi(string(resp.Kvs[0].Value))
				}
				_, err = m.Txn(ctx(t)).Then(v3.OpPut(counter, strconv.Itoa(n+1))).Commit()
				require.NoError(t, err)
				require.NoError(t, m.Unlock(ctx(t)))
			}
		})
	}
	wg.Wait()
	resp, err := newClient(t).Get(ctx(t), counter)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(clients*rounds), string(resp.Kvs[0].Value))
}

func TestTryLock(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	m1 := concurrency.NewMutex(session(t, c), pfx)
	m2 := concurrency.NewMutex(session(t, c), pfx)
	require.NoError(t, m1.TryLock(ctx(t)))
	require.ErrorIs(t, m2.TryLock(ctx(t)), concurrency.ErrLocked)
	require.ErrorIs(t, m2.Unlock(ctx(t)), concurrency.ErrLockReleased)
	require.NoError(t, m1.Unlock(ctx(t)))
	require.NoError(t, m2.TryLock(ctx(t)))
	require.Greater(t, m2.FencingToken(), int64(0))
}

// TestWaitersAreServedInOrder: waiters get the lock in the order they
// asked, and fencing tokens grow from one owner to the next.
func TestWaitersAreServedInOrder(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	holder := concurrency.NewMutex(session(t, c), pfx)
	require.NoError(t, holder.Lock(ctx(t)))
	order := make(chan int, 3)
	tokens := make([]int64, 4)
	tokens[0] = holder.FencingToken()
	var wg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		m := concurrency.NewMutex(session(t, c), pfx)
		wg.Go(func() {
			require.NoError(t, m.Lock(ctx(t)))
			order <- i
			tokens[i] = m.FencingToken()
			require.NoError(t, m.Unlock(ctx(t)))
		})
		// Queue the next waiter only once this one's key exists.
		require.Eventually(t, func() bool {
			r, err := c.Get(ctx(t), pfx+"/", v3.WithPrefix(), v3.WithCountOnly())
			return err == nil && r.Count == int64(i+1)
		}, 10*time.Second, 5*time.Millisecond)
	}
	require.NoError(t, holder.Unlock(ctx(t)))
	wg.Wait()
	close(order)
	var got []int
	for i := range order {
		got = append(got, i)
	}
	require.Equal(t, []int{1, 2, 3}, got)
	for i := 1; i < 4; i++ {
		require.Greater(t, tokens[i], tokens[i-1], "fencing tokens grow across owners")
	}
}

// TestExpiredHolderIsToldAndCannotWrite is the paused-client failure mode:
// the holder's lease is gone while it still believes it owns the lock.
func TestExpiredHolderIsToldAndCannotWrite(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	s1 := session(t, c, concurrency.WithTTL(5))
	m1 := concurrency.NewMutex(s1, pfx+"/lock")
	require.NoError(t, m1.Lock(ctx(t)))
	lost := m1.Lost()
	require.NotNil(t, lost)
	stale := m1.FencingToken()

	// The "pause": the lease expires (revoked here to keep the test fast).
	_, err := c.Revoke(ctx(t), s1.Lease())
	require.NoError(t, err)
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the holder was not told that its lock is gone")
	}

	m2 := concurrency.NewMutex(session(t, c), pfx+"/lock")
	require.NoError(t, m2.Lock(ctx(t)))
	require.Greater(t, m2.FencingToken(), stale)
	_, err = m2.Txn(ctx(t)).Then(v3.OpPut(pfx+"/data", "fresh")).Commit()
	require.NoError(t, err)

	// The old holder resumes and writes through its guard: refused.
	_, err = m1.Txn(ctx(t)).Then(v3.OpPut(pfx+"/data", "stale")).Commit()
	require.ErrorIs(t, err, concurrency.ErrLockLost)
	resp, err := c.Get(ctx(t), pfx+"/data")
	require.NoError(t, err)
	require.Equal(t, "fresh", string(resp.Kvs[0].Value))
}

func TestGuardedTxnKeepsCallerConditions(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	m := concurrency.NewMutex(session(t, c), pfx+"/lock")
	require.NoError(t, m.Lock(ctx(t)))
	resp, err := m.Txn(ctx(t)).
		If(v3.Compare(v3.Value(pfx+"/x"), "=", "never")).
		Then(v3.OpPut(pfx+"/x", "then")).
		Else(v3.OpPut(pfx+"/x", "else")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "the caller's own condition failed, ownership held")
	got, err := c.Get(ctx(t), pfx+"/x")
	require.NoError(t, err)
	require.Equal(t, "else", string(got.Kvs[0].Value))
	require.NoError(t, m.Unlock(ctx(t)))
	require.Nil(t, m.Lost(), "no loss channel once released")
}

// TestInteroperatesWithEtcdConcurrency: our Mutex and etcd's exclude each
// other on the same name.
func TestInteroperatesWithEtcdConcurrency(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	ours := concurrency.NewMutex(session(t, c), pfx)
	es, err := etcdconcurrency.NewSession(c)
	require.NoError(t, err)
	defer es.Close()
	theirs := etcdconcurrency.NewMutex(es, pfx)
	require.NoError(t, ours.Lock(ctx(t)))
	require.ErrorIs(t, theirs.TryLock(ctx(t)), etcdconcurrency.ErrLocked)
	var got atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		if theirs.Lock(ctx(t)) == nil {
			got.Store(true)
		}
	}()
	require.Never(t, got.Load, 200*time.Millisecond, 20*time.Millisecond)
	require.NoError(t, ours.Unlock(ctx(t)))
	<-done
	require.True(t, got.Load())
	require.NoError(t, theirs.Unlock(ctx(t)))
}

func TestLockerAndSessionExpiry(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	l := concurrency.NewLocker(session(t, c), pfx)
	l.Lock()
	l.Unlock()

	s := session(t, c)
	m := concurrency.NewMutex(s, pfx+"/b")
	holder := concurrency.NewMutex(session(t, c), pfx+"/b")
	require.NoError(t, holder.Lock(ctx(t)))
	errc := make(chan error, 1)
	go func() { errc <- m.Lock(ctx(t)) }()
	require.Eventually(t, func() bool {
		r, err := c.Get(ctx(t), pfx+"/b/", v3.WithPrefix(), v3.WithCountOnly())
		return err == nil && r.Count == 2
	}, 10*time.Second, 5*time.Millisecond)
	_, err := c.Revoke(ctx(t), s.Lease()) // the waiter's session dies while it waits
	require.NoError(t, err)
	require.NoError(t, holder.Unlock(ctx(t)))
	require.ErrorIs(t, <-errc, concurrency.ErrSessionExpired)
}

// TestPausePastTTL is the real thing, without revoking: the holder stops
// keeping its lease alive (as a paused process would) and the lease runs
// out on the server.
func TestPausePastTTL(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	s1, err := concurrency.NewSession(c, concurrency.WithTTL(1))
	require.NoError(t, err)
	m1 := concurrency.NewMutex(s1, pfx+"/lock")
	require.NoError(t, m1.Lock(ctx(t)))
	s1.Orphan() // no more keepalives: the process is "paused"

	m2 := concurrency.NewMutex(session(t, c), pfx+"/lock")
	require.NoError(t, m2.Lock(ctx(t)), "the lock frees itself once the TTL runs out")
	_, err = m1.Txn(ctx(t)).Then(v3.OpPut(pfx+"/data", "stale")).Commit()
	require.ErrorIs(t, err, concurrency.ErrLockLost, "the paused holder's write is refused")
	select {
	case <-m1.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost() did not fire")
	}
}
