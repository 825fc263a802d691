package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
)

// KeyConfig shapes the keys and values of write workloads (etcd
// benchmark's put flags).
type KeyConfig struct {
	KeySize        int  // bytes per key (default 8)
	ValSize        int  // bytes per value (default 8)
	KeySpaceSize   int  // distinct keys (default 1)
	SequentialKeys bool // keys in order instead of random
}

func (k KeyConfig) withDefaults() KeyConfig {
	if k.KeySize <= 0 {
		k.KeySize = 8
	}
	if k.ValSize <= 0 {
		k.ValSize = 8
	}
	if k.KeySpaceSize <= 0 {
		k.KeySpaceSize = 1
	}
	return k
}

// key returns request i's key: an index into the key space, big-endian,
// padded to KeySize as etcd's benchmark does.
func (k KeyConfig) key(i int) string {
	n := i % k.KeySpaceSize
	if !k.SequentialKeys {
		n = rand.IntN(k.KeySpaceSize)
	}
	b := make([]byte, max(k.KeySize, 8))
	binary.PutVarint(b, int64(n))
	return string(b[:k.KeySize])
}

// Put writes values of ValSize.
func Put(kc KeyConfig) Op {
	kc = kc.withDefaults()
	val := strings.Repeat("x", kc.ValSize)
	return Plain(func(ctx context.Context, c *clientv3.Client, i int) error {
		_, err := c.Put(ctx, kc.key(i), val)
		return err
	})
}

// Insert writes values of ValSize under keys never written before: the
// n-th request of any run of the returned Op takes key n (sequential, as
// etcd's benchmark put with --sequential-keys and a key space as large as
// --total), so a warm-up and the run measured after it insert distinct
// keys. KeySpaceSize is ignored.
func Insert(kc KeyConfig) Op {
	kc = kc.withDefaults()
	kc.KeySpaceSize, kc.SequentialKeys = math.MaxInt, true
	val := strings.Repeat("x", kc.ValSize)
	var next atomic.Int64
	return Plain(func(ctx context.Context, c *clientv3.Client, _ int) error {
		_, err := c.Put(ctx, kc.key(int(next.Add(1)-1)), val)
		return err
	})
}

// TxnPut writes values in a txn of one put (etcd benchmark's txn-put).
func TxnPut(kc KeyConfig) Op {
	kc = kc.withDefaults()
	val := strings.Repeat("x", kc.ValSize)
	return Plain(func(ctx context.Context, c *clientv3.Client, i int) error {
		_, err := c.Txn(ctx).Then(clientv3.OpPut(kc.key(i), val)).Commit()
		return err
	})
}

// Range reads [key, end) (end empty: the key only) with consistency "l"
// (linearizable) or "s" (serializable) and an optional limit.
func Range(key, end, consistency string, limit int64) (Op, error) {
	opts, err := rangeOpts(end, consistency, limit)
	if err != nil {
		return nil, err
	}
	return Plain(func(ctx context.Context, c *clientv3.Client, _ int) error {
		_, err := c.Get(ctx, key, opts...)
		return err
	}), nil
}

// rangeOpts are the options of a range to end (none: one key) with
// consistency "l" or "s" and a limit (0: none).
func rangeOpts(end, consistency string, limit int64) ([]clientv3.OpOption, error) {
	var opts []clientv3.OpOption
	switch consistency {
	case "l", "":
	case "s":
		opts = append(opts, clientv3.WithSerializable())
	default:
		return nil, fmt.Errorf("--consistency: %q is not l or s", consistency)
	}
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(limit))
	}
	return opts, nil
}

// LeaseKeepAlive renews one lease per client connection (etcd benchmark's
// lease-keepalive): request i is one keepalive round trip.
func LeaseKeepAlive(ttl int64) Op {
	lease := leasePerClient(ttl)
	return Plain(func(ctx context.Context, c *clientv3.Client, _ int) error {
		id, err := lease(ctx, c)
		if err != nil {
			return err
		}
		_, err = c.KeepAliveOnce(ctx, id)
		return err
	})
}

// leasePerClient returns a function that grants one lease of ttl per
// client connection, the first time that connection asks, and returns it
// ever after.
func leasePerClient(ttl int64) func(context.Context, *clientv3.Client) (clientv3.LeaseID, error) {
	var mu sync.Mutex
	leases := map[*clientv3.Client]clientv3.LeaseID{}
	return func(ctx context.Context, c *clientv3.Client) (clientv3.LeaseID, error) {
		mu.Lock()
		id, ok := leases[c]
		mu.Unlock()
		if ok {
			return id, nil
		}
		g, err := c.Grant(ctx, ttl)
		if err != nil {
			return 0, err
		}
		mu.Lock()
		leases[c] = g.ID
		mu.Unlock()
		return g.ID, nil
	}
}

// Lock measures mutex acquire+release under contention: every request
// locks the same name with etcd's concurrency.Mutex on a session of its
// connection, then unlocks.
func Lock(name string) Op {
	var mu sync.Mutex
	sessions := map[*clientv3.Client]*concurrency.Session{}
	return Plain(func(ctx context.Context, c *clientv3.Client, _ int) error {
		mu.Lock()
		s, ok := sessions[c]
		mu.Unlock()
		if !ok {
			var err error
			if s, err = concurrency.NewSession(c, concurrency.WithTTL(60)); err != nil {
				return err
			}
			mu.Lock()
			sessions[c] = s
			mu.Unlock()
		}
		m := concurrency.NewMutex(s, name)
		if err := m.Lock(ctx); err != nil {
			return err
		}
		return m.Unlock(ctx)
	})
}

// ServerLock is Lock through the server's Lock service (v3lockpb, what
// non-Go clients and the /v3/lock gateway route use): Lock(name, lease)
// then Unlock(key), one lease per connection.
func ServerLock(name string) Op {
	lease := leasePerClient(60)
	return Plain(func(ctx context.Context, c *clientv3.Client, _ int) error {
		id, err := lease(ctx, c)
		if err != nil {
			return err
		}
		lc := v3lockpb.NewLockClient(c.ActiveConnection())
		r, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: int64(id)})
		if err != nil {
			return err
		}
		_, err = lc.Unlock(ctx, &v3lockpb.UnlockRequest{Key: r.Key})
		return err
	})
}

// TxnMixed mixes txns of one range (reads) and txns of one put (writes)
// at readRatio reads per write, as etcd benchmark's txn-mixed: reads
// range [key, end) — the whole key space when end is empty — up to limit
// keys with consistency "l" or "s"; writes as TxnPut. Requests are
// classed "read" and "write".
func TxnMixed(kc KeyConfig, readRatio float64, key, end, consistency string, limit int64) (Op, error) {
	if readRatio < 0 {
		return nil, fmt.Errorf("--rw-ratio: %g is negative", readRatio)
	}
	kc = kc.withDefaults()
	val := strings.Repeat("x", kc.ValSize)
	if end == "" {
		end = "\x00" // the whole key space from key
	}
	opts, err := rangeOpts(end, consistency, limit)
	if err != nil {
		return nil, err
	}
	var reads, writes atomic.Int64
	return func(ctx context.Context, c *clientv3.Client, i int) (string, error) {
		// Keep reads/writes at the ratio: read while behind it.
		if float64(reads.Load()) < readRatio*float64(writes.Load()+1) {
			reads.Add(1)
			// A read-only txn whose ranges are all serializable is
			// served serializably, as in etcd.
			_, err := c.Txn(ctx).Then(clientv3.OpGet(key, opts...)).Commit()
			return "read", err
		}
		writes.Add(1)
		_, err := c.Txn(ctx).Then(clientv3.OpPut(kc.key(i), val)).Commit()
		return "write", err
	}, nil
}
