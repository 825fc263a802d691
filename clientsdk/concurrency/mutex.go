package concurrency

import (
	"context"
	"errors"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	v3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Errors of Mutex, shared with etcd's package so errors.Is works across
// both.
var (
	// ErrLocked is returned by TryLock when another session holds the lock.
	ErrLocked = concurrency.ErrLocked
	// ErrSessionExpired is returned by Lock when the session's lease is gone.
	ErrSessionExpired = concurrency.ErrSessionExpired
	// ErrLockReleased is returned when unlocking a lock not held.
	ErrLockReleased = concurrency.ErrLockReleased
)

// Mutex is a distributed lock. Waiters are served in the order they asked
// (by the create revision of their keys).
type Mutex struct {
	s   *Session
	pfx string

	mu    sync.Mutex // guards the fields below
	myKey string
	myRev int64
	hdr   *pb.ResponseHeader
	lost  *lossWatch
}

// NewMutex returns a lock named by pfx, held through session s.
func NewMutex(s *Session, pfx string) *Mutex {
	return &Mutex{s: s, pfx: pfx + "/"}
}

// tryAcquire creates our key if needed and reports the current owner.
func (m *Mutex) tryAcquire(ctx context.Context) (*v3.TxnResponse, error) {
	client := m.s.Client()
	key := keyFor(m.pfx, m.s.Lease())
	cmp := v3.Compare(v3.CreateRevision(key), "=", 0)
	put := v3.OpPut(key, "", v3.WithLease(m.s.Lease()))
	get := v3.OpGet(key)
	getOwner := v3.OpGet(m.pfx, v3.WithFirstCreate()...)
	resp, err := client.Txn(ctx).If(cmp).Then(put, getOwner).Else(get, getOwner).Commit()
	if err != nil {
		return nil, err
	}
	rev := resp.Header.Revision
	if !resp.Succeeded {
		rev = resp.Responses[0].GetResponseRange().Kvs[0].CreateRevision
	}
	m.mu.Lock()
	m.myKey, m.myRev = key, rev
	m.mu.Unlock()
	return resp, nil
}

func (m *Mutex) owns(resp *v3.TxnResponse) bool {
	kvs := resp.Responses[1].GetResponseRange().Kvs
	return len(kvs) == 0 || kvs[0].CreateRevision == m.rev()
}

func (m *Mutex) rev() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.myRev
}

// TryLock takes the lock if it is free, and returns ErrLocked otherwise
// (without waiting).
func (m *Mutex) TryLock(ctx context.Context) error {
	resp, err := m.tryAcquire(ctx)
	if err != nil {
		return err
	}
	if m.owns(resp) {
		m.acquired(resp.Header)
		return nil
	}
	client := m.s.Client()
	if _, err := client.Delete(ctx, m.Key()); err != nil {
		return err
	}
	m.reset()
	return ErrLocked
}

// Lock waits until the lock is ours, ctx is done, or the session expires.
func (m *Mutex) Lock(ctx context.Context) error {
	resp, err := m.tryAcquire(ctx)
	if err != nil {
		return err
	}
	if m.owns(resp) {
		m.acquired(resp.Header)
		return nil
	}
	client := m.s.Client()
	// Wait for everyone queued before us.
	werr := waitDeletes(ctx, client, m.pfx, m.rev()-1)
	if werr != nil {
		m.Unlock(client.Ctx())
		return werr
	}
	// Our key must still exist: the session may have expired meanwhile.
	gresp, err := client.Get(ctx, m.Key())
	if err != nil {
		m.Unlock(client.Ctx())
		return err
	}
	if len(gresp.Kvs) == 0 {
		m.reset()
		return ErrSessionExpired
	}
	m.acquired(gresp.Header)
	return nil
}

// acquired records ownership and starts watching for its loss.
func (m *Mutex) acquired(hdr *pb.ResponseHeader) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hdr = hdr
	if m.lost != nil {
		m.lost.stop()
	}
	m.lost = watchLoss(m.s, m.myKey, m.myRev)
}

func (m *Mutex) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lost != nil {
		m.lost.stop()
		m.lost = nil
	}
	m.myKey, m.myRev = "\x00", -1
}

// Unlock releases the lock.
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	key, lw := m.myKey, m.lost
	m.lost = nil
	m.mu.Unlock()
	if key == "" || key == "\x00" {
		return ErrLockReleased
	}
	if lw != nil {
		lw.stop() // our own delete is not a loss
	}
	if _, err := m.s.Client().Delete(ctx, key); err != nil {
		return err
	}
	m.reset()
	return nil
}

// IsOwner is the comparison that holds while this Mutex owns the lock; put
// it in a transaction's If to make writes conditional on ownership (Txn
// does it for you).
func (m *Mutex) IsOwner() v3.Cmp {
	m.mu.Lock()
	defer m.mu.Unlock()
	return v3.Compare(v3.CreateRevision(m.myKey), "=", m.myRev)
}

// Key returns the owner key of this Mutex.
func (m *Mutex) Key() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.myKey
}

// Header returns the response header of the request that took the lock.
func (m *Mutex) Header() *pb.ResponseHeader {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hdr
}

// FencingToken returns the create revision of this owner's key. Tokens grow
// strictly from one owner to the next: pass it to the systems you write to
// so they can refuse a stale owner. It is 0 before the lock is taken.
func (m *Mutex) FencingToken() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lost == nil {
		return 0
	}
	return m.myRev
}

// Txn starts a transaction that only applies while this Mutex still owns
// the lock; Commit returns ErrLockLost otherwise.
func (m *Mutex) Txn(ctx context.Context) *GuardedTxn {
	return &GuardedTxn{ctx: ctx, kv: m.s.Client(), owner: m.IsOwner(), lostErr: ErrLockLost}
}

// Lost returns a channel closed the moment ownership is gone: the session's
// lease expired or was revoked, or the owner key was deleted. It is nil
// while the lock is not held.
func (m *Mutex) Lost() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lost == nil {
		return nil
	}
	return m.lost.done
}

// lockerMutex adapts Mutex to sync.Locker.
type lockerMutex struct{ *Mutex }

func (lm *lockerMutex) Lock() {
	client := lm.s.Client()
	if err := lm.Mutex.Lock(client.Ctx()); err != nil {
		panic(err)
	}
}

func (lm *lockerMutex) Unlock() {
	client := lm.s.Client()
	if err := lm.Mutex.Unlock(client.Ctx()); err != nil {
		panic(err)
	}
}

// NewLocker returns a sync.Locker over a Mutex; it panics on errors, as
// etcd's does.
func NewLocker(s *Session, pfx string) sync.Locker {
	return &lockerMutex{NewMutex(s, pfx)}
}

// lossWatch closes done when the session ends or key is deleted.
type lossWatch struct {
	done   chan struct{}
	cancel context.CancelFunc
}

func watchLoss(s *Session, key string, rev int64) *lossWatch {
	ctx, cancel := context.WithCancel(context.Background())
	lw := &lossWatch{done: make(chan struct{}), cancel: cancel}
	wch := s.Client().Watch(ctx, key, v3.WithRev(rev+1), v3.WithFilterPut())
	go func() {
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return // released normally: not a loss
			case <-s.Done():
				close(lw.done)
				return
			case wr, ok := <-wch:
				if !ok {
					return
				}
				for _, ev := range wr.Events {
					if ev.Type == mvccpb.DELETE {
						close(lw.done)
						return
					}
				}
				if errors.Is(wr.Err(), context.Canceled) {
					return
				}
			}
		}
	}()
	return lw
}

func (lw *lossWatch) stop() { lw.cancel() }
