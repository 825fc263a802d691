package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	v3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/clientsdk/concurrency"
	"github.com/metastore/metastore/clientsdk/recipes"
)

// A session on a lease the caller granted keeps it; one bound to a
// context ends with it.
func TestSessionOptions(t *testing.T) {
	c := newClient(t)
	g, err := c.Grant(ctx(t), 60)
	require.NoError(t, err)
	s := session(t, c, concurrency.WithLease(g.ID))
	require.Equal(t, g.ID, s.Lease())

	sctx, cancel := context.WithCancel(ctx(t))
	s2 := session(t, c, concurrency.WithContext(sctx))
	cancel()
	select {
	case <-s2.Done():
	case <-ctx(t).Done():
		t.Fatal("a session bound to a cancelled context did not end")
	}
}

// Headers are those of the requests that took the lock and won the
// election: their revisions order the owners.
func TestHeadersOfLockAndElection(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	m := concurrency.NewMutex(session(t, c), pfx+"/lock")
	require.Nil(t, m.Header())
	require.NoError(t, m.Lock(ctx(t)))
	require.NotNil(t, m.Header())
	require.GreaterOrEqual(t, m.Header().Revision, m.FencingToken())
	require.NoError(t, m.Unlock(ctx(t)))

	e := concurrency.NewElection(session(t, c), pfx+"/elect")
	require.NoError(t, e.Campaign(ctx(t), "me"))
	require.NotNil(t, e.Header())
	require.GreaterOrEqual(t, e.Header().Revision, e.FencingToken())
	require.NoError(t, e.Resign(ctx(t)))
}

// Every STM constructor commits its transaction at its isolation level,
// prefetching and abort contexts included.
func TestSTMIsolationLevels(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	appendX := func(s concurrency.STM) error {
		s.Put(pfx, s.Get(pfx)+"x")
		return nil
	}
	for _, run := range []func() error{
		func() error { _, err := concurrency.NewSTMRepeatable(ctx(t), c, appendX); return err },
		func() error { _, err := concurrency.NewSTMSerializable(ctx(t), c, appendX); return err },
		func() error { _, err := concurrency.NewSTMReadCommitted(ctx(t), c, appendX); return err },
		func() error {
			_, err := concurrency.NewSTM(c, appendX, concurrency.WithPrefetch(pfx), concurrency.WithAbortContext(ctx(t)))
			return err
		},
	} {
		require.NoError(t, run())
	}
	resp, err := c.Get(ctx(t), pfx)
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("x", 4), string(resp.Kvs[0].Value))
}

// The priority queue hands out the lowest priority first.
func TestPriorityQueueOrder(t *testing.T) {
	q := recipes.NewPriorityQueue(newClient(t), prefix(t))
	require.NoError(t, q.Enqueue("low", 9))
	require.NoError(t, q.Enqueue("high", 1))
	for _, want := range []string{"high", "low"} {
		got, err := q.Dequeue()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}

// A waiter that gives up leaves nothing behind: its semaphore key is
// deleted, a mutex or election it waited for is free for the next one.
func TestWaitersThatGiveUpLeaveNothing(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	short := func() context.Context {
		cctx, cancel := context.WithTimeout(ctx(t), time.Second)
		t.Cleanup(cancel)
		return cctx
	}

	holder := recipes.NewSemaphore(session(t, c), pfx+"/sem", 1)
	require.NoError(t, holder.Acquire(ctx(t)))
	waiter := recipes.NewSemaphore(session(t, c), pfx+"/sem", 1)
	require.ErrorIs(t, waiter.Acquire(short()), context.DeadlineExceeded)
	keys, err := c.Get(ctx(t), pfx+"/sem/", v3.WithPrefix(), v3.WithCountOnly())
	require.NoError(t, err)
	require.EqualValues(t, 1, keys.Count, "the waiter's key is gone")
	require.NoError(t, holder.Release(ctx(t)))
	require.NoError(t, waiter.Acquire(ctx(t)))
	require.NoError(t, waiter.Release(ctx(t)))

	owner := concurrency.NewMutex(session(t, c), pfx+"/lock")
	require.NoError(t, owner.Lock(ctx(t)))
	late := concurrency.NewMutex(session(t, c), pfx+"/lock")
	require.ErrorIs(t, late.Lock(short()), context.DeadlineExceeded)
	require.NoError(t, owner.Unlock(ctx(t)))
	next := concurrency.NewMutex(session(t, c), pfx+"/lock")
	require.NoError(t, next.Lock(ctx(t)), "the abandoned waiter does not block the next one")
	require.NoError(t, next.Unlock(ctx(t)))

	leader := concurrency.NewElection(session(t, c), pfx+"/elect")
	require.NoError(t, leader.Campaign(ctx(t), "a"))
	candidate := concurrency.NewElection(session(t, c), pfx+"/elect")
	require.ErrorIs(t, candidate.Campaign(short(), "b"), context.DeadlineExceeded)
	require.NoError(t, leader.Proclaim(ctx(t), "a2"))
	got, err := leader.Leader(ctx(t))
	require.NoError(t, err)
	require.Equal(t, "a2", string(got.Kvs[0].Value))
	require.NoError(t, leader.Resign(ctx(t)))
	third := concurrency.NewElection(session(t, c), pfx+"/elect")
	require.NoError(t, third.Campaign(ctx(t), "c"), "the candidate that gave up is not in line")
	require.NoError(t, third.Resign(ctx(t)))
}
