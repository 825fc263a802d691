package conformance

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestTxnComparesAndBranches(t *testing.T) {
	c, p := newClient(t), prefix(t)
	put, err := c.Put(ctx(t), p+"a", "1")
	require.NoError(t, err)
	g, err := c.Grant(ctx(t), 60)
	skipIfUnimplemented(t, err)
	require.NoError(t, err)
	_, err = c.Put(ctx(t), p+"l", "x", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		cmp  clientv3.Cmp
		want bool
	}{
		"value =":                {clientv3.Compare(clientv3.Value(p+"a"), "=", "1"), true},
		"value >":                {clientv3.Compare(clientv3.Value(p+"a"), ">", "0"), true},
		"value on a missing key": {clientv3.Compare(clientv3.Value(p+"zz"), "=", ""), false},
		"version = 0 if missing": {clientv3.Compare(clientv3.Version(p+"zz"), "=", 0), true},
		"create revision":        {clientv3.Compare(clientv3.CreateRevision(p+"a"), "=", put.Header.Revision), true},
		"mod revision <":         {clientv3.Compare(clientv3.ModRevision(p+"a"), "<", put.Header.Revision), false},
		"lease":                  {clientv3.Compare(clientv3.LeaseValue(p+"l"), "=", g.ID), true},
		"lease none":             {clientv3.Compare(clientv3.LeaseValue(p+"a"), "=", clientv3.NoLease), true},
		"range: all versions":    {clientv3.Compare(clientv3.Version(p+"a"), "=", 1).WithRange(p + "m"), true},
		"range: one fails":       {clientv3.Compare(clientv3.Value(p+"a"), "=", "1").WithRange(p + "m"), false},
		"prefix of the key":      {clientv3.Compare(clientv3.Value(p+"a"), "=", "1").WithPrefix(), true},
		"not equal":              {clientv3.Compare(clientv3.Value(p+"a"), "!=", "2"), true},
	} {
		resp, err := c.Txn(ctx(t)).If(tc.cmp).Then(clientv3.OpGet(p + "a")).Else(clientv3.OpGet(p + "l")).Commit()
		require.NoError(t, err, name)
		require.Equal(t, tc.want, resp.Succeeded, name)
		want := p + "l"
		if tc.want {
			want = p + "a"
		}
		require.Equal(t, want, string(resp.Responses[0].GetResponseRange().Kvs[0].Key), name)
	}
}

func TestTxnReadYourWritesAndNesting(t *testing.T) {
	c, p := newClient(t), prefix(t)
	resp, err := c.Txn(ctx(t)).Then(
		clientv3.OpPut(p+"a", "1"),
		clientv3.OpGet(p+"a"),
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value(p+"a"), "=", "1")},
			[]clientv3.Op{clientv3.OpPut(p+"b", "2")}, []clientv3.Op{clientv3.OpPut(p+"b", "never")}),
		clientv3.OpDelete(p+"c"),
	).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	rev := resp.Header.Revision
	require.Equal(t, "1", string(resp.Responses[1].GetResponseRange().Kvs[0].Value), "reads see the txn's own writes")
	// As etcd: every compare, nested ones too, is evaluated before any op
	// runs, against the state before the txn — the nested compare does not
	// see the put above it.
	nested := resp.Responses[2].GetResponseTxn()
	require.False(t, nested.Succeeded)
	require.Zero(t, nested.Header.GetRevision(), "etcd fills only the top header of a txn")
	require.Equal(t, rev, resp.Responses[0].GetResponsePut().Header.Revision, "a put reports the txn's revision")
	require.Equal(t, rev, resp.Responses[1].GetResponseRange().Header.Revision, "a range after a write sees the txn's revision")
	require.Zero(t, resp.Responses[0].GetResponsePut().Header.MemberId, "inner headers carry no member ID")
	get, err := c.Get(ctx(t), p, clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, get.Kvs, 2)
	for _, kv := range get.Kvs {
		require.Equal(t, rev, kv.ModRevision)
	}
	require.Equal(t, "never", string(get.Kvs[1].Value))
	ro, err := c.Txn(ctx(t)).If(clientv3.Compare(clientv3.Value(p+"b"), "=", "never")).Then(clientv3.OpGet(p + "a")).Commit()
	require.NoError(t, err)
	require.True(t, ro.Succeeded)
	require.GreaterOrEqual(t, ro.Header.Revision, rev, "a read-only txn reports the current revision")
}

// Guarantee: a txn is atomic — concurrent compare-and-swap increments
// never lose an update.
func TestTxnAtomicIncrements(t *testing.T) {
	c, p := newClient(t), prefix(t)
	key := p + "counter"
	_, err := c.Put(ctx(t), key, "0")
	require.NoError(t, err)
	const workers, each = 4, 15
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for done := 0; done < each; {
				get, err := c.Get(ctx(t), key)
				if err != nil {
					t.Error(err)
					return
				}
				var n int
				fmt.Sscan(string(get.Kvs[0].Value), &n)
				resp, err := c.Txn(ctx(t)).
					If(clientv3.Compare(clientv3.ModRevision(key), "=", get.Kvs[0].ModRevision)).
					Then(clientv3.OpPut(key, fmt.Sprint(n+1))).Commit()
				if err != nil {
					t.Error(err)
					return
				}
				if resp.Succeeded {
					done++
				}
			}
		})
	}
	wg.Wait()
	get, err := c.Get(ctx(t), key)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(workers*each), string(get.Kvs[0].Value))
}
