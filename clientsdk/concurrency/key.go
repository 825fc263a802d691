package concurrency

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	v3 "go.etcd.io/etcd/client/v3"
)

// waitDelete waits until key, which exists at revision rev, is deleted.
// The watch starts at rev+1: the delete can only come later, and a watch
// that starts in the future is served from the write path at once, while
// one that starts in the past waits for the server's catch-up loop (100 ms
// in etcd) — which is most of etcd's own lock handover time.
func waitDelete(ctx context.Context, client *v3.Client, key string, rev int64) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := client.Watch(cctx, key, v3.WithRev(rev+1))
	// If the delete came before the watch was set up, the watch has to wait
	// for that catch-up loop; a read tells at once.
	if r, err := client.Get(ctx, key, v3.WithCountOnly()); err == nil && r.Count == 0 {
		return nil
	}
	for wr := range wch {
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("lost watcher waiting for delete of %q", key)
}

// waitDeletes waits until every key under pfx created at or before
// maxCreateRev is deleted: the queue ahead of us is gone.
func waitDeletes(ctx context.Context, client *v3.Client, pfx string, maxCreateRev int64) error {
	getOpts := append(v3.WithLastCreate(), v3.WithMaxCreateRev(maxCreateRev))
	for {
		resp, err := client.Get(ctx, pfx, getOpts...)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		last := string(resp.Kvs[0].Key)
		if err := waitDelete(ctx, client, last, resp.Header.Revision); err != nil {
			return err
		}
	}
}

// keyFor is etcd's owner-key layout: prefix/lease-in-hex.
func keyFor(pfx string, lease v3.LeaseID) string { return fmt.Sprintf("%s%x", pfx, lease) }
