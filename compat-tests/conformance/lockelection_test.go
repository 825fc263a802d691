package conformance

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	lpb "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// etcd's server-side Lock and Election services (v3lockpb,
// v3electionpb), called through their gRPC stubs as non-Go clients and
// the /v3/lock and /v3/election gateway routes do.

func lockClient(t *testing.T, c *clientv3.Client) lpb.LockClient {
	return lpb.NewLockClient(c.ActiveConnection())
}

func electionClient(c *clientv3.Client) epb.ElectionClient {
	return epb.NewElectionClient(c.ActiveConnection())
}

func grant(t *testing.T, c *clientv3.Client, ttl int64) int64 {
	t.Helper()
	l, err := c.Grant(ctx(t), ttl)
	require.NoError(t, err)
	return int64(l.ID)
}

// A counter incremented under the lock by contending clients (one on
// each endpoint) never loses an update; the lock's key is name/<lease hex>
// and the response's revision is at least the key's create revision (the
// fencing token).
func TestLockServiceMutualExclusion(t *testing.T) {
	p := prefix(t)
	name, counter := p+"lock", p+"counter"
	const workers, rounds = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		c := newClient(t, endpoints[w%len(endpoints)])
		lease := grant(t, c, 60)
		lc := lockClient(t, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				l, err := lc.Lock(ctx(t), &lpb.LockRequest{Name: []byte(name), Lease: lease})
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("%s/%x", name, lease); string(l.Key) != want {
					errs <- fmt.Errorf("lock key %q, want %q", l.Key, want)
					return
				}
				g, err := c.Get(ctx(t), string(l.Key))
				if err != nil || len(g.Kvs) != 1 || g.Kvs[0].CreateRevision > l.Header.Revision {
					errs <- fmt.Errorf("the lock key after Lock: %v %v (header %d)", g, err, l.Header.Revision)
					return
				}
				cur, err := c.Get(ctx(t), counter)
				if err != nil {
					errs <- err
					return
				}
				n := 0
				if len(cur.Kvs) == 1 {
					n, _ = strconv.Atoi(string(cur.Kvs[0].Value))
				}
				// The guarded write: only while the lock key is ours.
				tr, err := c.Txn(ctx(t)).If(clientv3.Compare(clientv3.CreateRevision(string(l.Key)), "=", g.Kvs[0].CreateRevision)).
					Then(clientv3.OpPut(counter, strconv.Itoa(n+1))).Commit()
				if err != nil || !tr.Succeeded {
					errs <- fmt.Errorf("guarded write: %v %v", tr, err)
					return
				}
				if _, err := lc.Unlock(ctx(t), &lpb.UnlockRequest{Key: l.Key}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	g, err := newClient(t).Get(ctx(t), counter)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(workers*rounds), string(g.Kvs[0].Value))
}

// When the holder's lease is revoked, the next waiter acquires; a waiter
// that gives up (its context ends) removes its waiting key.
func TestLockServiceHandoverAndGivingUp(t *testing.T) {
	c, p := newClient(t), prefix(t)
	lc := lockClient(t, c)
	name := []byte(p + "lock")
	a, b, q := grant(t, c, 60), grant(t, c, 60), grant(t, c, 60)
	held, err := lc.Lock(ctx(t), &lpb.LockRequest{Name: name, Lease: a})
	require.NoError(t, err)

	// q waits and gives up.
	qctx, cancel := context.WithTimeout(ctx(t), 500*time.Millisecond)
	_, err = lc.Lock(qctx, &lpb.LockRequest{Name: name, Lease: q})
	cancel()
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	require.Eventually(t, func() bool {
		g, err := c.Get(ctx(t), string(name)+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		return err == nil && len(g.Kvs) == 1 && string(g.Kvs[0].Key) == string(held.Key)
	}, 10*time.Second, 50*time.Millisecond, "the waiter that gave up left no key")

	got := make(chan *lpb.LockResponse, 1)
	go func() {
		l, err := lc.Lock(ctx(t), &lpb.LockRequest{Name: name, Lease: b})
		if err != nil {
			t.Errorf("second lock: %v", err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("the second Lock returned while the first was held")
	case <-time.After(300 * time.Millisecond):
	}
	_, err = c.Revoke(ctx(t), clientv3.LeaseID(a))
	require.NoError(t, err)
	select {
	case l := <-got:
		require.Equal(t, fmt.Sprintf("%s/%x", name, b), string(l.Key))
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not acquire after the holder's lease was revoked")
	}
}

// A waiter whose lease expires while it waits is not granted the lock
// when the holder lets go (etcd issue #11456): its Lock fails.
func TestLockServiceNotGrantedOnExpiredLease(t *testing.T) {
	c, p := newClient(t), prefix(t)
	lc := lockClient(t, c)
	name := []byte(p + "lock")
	holder, short := grant(t, c, 60), grant(t, c, 2)
	held, err := lc.Lock(ctx(t), &lpb.LockRequest{Name: name, Lease: holder})
	require.NoError(t, err)
	res := make(chan error, 1)
	go func() {
		_, err := lc.Lock(ctx(t), &lpb.LockRequest{Name: name, Lease: short})
		res <- err
	}()
	require.Eventually(t, func() bool {
		ttl, err := c.TimeToLive(ctx(t), clientv3.LeaseID(short))
		return err == nil && ttl.TTL == -1
	}, 15*time.Second, 100*time.Millisecond, "the waiter's lease expires")
	_, err = lc.Unlock(ctx(t), &lpb.UnlockRequest{Key: held.Key})
	require.NoError(t, err)
	select {
	case err := <-res:
		require.ErrorContains(t, err, concurrency.ErrSessionExpired.Error())
		require.Equal(t, codes.Unknown, status.Code(err))
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter on an expired lease still waits")
	}
}

// Bad input: a lock on a lease that does not exist; an Unlock of a key
// nobody holds (a delete of nothing: no error, as etcd).
func TestLockServiceBadInput(t *testing.T) {
	c, p := newClient(t), prefix(t)
	lc := lockClient(t, c)
	_, err := lc.Lock(ctx(t), &lpb.LockRequest{Name: []byte(p + "lock"), Lease: 0x7eadbeef})
	require.ErrorContains(t, err, "etcdserver: requested lease not found")
	require.Equal(t, codes.Unknown, status.Code(err), "%v", err)
	u, err := lc.Unlock(ctx(t), &lpb.UnlockRequest{Key: []byte(p + "lock/nobody")})
	require.NoError(t, err)
	require.NotZero(t, u.Header.Revision)
}

// Campaign, Leader, Proclaim, Observe and Resign: the second candidate is
// elected when the first resigns; an observer sees every leader value in
// order.
func TestElectionServiceHandover(t *testing.T) {
	c, p := newClient(t), prefix(t)
	ec := electionClient(c)
	name := []byte(p + "election")
	la, lb := grant(t, c, 60), grant(t, c, 60)

	octx, stop := context.WithCancel(ctx(t))
	defer stop()
	obs, err := ec.Observe(octx, &epb.LeaderRequest{Name: name})
	require.NoError(t, err)

	a, err := ec.Campaign(ctx(t), &epb.CampaignRequest{Name: name, Lease: la, Value: []byte("a")})
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%s/%x", name, la), string(a.Leader.Key))
	require.Equal(t, la, a.Leader.Lease)
	require.Equal(t, name, a.Leader.Name)
	require.Equal(t, a.Header.Revision, a.Leader.Rev)

	bElected := make(chan *epb.CampaignResponse, 1)
	go func() {
		b, err := ec.Campaign(ctx(t), &epb.CampaignRequest{Name: name, Lease: lb, Value: []byte("b")})
		if err != nil {
			t.Errorf("campaign b: %v", err)
		}
		bElected <- b
	}()

	_, err = ec.Proclaim(ctx(t), &epb.ProclaimRequest{Leader: a.Leader, Value: []byte("a2")})
	require.NoError(t, err)
	l, err := ec.Leader(ctx(t), &epb.LeaderRequest{Name: name})
	require.NoError(t, err)
	require.Equal(t, "a2", string(l.Kv.Value))
	require.Equal(t, a.Leader.Key, l.Kv.Key)
	select {
	case <-bElected:
		t.Fatal("b elected while a leads")
	case <-time.After(200 * time.Millisecond):
	}

	_, err = ec.Resign(ctx(t), &epb.ResignRequest{Leader: a.Leader})
	require.NoError(t, err)
	var b *epb.CampaignResponse
	select {
	case b = <-bElected:
	case <-time.After(10 * time.Second):
		t.Fatal("b not elected after a resigned")
	}
	require.Equal(t, fmt.Sprintf("%s/%x", name, lb), string(b.Leader.Key))

	var seen []string
	for len(seen) < 3 {
		r, err := obs.Recv()
		require.NoError(t, err)
		seen = append(seen, string(r.Kv.Value))
	}
	require.Equal(t, []string{"a", "a2", "b"}, seen)

	// A leader key that no longer leads: etcd's election errors.
	_, err = ec.Proclaim(ctx(t), &epb.ProclaimRequest{Leader: a.Leader, Value: []byte("stale")})
	require.ErrorContains(t, err, concurrency.ErrElectionNotLeader.Error())
	require.Equal(t, codes.Unknown, status.Code(err))
	l, err = ec.Leader(ctx(t), &epb.LeaderRequest{Name: name})
	require.NoError(t, err)
	require.Equal(t, "b", string(l.Kv.Value), "a stale Proclaim changed nothing")
	_, err = ec.Resign(ctx(t), &epb.ResignRequest{Leader: a.Leader})
	require.NoError(t, err, "a stale Resign deletes nothing and succeeds, as etcd")
}

// Bad input: no leader, a missing leader key, an unknown lease.
func TestElectionServiceBadInput(t *testing.T) {
	c, p := newClient(t), prefix(t)
	ec := electionClient(c)
	name := []byte(p + "election")
	_, err := ec.Leader(ctx(t), &epb.LeaderRequest{Name: name})
	require.ErrorContains(t, err, concurrency.ErrElectionNoLeader.Error())
	require.Equal(t, codes.Unknown, status.Code(err))
	_, err = ec.Proclaim(ctx(t), &epb.ProclaimRequest{Value: []byte("x")})
	require.ErrorContains(t, err, `"leader" field must be provided`)
	_, err = ec.Resign(ctx(t), &epb.ResignRequest{})
	require.ErrorContains(t, err, `"leader" field must be provided`)
	_, err = ec.Campaign(ctx(t), &epb.CampaignRequest{Name: name, Lease: 0x7eadbeef, Value: []byte("x")})
	require.ErrorContains(t, err, "etcdserver: requested lease not found")

	// Observe of a name with no leader waits; the first leader is its
	// first answer.
	octx, stop := context.WithCancel(ctx(t))
	defer stop()
	obs, err := ec.Observe(octx, &epb.LeaderRequest{Name: name})
	require.NoError(t, err)
	got := make(chan string, 1)
	go func() {
		r, err := obs.Recv()
		if err == nil {
			got <- string(r.Kv.Value)
		}
	}()
	select {
	case v := <-got:
		t.Fatalf("Observe answered %q with no leader", v)
	case <-time.After(300 * time.Millisecond):
	}
	_, err = ec.Campaign(ctx(t), &epb.CampaignRequest{Name: name, Lease: grant(t, c, 60), Value: []byte("first")})
	require.NoError(t, err)
	select {
	case v := <-got:
		require.Equal(t, "first", v)
	case <-time.After(10 * time.Second):
		t.Fatal("Observe did not report the first leader")
	}
}
