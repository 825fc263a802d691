package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	v3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/clientsdk/concurrency"
)

func TestElectionHandoverObserveResign(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	e1 := concurrency.NewElection(session(t, c), pfx)
	e2 := concurrency.NewElection(session(t, c), pfx)
	watcher := concurrency.NewElection(session(t, c), pfx)

	_, err := watcher.Leader(ctx(t))
	require.ErrorIs(t, err, concurrency.ErrElectionNoLeader)
	obs := watcher.Observe(ctx(t))

	require.NoError(t, e1.Campaign(ctx(t), "e1"))
	require.Equal(t, "e1", string((<-obs).Kvs[0].Value))
	require.NoError(t, e1.Proclaim(ctx(t), "e1-v2"))
	require.Equal(t, "e1-v2", string((<-obs).Kvs[0].Value))
	tok1 := e1.FencingToken()
	require.Positive(t, tok1)

	elected := make(chan struct{})
	go func() {
		require.NoError(t, e2.Campaign(ctx(t), "e2"))
		close(elected)
	}()
	require.Never(t, func() bool {
		select {
		case <-elected:
			return true
		default:
			return false
		}
	}, 200*time.Millisecond, 20*time.Millisecond, "a second candidate waits")
	require.NoError(t, e1.Resign(ctx(t)))
	<-elected
	require.Equal(t, "e2", string((<-obs).Kvs[0].Value), "observers see leaders in order")
	require.Greater(t, e2.FencingToken(), tok1)
	resp, err := watcher.Leader(ctx(t))
	require.NoError(t, err)
	require.Equal(t, "e2", string(resp.Kvs[0].Value))

	// The deposed leader can neither proclaim nor write through its guard.
	require.ErrorIs(t, e1.Proclaim(ctx(t), "again"), concurrency.ErrElectionNotLeader)
	_, err = e1.Txn(ctx(t)).Then(v3.OpPut(pfx+"-data", "x")).Commit()
	require.ErrorIs(t, err, concurrency.ErrElectionNotLeader)
	_, err = e2.Txn(ctx(t)).Then(v3.OpPut(pfx+"-data", "y")).Commit()
	require.NoError(t, err)
}

func TestResumeElectionAndLoss(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	s := session(t, c)
	e := concurrency.NewElection(s, pfx)
	require.NoError(t, e.Campaign(ctx(t), "a"))
	resumed := concurrency.ResumeElection(s, pfx, e.Key(), e.Rev())
	require.NoError(t, resumed.Proclaim(ctx(t), "b"))
	resp, err := resumed.Leader(ctx(t))
	require.NoError(t, err)
	require.Equal(t, "b", string(resp.Kvs[0].Value))

	lost := e.Lost()
	_, err = c.Revoke(ctx(t), s.Lease())
	require.NoError(t, err)
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("leader not told that its leadership is gone")
	}
	_, err = concurrency.NewElection(session(t, c), pfx).Leader(ctx(t))
	require.ErrorIs(t, err, concurrency.ErrElectionNoLeader)
}

func TestSTMCounter(t *testing.T) {
	pfx := prefix(t)
	c := newClient(t)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			for range 5 {
				_, err := concurrency.NewSTM(c, func(s concurrency.STM) error {
					v := s.Get(pfx)
					s.Put(pfx, v+"x")
					return nil
				}, concurrency.WithIsolation(concurrency.Serializable))
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	resp, err := c.Get(ctx(t), pfx)
	require.NoError(t, err)
	require.Len(t, string(resp.Kvs[0].Value), 25, "no lost update under serializable STM")
}
