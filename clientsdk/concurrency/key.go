package concurrency

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	v3 "go.etcd.io/etcd/client/v3"
)

// waitDelete waits until key, whose last revision is rev, is deleted.
func waitDelete(ctx context.Context, client *v3.Client, key string, rev int64) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := client.Watch(cctx, key, v3.WithRev(rev))
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
