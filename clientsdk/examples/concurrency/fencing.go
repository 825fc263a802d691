package examples

import (
	"context"
	"fmt"
	"io"

	v3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/clientsdk/concurrency"
)

// RunFencing plays the scenario under prefix and narrates it to out.
func RunFencing(ctx context.Context, c *v3.Client, prefix string, out io.Writer) error {
	s1, err := concurrency.NewSession(c, concurrency.WithTTL(5))
	if err != nil {
		return err
	}
	defer s1.Close()
	worker1 := concurrency.NewMutex(s1, prefix+"/lock")
	if err := worker1.Lock(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "worker 1 holds the lock, fencing token %d\n", worker1.FencingToken())

	// Worker 1 pauses for longer than its TTL: its lease expires. (Revoked
	// here so the example does not wait 5 seconds.)
	if _, err := c.Revoke(ctx, s1.Lease()); err != nil {
		return err
	}
	<-worker1.Lost()
	fmt.Fprintln(out, "worker 1's session is gone: Lost() fired")

	s2, err := concurrency.NewSession(c)
	if err != nil {
		return err
	}
	defer s2.Close()
	worker2 := concurrency.NewMutex(s2, prefix+"/lock")
	if err := worker2.Lock(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "worker 2 holds the lock, fencing token %d\n", worker2.FencingToken())
	if _, err := worker2.Txn(ctx).Then(v3.OpPut(prefix+"/config", "from worker 2")).Commit(); err != nil {
		return err
	}

	// Worker 1 wakes up and writes as if it still held the lock.
	_, err = worker1.Txn(ctx).Then(v3.OpPut(prefix+"/config", "from worker 1 (stale)")).Commit()
	fmt.Fprintf(out, "worker 1's guarded write: %v\n", err)
	resp, err := c.Get(ctx, prefix+"/config")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "config = %q\n", resp.Kvs[0].Value)
	return worker2.Unlock(ctx)
}
