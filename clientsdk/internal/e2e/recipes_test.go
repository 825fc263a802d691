package e2e

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/clientsdk/recipes"
)

func TestSemaphoreCapacity(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	var holders, peak atomic.Int32
	var wg sync.WaitGroup
	for range 6 {
		sem := recipes.NewSemaphore(session(t, c), pfx, 2)
		wg.Go(func() {
			for range 3 {
				require.NoError(t, sem.Acquire(ctx(t)))
				n := holders.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond) // hold it a moment so holders overlap
				holders.Add(-1)
				require.NoError(t, sem.Release(ctx(t)))
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 2, peak.Load(), "never more than 2 holders, and both slots used")
	require.ErrorIs(t, recipes.NewSemaphore(session(t, c), pfx, 2).Release(ctx(t)), recipes.ErrNotHeld)
}

func TestBarriersAndQueue(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	b := recipes.NewBarrier(c, pfx+"/barrier")
	require.NoError(t, b.Hold())
	released := make(chan struct{})
	go func() {
		require.NoError(t, recipes.NewBarrier(c, pfx+"/barrier").Wait())
		close(released)
	}()
	require.Never(t, func() bool {
		select {
		case <-released:
			return true
		default:
			return false
		}
	}, 200*time.Millisecond, 20*time.Millisecond)
	require.NoError(t, b.Release())
	<-released

	var entered sync.WaitGroup
	for range 3 {
		db := recipes.NewDoubleBarrier(session(t, c), pfx+"/double", 3)
		entered.Go(func() {
			require.NoError(t, db.Enter())
			require.NoError(t, db.Leave())
		})
	}
	entered.Wait()

	q := recipes.NewQueue(c, pfx+"/queue")
	for _, v := range []string{"a", "b", "c"} {
		require.NoError(t, q.Enqueue(v))
	}
	for _, want := range []string{"a", "b", "c"} {
		got, err := q.Dequeue()
		require.NoError(t, err)
		require.Equal(t, want, got, "FIFO")
	}

	rw := recipes.NewRWMutex(session(t, c), pfx+"/rw")
	require.NoError(t, rw.RLock())
	require.NoError(t, recipes.NewRWMutex(session(t, c), pfx+"/rw").RLock(), "readers share")
	require.NoError(t, rw.RUnlock())
}
