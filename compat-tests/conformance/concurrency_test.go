package conformance

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func TestMutexExcludes(t *testing.T) {
	c, p := newClient(t), prefix(t)
	var mu sync.Mutex
	holders, maxHolders := 0, 0
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			s, err := concurrency.NewSession(c, concurrency.WithTTL(10))
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			m := concurrency.NewMutex(s, p+"lock")
			for range 3 {
				if err := m.Lock(ctx(t)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				holders++
				maxHolders = max(maxHolders, holders)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				mu.Lock()
				holders--
				mu.Unlock()
				if err := m.Unlock(ctx(t)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, maxHolders)
}

func TestElectionHandsOver(t *testing.T) {
	c, p := newClient(t), prefix(t)
	s1, err := concurrency.NewSession(c, concurrency.WithTTL(10))
	skipIfUnimplemented(t, err)
	require.NoError(t, err)
	s2, err := concurrency.NewSession(c, concurrency.WithTTL(10))
	require.NoError(t, err)
	defer s2.Close()
	e1, e2 := concurrency.NewElection(s1, p+"e"), concurrency.NewElection(s2, p+"e")
	require.NoError(t, e1.Campaign(ctx(t), "one"))
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(ctx(t), "two") }()
	obs := e2.Observe(ctx(t))
	require.Equal(t, "one", string((<-obs).Kvs[0].Value))
	require.NoError(t, s1.Close()) // revokes the lease: the next candidate leads
	require.NoError(t, <-won)
	leader, err := e2.Leader(ctx(t))
	require.NoError(t, err)
	require.Equal(t, "two", string(leader.Kvs[0].Value))
}
