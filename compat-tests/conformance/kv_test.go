package conformance

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestPutGetRevisionsAndVersions(t *testing.T) {
	c, p := newClient(t), prefix(t)
	r1, err := c.Put(ctx(t), p+"a", "1")
	require.NoError(t, err)
	rev := r1.Header.Revision
	r2, err := c.Put(ctx(t), p+"a", "2", clientv3.WithPrevKV())
	require.NoError(t, err)
	require.Greater(t, r2.Header.Revision, rev, "every write is a new revision")
	require.Equal(t, "1", string(r2.PrevKv.Value))
	require.Equal(t, rev, r2.PrevKv.ModRevision)

	get, err := c.Get(ctx(t), p+"a")
	require.NoError(t, err)
	kv := get.Kvs[0]
	require.Equal(t, rev, kv.CreateRevision)
	require.Equal(t, r2.Header.Revision, kv.ModRevision)
	require.EqualValues(t, 2, kv.Version)
	require.EqualValues(t, 1, get.Count)
	require.GreaterOrEqual(t, get.Header.Revision, r2.Header.Revision)

	old, err := c.Get(ctx(t), p+"a", clientv3.WithRev(rev))
	require.NoError(t, err)
	require.Equal(t, "1", string(old.Kvs[0].Value), "reads at a past revision")

	del, err := c.Delete(ctx(t), p+"a", clientv3.WithPrevKV())
	require.NoError(t, err)
	require.EqualValues(t, 1, del.Deleted)
	require.Equal(t, "2", string(del.PrevKvs[0].Value))
	again, err := c.Put(ctx(t), p+"a", "3")
	require.NoError(t, err)
	get, err = c.Get(ctx(t), p+"a")
	require.NoError(t, err)
	require.Equal(t, again.Header.Revision, get.Kvs[0].CreateRevision, "a new generation after delete")
	require.EqualValues(t, 1, get.Kvs[0].Version)

	miss, err := c.Delete(ctx(t), p+"missing")
	require.NoError(t, err)
	require.Zero(t, miss.Deleted)
	require.GreaterOrEqual(t, miss.Header.Revision, get.Header.Revision)
}

func TestPutIgnoreValueAndLease(t *testing.T) {
	c, p := newClient(t), prefix(t)
	_, err := c.Put(ctx(t), p+"k", "", clientv3.WithIgnoreValue())
	require.ErrorIs(t, err, rpctypes.ErrKeyNotFound)
	_, err = c.Put(ctx(t), p+"k", "v")
	require.NoError(t, err)
	_, err = c.Put(ctx(t), p+"k", "", clientv3.WithIgnoreValue())
	require.NoError(t, err)
	get, err := c.Get(ctx(t), p+"k")
	require.NoError(t, err)
	require.Equal(t, "v", string(get.Kvs[0].Value))
	require.EqualValues(t, 2, get.Kvs[0].Version)
	_, err = c.Put(ctx(t), p+"k", "x", clientv3.WithIgnoreLease())
	require.NoError(t, err)
	_, err = c.Put(ctx(t), p+"k", "x", clientv3.WithLease(0x7fff_ffff_0001))
	require.ErrorIs(t, err, rpctypes.ErrLeaseNotFound)
}

func TestRangeOptions(t *testing.T) {
	c, p := newClient(t), prefix(t)
	var revs []int64
	for i, k := range []string{"c", "a", "e", "b", "d"} {
		r, err := c.Put(ctx(t), p+k, fmt.Sprint(5-i))
		require.NoError(t, err)
		revs = append(revs, r.Header.Revision)
	}
	keys := func(r *clientv3.GetResponse) string {
		s := ""
		for _, kv := range r.Kvs {
			s += string(kv.Key[len(p):])
		}
		return s
	}
	all, err := c.Get(ctx(t), p, clientv3.WithPrefix())
	require.NoError(t, err)
	require.Equal(t, "abcde", keys(all))
	require.EqualValues(t, 5, all.Count)
	require.False(t, all.More)

	lim, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithLimit(2))
	require.NoError(t, err)
	require.Equal(t, "ab", keys(lim))
	require.True(t, lim.More)
	require.EqualValues(t, 5, lim.Count, "count covers the whole range")

	desc, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(2))
	require.NoError(t, err)
	require.Equal(t, "ed", keys(desc))
	byVal, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend))
	require.NoError(t, err)
	require.Equal(t, "dbeac", keys(byVal))
	byCreate, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend))
	require.NoError(t, err)
	require.Equal(t, "dbeac", keys(byCreate))

	ko, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	require.NoError(t, err)
	require.Len(t, ko.Kvs, 5)
	require.Empty(t, ko.Kvs[0].Value)
	co, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Empty(t, co.Kvs)
	require.EqualValues(t, 5, co.Count)

	fr, err := c.Get(ctx(t), p+"c", clientv3.WithRange(p+"e"))
	require.NoError(t, err)
	require.Equal(t, "cd", keys(fr), "[key, range_end)")
	from, err := c.Get(ctx(t), p+"d", clientv3.WithFromKey(), clientv3.WithLimit(2))
	require.NoError(t, err)
	require.Equal(t, p+"d", string(from.Kvs[0].Key), "from the key to the end of the key space")
	require.Equal(t, p+"e", string(from.Kvs[1].Key))

	// Revision filters drop keys but, as etcd 3.7, not from the count.
	mod, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithMinModRev(revs[2]), clientv3.WithMaxModRev(revs[3]))
	require.NoError(t, err)
	require.Equal(t, "be", keys(mod))
	require.EqualValues(t, 5, mod.Count)
	cr, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithMaxCreateRev(revs[1]))
	require.NoError(t, err)
	require.Equal(t, "ac", keys(cr))

	ser, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithSerializable())
	require.NoError(t, err)
	require.Equal(t, "abcde", keys(ser))
	past, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithRev(revs[1]))
	require.NoError(t, err)
	require.Equal(t, "ac", keys(past))
}

func TestDeleteRange(t *testing.T) {
	c, p := newClient(t), prefix(t)
	var last int64
	for _, k := range []string{"a", "b", "c", "d"} {
		r, err := c.Put(ctx(t), p+k, k)
		require.NoError(t, err)
		last = r.Header.Revision
	}
	// From the next revision: without one, a watch served by a member
	// that has not applied the last put yet would start before it.
	w := c.Watch(ctx(t), p, clientv3.WithPrefix(), clientv3.WithRev(last+1))
	d, err := c.Delete(ctx(t), p+"b", clientv3.WithRange(p+"d"), clientv3.WithPrevKV())
	require.NoError(t, err)
	require.EqualValues(t, 2, d.Deleted)
	require.Len(t, d.PrevKvs, 2)
	wr := <-w
	require.Len(t, wr.Events, 2)
	for _, ev := range wr.Events {
		require.Equal(t, mvccpb.DELETE, ev.Type)
		require.Equal(t, d.Header.Revision, ev.Kv.ModRevision, "one revision for the whole delete")
	}
	rest, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.EqualValues(t, 2, rest.Count)
}

func TestCompaction(t *testing.T) {
	c, p := newClient(t), prefix(t)
	r1, err := c.Put(ctx(t), p+"k", "1")
	require.NoError(t, err)
	r2, err := c.Put(ctx(t), p+"k", "2")
	require.NoError(t, err)
	_, err = c.Compact(ctx(t), r2.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	_, err = c.Get(ctx(t), p+"k", clientv3.WithRev(r1.Header.Revision))
	require.ErrorIs(t, err, rpctypes.ErrCompacted)
	get, err := c.Get(ctx(t), p+"k", clientv3.WithRev(r2.Header.Revision))
	require.NoError(t, err)
	require.Equal(t, "2", string(get.Kvs[0].Value), "the compaction revision itself stays readable")
	_, err = c.Compact(ctx(t), r1.Header.Revision)
	require.ErrorIs(t, err, rpctypes.ErrCompacted)
	_, err = c.Get(ctx(t), p+"k", clientv3.WithRev(get.Header.Revision+1000))
	require.ErrorIs(t, err, rpctypes.ErrFutureRev)
	_, err = c.Compact(ctx(t), get.Header.Revision+1000)
	require.ErrorIs(t, err, rpctypes.ErrFutureRev)
}

func TestInvalidRequests(t *testing.T) {
	c, p := newClient(t), prefix(t)
	_, err := c.Put(ctx(t), "", "v")
	require.ErrorIs(t, err, rpctypes.ErrEmptyKey)
	_, err = c.Get(ctx(t), "")
	require.ErrorIs(t, err, rpctypes.ErrEmptyKey)
	_, err = c.Delete(ctx(t), "")
	require.ErrorIs(t, err, rpctypes.ErrEmptyKey)
	_, err = c.Txn(ctx(t)).Then(clientv3.OpPut(p+"d", "1"), clientv3.OpPut(p+"d", "2")).Commit()
	require.ErrorIs(t, err, rpctypes.ErrDuplicateKey)
	_, err = c.Txn(ctx(t)).Then(clientv3.OpPut(p+"d", "1"), clientv3.OpDelete(p, clientv3.WithPrefix())).Commit()
	require.ErrorIs(t, err, rpctypes.ErrDuplicateKey)
	ops := make([]clientv3.Op, 129)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprint(p, i), "v")
	}
	_, err = c.Txn(ctx(t)).Then(ops...).Commit()
	require.ErrorIs(t, err, rpctypes.ErrTooManyOps, "--max-txn-ops defaults to 128")
}
