package lease

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/memory"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLessor(t *testing.T) (*Lessor, *storage.Store, *fakeClock) {
	st, err := storage.Open(memory.New(), storage.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	le := New(Config{MinTTL: 2, CheckpointInterval: time.Minute, RetryInterval: 3 * time.Second})
	clk := &fakeClock{t: time.Unix(1000, 0)}
	le.now = clk.now
	return le, st, clk
}

// apply runs f in one write transaction, as the apply loop does.
func apply[T any](t *testing.T, st *storage.Store, f func(tw *storage.WriteTxn) (T, error)) (T, error) {
	t.Helper()
	tw, err := st.Write()
	require.NoError(t, err)
	v, err := f(tw)
	if err != nil {
		tw.Abort()
		return v, err
	}
	_, err = tw.End()
	require.NoError(t, err)
	return v, nil
}

func TestMinTTL(t *testing.T) {
	require.EqualValues(t, 2, MinTTL(10, 100*time.Millisecond), "etcd defaults: ceil(1.5 s)")
	require.EqualValues(t, 1, MinTTL(10, 20*time.Millisecond))
	require.EqualValues(t, 8, MinTTL(10, 500*time.Millisecond))
}

func TestGrantRevokeCheckpointRecover(t *testing.T) {
	le, st, _ := newTestLessor(t)
	resp, err := apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseGrantResponse, error) { return le.Grant(tw, 1, 1) })
	require.NoError(t, err)
	require.EqualValues(t, 2, resp.TTL, "raised to the minimum")
	_, err = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseGrantResponse, error) { return le.Grant(tw, 1, 10) })
	require.Equal(t, rpctypes.ErrGRPCLeaseExist, err)
	_, err = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseGrantResponse, error) { return le.Grant(tw, 2, MaxTTL+1) })
	require.Equal(t, rpctypes.ErrGRPCLeaseTTLTooLarge, err)
	_, err = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseGrantResponse, error) { return le.Grant(tw, 0, 10) })
	require.Equal(t, rpctypes.ErrGRPCLeaseNotFound, err)
	_, err = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseGrantResponse, error) { return le.Grant(tw, 3, 100) })
	require.NoError(t, err)
	_, err = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseCheckpointResponse, error) {
		return le.Checkpoint(tw, []*pb.LeaseCheckpoint{{ID: 3, Remaining_TTL: 40}, {ID: 99, Remaining_TTL: 5}})
	})
	require.NoError(t, err)
	for _, k := range []string{"b", "a"} {
		_, err = st.Put([]byte(k), nil, 3)
		require.NoError(t, err)
	}

	// A second lessor recovers the same table from storage.
	le2 := New(Config{MinTTL: 2})
	require.NoError(t, le2.Recover(st))
	require.True(t, le2.LeaseExists(1) && le2.LeaseExists(3) && !le2.LeaseExists(99))
	inf, ok := le2.Lookup(3)
	require.True(t, ok)
	require.Equal(t, Info{ID: 3, GrantedTTL: 100, TTL: 40}, inf, "not primary: the checkpointed remaining TTL")

	rev := st.Rev()
	_, err = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseRevokeResponse, error) { return le.Revoke(tw, 3) })
	require.NoError(t, err)
	require.Equal(t, rev+1, st.Rev(), "both keys deleted at one revision")
	res, err := st.Range([]byte("a"), []byte("c"), storage.RangeOptions{})
	require.NoError(t, err)
	require.Empty(t, res.KVs)
	_, err = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseRevokeResponse, error) { return le.Revoke(tw, 3) })
	require.Equal(t, rpctypes.ErrGRPCLeaseNotFound, err)
	require.NoError(t, le2.Recover(st))
	require.False(t, le2.LeaseExists(3))
}

func TestPrimaryClocks(t *testing.T) {
	le, st, clk := newTestLessor(t)
	for id, ttl := range map[int64]int64{1: 10, 2: 100} {
		_, err := apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseGrantResponse, error) { return le.Grant(tw, id, ttl) })
		require.NoError(t, err)
	}
	_, _, err := le.Renew(1)
	require.ErrorIs(t, err, ErrNotPrimary)
	require.Empty(t, le.expired(10), "a follower runs no clocks")

	_, err = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseCheckpointResponse, error) {
		return le.Checkpoint(tw, []*pb.LeaseCheckpoint{{ID: 2, Remaining_TTL: 30}})
	})
	require.NoError(t, err)
	le.Promote(time.Second)
	inf, _ := le.Lookup(2)
	require.EqualValues(t, 31, inf.TTL, "remaining TTL plus the extension")
	inf, _ = le.Lookup(1)
	require.EqualValues(t, 11, inf.TTL)

	clk.advance(9 * time.Second)
	ttl, clear, err := le.Renew(1)
	require.NoError(t, err)
	require.EqualValues(t, 10, ttl)
	require.False(t, clear)
	_, clear, err = le.Renew(2)
	require.NoError(t, err)
	require.True(t, clear, "a renew makes the checkpointed remaining TTL stale")
	_, _, err = le.Renew(7)
	require.Equal(t, rpctypes.ErrGRPCLeaseNotFound, err)
	require.EqualValues(t, 2, le.Stats().Renewed, "two renewals; the refused ones do not count")

	clk.advance(10 * time.Second)
	require.Equal(t, []int64{1}, le.expired(10))
	require.Empty(t, le.expired(10), "not proposed again before the retry interval")
	_, _, err = le.Renew(1)
	require.Equal(t, rpctypes.ErrGRPCLeaseNotFound, err, "an expired lease cannot be renewed")
	clk.advance(3 * time.Second)
	require.Equal(t, []int64{1}, le.expired(10), "proposed again when the revoke did not happen")

	require.Empty(t, le.dueCheckpoints(10))
	clk.advance(time.Minute)
	cps := le.dueCheckpoints(10)
	require.Len(t, cps, 1, "only live leases are checkpointed")
	require.EqualValues(t, 2, cps[0].ID)
	require.EqualValues(t, 100-60-13, cps[0].Remaining_TTL)
	require.Empty(t, le.dueCheckpoints(10))

	le.Demote()
	require.False(t, le.IsPrimary())
	require.Empty(t, le.expired(10))
	require.Equal(t, []int64{1, 2}, le.IDs())
}

// TestExpiryQueueMatchesTable checks the primary's queues against the
// table under random grants, renewals, revokes and a demote/promote: every
// round returns exactly the leases whose clock ran out, once.
func TestExpiryQueueMatchesTable(t *testing.T) {
	le, st, clk := newTestLessor(t)
	le.cfg.CheckpointInterval = 5 * time.Second // due within the test's two-odd minutes
	le.Promote(0)
	rng := rand.New(rand.NewPCG(1, 2))
	proposed := map[int64]time.Time{} // revokes proposed, by lease
	for round := range 200 {
		for range 20 {
			id := rng.Int64N(500) + 1
			switch op := rng.IntN(10); {
			case op < 5:
				_, _ = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseGrantResponse, error) {
					return le.Grant(tw, id, rng.Int64N(20)+2)
				})
			case op < 8:
				_, _, _ = le.Renew(id)
			default:
				_, _ = apply(t, st, func(tw *storage.WriteTxn) (*pb.LeaseRevokeResponse, error) { return le.Revoke(tw, id) })
				delete(proposed, id)
			}
		}
		if round == 100 {
			le.Demote()
			le.Promote(10 * time.Second) // renewals after it move expiries earlier
			clear(proposed)
		}
		clk.advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
		var want []int64
		now := clk.now()
		for id, l := range le.leases {
			if at, ok := proposed[id]; ok && now.Sub(at) < 3*time.Second {
				continue
			}
			if !now.Before(l.expiry) {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		var wantCPs []int64
		for id, l := range le.leases {
			if now.Sub(l.cpAt) >= le.cfg.CheckpointInterval && now.Before(l.expiry) {
				wantCPs = append(wantCPs, id)
			}
		}
		slices.Sort(wantCPs)
		var gotCPs []int64
		for _, cp := range le.dueCheckpoints(len(le.leases) + 1) {
			gotCPs = append(gotCPs, cp.ID)
			l := le.leases[cp.ID]
			require.Equal(t, int64(math.Ceil(l.expiry.Sub(now).Seconds())), cp.Remaining_TTL, "round %d: lease %d", round, cp.ID)
		}
		require.Equal(t, wantCPs, gotCPs, "round %d: due checkpoints", round)
		got := le.expired(len(le.leases) + 1)
		if len(want) == 0 {
			require.Empty(t, got, "round %d", round)
		} else {
			require.Equal(t, want, got, "round %d", round)
		}
		for _, id := range got {
			proposed[id] = now // not proposed again within the retry interval
		}
		require.Equal(t, len(le.leases), le.expQ.Len())
		require.Equal(t, len(le.leases), le.cpQ.Len())
	}
}

// benchLeases is the table size of the lessor benchmarks.
const benchLeases = 1000000

// primaryWithLeases returns a primary lessor holding leases 1..n of an
// hour's TTL.
func primaryWithLeases(b *testing.B, n int64) *Lessor {
	st, err := storage.Open(memory.New(), storage.Config{})
	require.NoError(b, err)
	b.Cleanup(func() { st.Close() })
	le := New(Config{MinTTL: 2})
	le.Promote(0)
	tw, err := st.Write()
	require.NoError(b, err)
	for id := int64(1); id <= n; id++ {
		if _, err := le.Grant(tw, id, 3600); err != nil {
			b.Fatal(err)
		}
	}
	tw.Abort()
	return le
}

// BenchmarkLessorRound is one round of the primary's clocks (expired
// leases and due checkpoints) over a table of a million leases of which
// none is due: the cost of a round does not grow with the table.
func BenchmarkLessorRound(b *testing.B) {
	le := primaryWithLeases(b, benchLeases)
	b.ReportAllocs()
	for b.Loop() {
		if len(le.expired(revokesPerRound)) != 0 || len(le.dueCheckpoints(maxCheckpointBatch)) != 0 {
			b.Fatal("nothing is due")
		}
	}
}

// BenchmarkLessorRenew is one keepalive on the primary with a million
// leases.
func BenchmarkLessorRenew(b *testing.B) {
	le := primaryWithLeases(b, benchLeases)
	b.ReportAllocs()
	id := int64(0)
	for b.Loop() {
		id = id%benchLeases + 1
		if _, _, err := le.Renew(id); err != nil {
			b.Fatal(err)
		}
	}
}
