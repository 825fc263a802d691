package recipes

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	v3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/clientsdk/concurrency"
)

// ErrNotHeld is returned when releasing a semaphore slot not held.
var ErrNotHeld = errors.New("semaphore: slot not held")

// Semaphore admits at most n holders at a time; waiters are admitted in the
// order they asked. A holder's slot is freed when it releases or its
// session ends.
type Semaphore struct {
	s     *concurrency.Session
	pfx   string
	n     int
	myKey string
	myRev int64
}

// NewSemaphore returns a semaphore with n slots under pfx.
func NewSemaphore(s *concurrency.Session, pfx string, n int) *Semaphore {
	return &Semaphore{s: s, pfx: pfx + "/", n: n}
}

// Acquire waits for a slot.
func (sem *Semaphore) Acquire(ctx context.Context) error {
	if sem.n <= 0 {
		return fmt.Errorf("semaphore: %d slots", sem.n)
	}
	client := sem.s.Client()
	key := fmt.Sprintf("%s%x", sem.pfx, sem.s.Lease())
	resp, err := client.Txn(ctx).
		If(v3.Compare(v3.CreateRevision(key), "=", 0)).
		Then(v3.OpPut(key, "", v3.WithLease(sem.s.Lease()))).
		Else(v3.OpGet(key)).Commit()
	if err != nil {
		return err
	}
	sem.myKey, sem.myRev = key, resp.Header.Revision
	if !resp.Succeeded {
		sem.myRev = resp.Responses[0].GetResponseRange().Kvs[0].CreateRevision
	}
	for {
		// Count the keys created before ours. Not with WithCountOnly: etcd's
		// count ignores revision filters, only the returned keys honour them.
		ahead, err := client.Get(ctx, sem.pfx, v3.WithPrefix(), v3.WithMaxCreateRev(sem.myRev-1), v3.WithKeysOnly())
		if err != nil {
			return sem.abandon(err)
		}
		if len(ahead.Kvs) < sem.n {
			return nil
		}
		// Wait for one of those ahead of us to leave.
		if err := waitAnyDelete(ctx, client, sem.pfx, ahead.Header.Revision+1); err != nil {
			return sem.abandon(err)
		}
	}
}

func (sem *Semaphore) abandon(err error) error {
	_, _ = sem.s.Client().Delete(context.Background(), sem.myKey)
	sem.myKey = ""
	return err
}

// Release frees the slot.
func (sem *Semaphore) Release(ctx context.Context) error {
	if sem.myKey == "" {
		return ErrNotHeld
	}
	_, err := sem.s.Client().Delete(ctx, sem.myKey)
	sem.myKey = ""
	return err
}

// waitAnyDelete returns after the first deletion under pfx since rev.
func waitAnyDelete(ctx context.Context, client *v3.Client, pfx string, rev int64) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range client.Watch(cctx, pfx, v3.WithPrefix(), v3.WithRev(rev), v3.WithFilterPut()) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	return ctx.Err()
}
