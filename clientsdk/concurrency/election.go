package concurrency

import (
	"context"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	v3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/protobuf/proto"
)

// Errors of Election, shared with etcd's package.
var (
	// ErrElectionNotLeader is returned when acting as leader without being
	// one, including by a guarded transaction of a deposed leader.
	ErrElectionNotLeader = concurrency.ErrElectionNotLeader
	// ErrElectionNoLeader is returned by Leader when nobody leads.
	ErrElectionNoLeader = concurrency.ErrElectionNoLeader
)

// Election is a leader election among sessions campaigning under a prefix;
// candidates are served in campaign order.
type Election struct {
	session   *Session
	keyPrefix string

	mu        sync.Mutex // guards the fields below
	leaderKey string
	leaderRev int64
	hdr       *pb.ResponseHeader
	lost      *lossWatch
}

// NewElection returns an election on pfx for session s.
func NewElection(s *Session, pfx string) *Election {
	return &Election{session: s, keyPrefix: pfx + "/"}
}

// ResumeElection resumes the leadership of a previous Campaign, given its
// key and revision.
func ResumeElection(s *Session, pfx string, leaderKey string, leaderRev int64) *Election {
	e := &Election{session: s, keyPrefix: pfx, leaderKey: leaderKey, leaderRev: leaderRev}
	e.lost = watchLoss(s, leaderKey, leaderRev)
	return e
}

// Campaign puts a value as eligible and blocks until this session is the
// leader, ctx is done, or the session expires.
func (e *Election) Campaign(ctx context.Context, val string) error {
	s := e.session
	client := s.Client()
	k := keyFor(e.keyPrefix, s.Lease())
	txn := client.Txn(ctx).If(v3.Compare(v3.CreateRevision(k), "=", 0))
	txn = txn.Then(v3.OpPut(k, val, v3.WithLease(s.Lease())))
	txn = txn.Else(v3.OpGet(k))
	resp, err := txn.Commit()
	if err != nil {
		return err
	}
	rev := resp.Header.Revision
	e.mu.Lock()
	e.leaderKey, e.leaderRev, e.hdr = k, rev, resp.Header
	e.mu.Unlock()
	if !resp.Succeeded {
		kv := resp.Responses[0].GetResponseRange().Kvs[0]
		e.mu.Lock()
		e.leaderRev = kv.CreateRevision
		e.mu.Unlock()
		if string(kv.Value) != val {
			if err = e.Proclaim(ctx, val); err != nil {
				e.Resign(ctx)
				return err
			}
		}
	}
	if err := waitDeletes(ctx, client, e.keyPrefix, e.Rev()-1); err != nil {
		// The caller cancelled or the session is gone: give up the slot.
		select {
		case <-ctx.Done():
			e.Resign(client.Ctx())
		default:
			e.mu.Lock()
			e.leaderKey, e.leaderRev = "", 0
			e.mu.Unlock()
		}
		return err
	}
	e.mu.Lock()
	e.hdr = resp.Header
	if e.lost != nil {
		e.lost.stop()
	}
	e.lost = watchLoss(s, e.leaderKey, e.leaderRev)
	e.mu.Unlock()
	return nil
}

// Proclaim lets the leader announce a new value without another election.
func (e *Election) Proclaim(ctx context.Context, val string) error {
	e.mu.Lock()
	key, rev := e.leaderKey, e.leaderRev
	e.mu.Unlock()
	if key == "" {
		return ErrElectionNotLeader
	}
	client := e.session.Client()
	cmp := v3.Compare(v3.CreateRevision(key), "=", rev)
	resp, err := client.Txn(ctx).If(cmp).Then(v3.OpPut(key, val, v3.WithLease(e.session.Lease()))).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		e.mu.Lock()
		e.leaderKey = ""
		e.mu.Unlock()
		return ErrElectionNotLeader
	}
	e.mu.Lock()
	e.hdr = resp.Header
	e.mu.Unlock()
	return nil
}

// Resign lets a leader start a new election.
func (e *Election) Resign(ctx context.Context) error {
	e.mu.Lock()
	key, rev, lw := e.leaderKey, e.leaderRev, e.lost
	e.lost = nil
	e.mu.Unlock()
	if key == "" {
		return nil
	}
	if lw != nil {
		lw.stop()
	}
	client := e.session.Client()
	cmp := v3.Compare(v3.CreateRevision(key), "=", rev)
	resp, err := client.Txn(ctx).If(cmp).Then(v3.OpDelete(key)).Commit()
	if err == nil {
		e.mu.Lock()
		e.hdr = resp.Header
		e.leaderKey, e.leaderRev = "", 0
		e.mu.Unlock()
	}
	return err
}

// Leader returns the leader's key-value, or ErrElectionNoLeader.
func (e *Election) Leader(ctx context.Context) (*v3.GetResponse, error) {
	resp, err := e.session.Client().Get(ctx, e.keyPrefix, v3.WithFirstCreate()...)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrElectionNoLeader
	}
	return resp, nil
}

// Observe returns a channel that reliably observes ordered leader
// proposals as GetResponse values on every current elected leader key. It
// does not guarantee that the election itself has not been cancelled by
// its session's lease expiring. The channel closes when ctx is done.
func (e *Election) Observe(ctx context.Context) <-chan *v3.GetResponse {
	ch := make(chan *v3.GetResponse)
	go e.observe(ctx, ch)
	return ch
}

func (e *Election) observe(ctx context.Context, ch chan<- *v3.GetResponse) {
	client := e.session.Client()
	defer close(ch)
	for {
		resp, err := client.Get(ctx, e.keyPrefix, v3.WithFirstCreate()...)
		if err != nil {
			return
		}
		var kv *mvccpb.KeyValue
		var hdr *pb.ResponseHeader
		if len(resp.Kvs) == 0 {
			// Wait for the first leader.
			cctx, cancel := context.WithCancel(ctx)
			wch := client.Watch(cctx, e.keyPrefix, v3.WithPrefix(), v3.WithRev(resp.Header.Revision+1))
			for kv == nil {
				wr, ok := <-wch
				if !ok || wr.Err() != nil {
					cancel()
					return
				}
				for _, ev := range wr.Events {
					if ev.Type == mvccpb.PUT {
						hdr, kv = proto.Clone(wr.Header).(*pb.ResponseHeader), ev.Kv
						hdr.Revision = kv.ModRevision
						break
					}
				}
			}
			cancel()
		} else {
			hdr, kv = resp.Header, resp.Kvs[0]
		}
		select {
		case ch <- &v3.GetResponse{Header: hdr, Kvs: []*mvccpb.KeyValue{kv}}:
		case <-ctx.Done():
			return
		}
		// Follow this leader's changes until its key is deleted.
		cctx, cancel := context.WithCancel(ctx)
		wch := client.Watch(cctx, string(kv.Key), v3.WithRev(hdr.Revision+1))
		keyDeleted := false
		for !keyDeleted {
			wr, ok := <-wch
			if !ok {
				cancel()
				return
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					keyDeleted = true
					break
				}
				select {
				case ch <- &v3.GetResponse{Header: wr.Header, Kvs: []*mvccpb.KeyValue{ev.Kv}}:
				case <-cctx.Done():
					cancel()
					return
				}
			}
		}
		cancel()
	}
}

// Key returns the leader key if elected, empty otherwise.
func (e *Election) Key() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leaderKey
}

// Rev returns the leader key's creation revision, if elected.
func (e *Election) Rev() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leaderRev
}

// Header is the response header of the last request that changed the
// election state.
func (e *Election) Header() *pb.ResponseHeader {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hdr
}

// FencingToken returns the create revision of this leader's key: it grows
// strictly from one leader to the next. It is 0 when not elected.
func (e *Election) FencingToken() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leaderKey == "" || e.lost == nil {
		return 0
	}
	return e.leaderRev
}

// isLeader is the comparison that holds while this Election leads.
func (e *Election) isLeader() v3.Cmp {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leaderKey == "" {
		// Not elected: a comparison that can never hold.
		return v3.Compare(v3.CreateRevision(e.keyPrefix), "=", -1)
	}
	return v3.Compare(v3.CreateRevision(e.leaderKey), "=", e.leaderRev)
}

// Txn starts a transaction that only applies while this session still
// leads; Commit returns ErrElectionNotLeader otherwise.
func (e *Election) Txn(ctx context.Context) *GuardedTxn {
	return &GuardedTxn{ctx: ctx, kv: e.session.Client(), owner: e.isLeader(), lostErr: ErrElectionNotLeader}
}

// Lost returns a channel closed the moment leadership is gone (lease
// expired or revoked, key deleted). It is nil while not elected.
func (e *Election) Lost() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lost == nil {
		return nil
	}
	return e.lost.done
}
