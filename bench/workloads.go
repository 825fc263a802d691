package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
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
	return func(ctx context.Context, c *clientv3.Client, i int) error {
		_, err := c.Put(ctx, kc.key(i), val)
		return err
	}
}

// TxnPut writes values in a txn of one put (etcd benchmark's txn-put).
func TxnPut(kc KeyConfig) Op {
	kc = kc.withDefaults()
	val := strings.Repeat("x", kc.ValSize)
	return func(ctx context.Context, c *clientv3.Client, i int) error {
		_, err := c.Txn(ctx).Then(clientv3.OpPut(kc.key(i), val)).Commit()
		return err
	}
}

// Range reads [key, end) (end empty: the key only) with consistency "l"
// (linearizable) or "s" (serializable) and an optional limit.
func Range(key, end, consistency string, limit int64) (Op, error) {
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
	return func(ctx context.Context, c *clientv3.Client, _ int) error {
		_, err := c.Get(ctx, key, opts...)
		return err
	}, nil
}
