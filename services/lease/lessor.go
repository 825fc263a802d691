package lease

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"

	"github.com/metastore/metastore/storage"
)

// MaxTTL is the largest TTL a lease may be granted with, as in etcd.
const MaxTTL = 9000000000

// Bucket is the storage auxiliary bucket holding the lease table.
const Bucket = "lease"

// DefaultCheckpointInterval is how often the leader checkpoints remaining
// TTLs, as etcd's default.
const DefaultCheckpointInterval = 5 * time.Minute

// ErrNotPrimary is returned by Renew on a member that does not run the
// expiry clocks (not the leader); the caller forwards to the leader.
var ErrNotPrimary = errors.New("lease: not a primary lessor")

// MinTTL is the shortest TTL etcd grants: 1.5 election timeouts, rounded
// up to whole seconds, so a lease outlives one leader election.
func MinTTL(electionTicks int, tick time.Duration) int64 {
	d := time.Duration((3*electionTicks)/2) * tick
	return int64(math.Ceil(d.Seconds()))
}

// Config configures a Lessor.
type Config struct {
	// MinTTL is the shortest TTL granted (see MinTTL); shorter requests get it.
	MinTTL int64
	// CheckpointInterval is how often the primary checkpoints remaining
	// TTLs; 0 means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// RetryInterval is how long the primary waits for a proposed revoke
	// of an expired lease before proposing it again; 0 means 3 s.
	RetryInterval time.Duration
	Logger        *zap.Logger
}

type lease struct {
	id, ttl   int64
	remaining int64     // last checkpointed remaining TTL in seconds; 0: none
	expiry    time.Time // zero: never (not primary)
	revokeAt  time.Time // when the primary last proposed its revoke
	cpAt      time.Time // when the primary last checkpointed it
	// due is when the primary next looks at the lease: its expiry, or,
	// once its revoke is proposed, when to propose it again.
	due time.Time
	// expPos and cpPos are the lease's positions in the primary's expiry
	// and checkpoint queues (-1: not queued), expKey and cpKey what those
	// queues order it by (see leaseQueue).
	expPos, cpPos int
	expKey, cpKey time.Time
}

func newLease(id, ttl, remaining int64) *lease {
	return &lease{id: id, ttl: ttl, remaining: remaining, expPos: -1, cpPos: -1}
}

func (l *lease) startTTL() int64 {
	if l.remaining > 0 {
		return l.remaining
	}
	return l.ttl
}

// Lessor holds the lease table and, on the leader, the expiry clocks. The
// Grant, Revoke and Checkpoint methods must be called in Raft log order by
// the apply loop only; the rest is safe for concurrent use.
type Lessor struct {
	cfg Config
	lg  *zap.Logger
	now func() time.Time

	mu      sync.RWMutex
	leases  map[int64]*lease
	primary bool
	// On the primary, every lease is in both queues: expQ by due, cpQ by
	// cpAt.
	expQ, cpQ leaseQueue

	renewedN, expiredN atomic.Uint64 // since start, for Stats
}

// Stats are counters since the lessor started.
type Stats struct {
	// Renewed counts keepalives this member renewed as the primary
	// (etcd's etcd_debugging_lease_renewed_total).
	Renewed uint64
	// Expired counts expired leases whose revoke this member proposed
	// successfully as the primary (etcd's
	// etcd_debugging_server_lease_expired_total).
	Expired uint64
}

// Stats returns the lessor's counters.
func (le *Lessor) Stats() Stats {
	return Stats{Renewed: le.renewedN.Load(), Expired: le.expiredN.Load()}
}

// New returns an empty lessor; call Recover to load the table of a store.
func New(cfg Config) *Lessor {
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 3 * time.Second
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Lessor{
		cfg: cfg, lg: lg, now: time.Now, leases: map[int64]*lease{},
		expQ: leaseQueue{at: func(l *lease) time.Time { return l.due },
			key: func(l *lease) *time.Time { return &l.expKey }, pos: func(l *lease) *int { return &l.expPos }},
		cpQ: leaseQueue{at: func(l *lease) time.Time { return l.cpAt },
			key: func(l *lease) *time.Time { return &l.cpKey }, pos: func(l *lease) *int { return &l.cpPos }},
	}
}

// startClocks starts every lease's clock at now plus extend plus its
// remaining TTL and queues it; le.mu must be held.
func (le *Lessor) startClocks(extend time.Duration) {
	now := le.now()
	for _, l := range le.leases {
		l.expiry = now.Add(extend + time.Duration(l.startTTL())*time.Second)
		l.due = l.expiry
		l.revokeAt, l.cpAt = time.Time{}, now
	}
	le.expQ.reset(le.leases)
	le.cpQ.reset(le.leases)
}

func encodeID(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

func (l *lease) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(l.ttl))
	return binary.BigEndian.AppendUint64(b, uint64(l.remaining))
}

// AuxReader reads a storage auxiliary bucket; *storage.Store implements it.
type AuxReader interface {
	ForEachAux(bucket string, fn func(key, value []byte) error) error
}

// ForEachStored calls fn with every lease r holds: its ID, granted TTL
// and remaining TTL as last checkpointed (0: none), as etcd's leasepb.Lease
// has them, until fn returns an error.
func ForEachStored(r AuxReader, fn func(id, ttl, remainingTTL int64) error) error {
	return r.ForEachAux(Bucket, func(k, v []byte) error {
		if len(k) != 8 || len(v) != 16 {
			return fmt.Errorf("lease: corrupt lease record %x", k)
		}
		return fn(int64(binary.BigEndian.Uint64(k)), int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])))
	})
}

// Recover replaces the table with the one in r (after start-up or a
// snapshot restore). A primary lessor restarts every clock.
func (le *Lessor) Recover(r AuxReader) error {
	leases := map[int64]*lease{}
	err := ForEachStored(r, func(id, ttl, remaining int64) error {
		leases[id] = newLease(id, ttl, remaining)
		return nil
	})
	if err != nil {
		return err
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	le.expQ.clear()
	le.cpQ.clear()
	le.leases = leases
	if le.primary {
		le.startClocks(0)
	}
	return nil
}

// Grant applies a LeaseGrant: it creates lease id with ttl (raised to the
// minimum TTL) in tw.
func (le *Lessor) Grant(tw *storage.WriteTxn, id, ttl int64) (*pb.LeaseGrantResponse, error) {
	if id == 0 {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	if ttl > MaxTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if _, ok := le.leases[id]; ok {
		return nil, rpctypes.ErrGRPCLeaseExist
	}
	if ttl < le.cfg.MinTTL {
		ttl = le.cfg.MinTTL
	}
	l := newLease(id, ttl, 0)
	if le.primary {
		now := le.now()
		l.expiry = now.Add(time.Duration(ttl) * time.Second)
		l.due, l.cpAt = l.expiry, now
		le.expQ.place(l)
		le.cpQ.place(l)
	}
	le.leases[id] = l
	tw.PutAux(Bucket, encodeID(id), l.encode())
	return &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{}, ID: id, TTL: ttl}, nil
}

// Revoke applies a LeaseRevoke: every key attached to the lease is deleted
// in tw (so at one revision) and the lease is removed.
func (le *Lessor) Revoke(tw *storage.WriteTxn, id int64) (*pb.LeaseRevokeResponse, error) {
	le.mu.RLock()
	_, ok := le.leases[id]
	le.mu.RUnlock()
	if !ok {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	keys, err := tw.LeaseKeys(id)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if _, err := tw.DeleteRange(k, nil); err != nil {
			return nil, err
		}
	}
	tw.DeleteAux(Bucket, encodeID(id))
	le.mu.Lock()
	if l, ok := le.leases[id]; ok {
		le.expQ.remove(l)
		le.cpQ.remove(l)
		delete(le.leases, id)
	}
	le.mu.Unlock()
	return &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{}}, nil
}

// Checkpoint applies a LeaseCheckpoint: it records remaining TTLs (0
// clears one). Unknown leases are ignored, as in etcd.
func (le *Lessor) Checkpoint(tw *storage.WriteTxn, cps []*pb.LeaseCheckpoint) (*pb.LeaseCheckpointResponse, error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	for _, cp := range cps {
		l, ok := le.leases[cp.ID]
		if !ok {
			continue
		}
		l.remaining = cp.Remaining_TTL
		tw.PutAux(Bucket, encodeID(l.id), l.encode())
	}
	return &pb.LeaseCheckpointResponse{Header: &pb.ResponseHeader{}}, nil
}

// LeaseExists reports whether lease id is in the table (kv.LeaseChecker).
func (le *Lessor) LeaseExists(id int64) bool {
	le.mu.RLock()
	defer le.mu.RUnlock()
	_, ok := le.leases[id]
	return ok
}

// Promote starts the expiry clocks: every lease expires after its
// remaining (checkpointed) or whole TTL plus extend.
func (le *Lessor) Promote(extend time.Duration) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.primary = true
	le.startClocks(extend)
}

// Demote stops the expiry clocks (the member is no longer the leader).
func (le *Lessor) Demote() {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.primary = false
	le.expQ.clear()
	le.cpQ.clear()
	for _, l := range le.leases {
		l.expiry, l.due = time.Time{}, time.Time{}
	}
}

// IsPrimary reports whether the lessor runs the expiry clocks.
func (le *Lessor) IsPrimary() bool {
	le.mu.RLock()
	defer le.mu.RUnlock()
	return le.primary
}

// Renew restarts lease id's clock and returns its TTL. clearRemaining
// tells the caller to propose a checkpoint clearing the lease's remaining
// TTL, which no longer applies. It returns ErrNotPrimary on a follower and
// rpctypes.ErrGRPCLeaseNotFound for an unknown or expired lease.
func (le *Lessor) Renew(id int64) (ttl int64, clearRemaining bool, err error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		return -1, false, ErrNotPrimary
	}
	l, ok := le.leases[id]
	if !ok {
		return -1, false, rpctypes.ErrGRPCLeaseNotFound
	}
	now := le.now()
	if !now.Before(l.expiry) {
		// Expired: its revoke is on the way.
		return -1, false, rpctypes.ErrGRPCLeaseNotFound
	}
	l.expiry = now.Add(time.Duration(l.ttl) * time.Second)
	l.due, l.cpAt = l.expiry, now
	// Both clocks moved later (no heap move), unless the expiry had been
	// extended past now+TTL by a promotion: then it is placed earlier.
	le.expQ.moved(l)
	le.cpQ.moved(l)
	le.renewedN.Add(1)
	return l.ttl, l.remaining > 0, nil
}

// Info is what TimeToLive reports of a lease.
type Info struct {
	ID, GrantedTTL int64
	// TTL is the remaining time in whole seconds (truncated, as etcd); on
	// a member that is not primary it is the last checkpointed remaining
	// TTL or the granted TTL.
	TTL int64
}

// Lookup returns lease id's TTLs, or false if it does not exist.
func (le *Lessor) Lookup(id int64) (Info, bool) {
	le.mu.RLock()
	defer le.mu.RUnlock()
	l, ok := le.leases[id]
	if !ok {
		return Info{}, false
	}
	inf := Info{ID: id, GrantedTTL: l.ttl, TTL: l.startTTL()}
	if !l.expiry.IsZero() {
		inf.TTL = int64(l.expiry.Sub(le.now()).Seconds())
	}
	return inf, true
}

// IDs returns the IDs of every lease, soonest expiry first (as etcd's
// LeaseLeases), ties by ID.
func (le *Lessor) IDs() []int64 {
	le.mu.RLock()
	ls := make([]*lease, 0, len(le.leases))
	for _, l := range le.leases {
		ls = append(ls, l)
	}
	le.mu.RUnlock()
	sort.Slice(ls, func(i, j int) bool {
		if !ls[i].expiry.Equal(ls[j].expiry) {
			return ls[i].expiry.Before(ls[j].expiry)
		}
		return ls[i].id < ls[j].id
	})
	ids := make([]int64, len(ls))
	for i, l := range ls {
		ids[i] = l.id
	}
	return ids
}

// expired returns, on the primary, the leases whose clock ran out and
// whose revoke was not proposed within the retry interval, and marks them.
func (le *Lessor) expired(limit int) []int64 {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		return nil
	}
	now := le.now()
	var ids []int64
	for l := le.expQ.top(); l != nil && len(ids) < limit && !now.Before(l.due); l = le.expQ.top() {
		l.revokeAt = now
		l.due = now.Add(le.cfg.RetryInterval)
		le.expQ.fixTop()
		ids = append(ids, l.id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// dueCheckpoints returns, on the primary, the remaining TTLs of leases not
// checkpointed (or renewed) for a checkpoint interval.
func (le *Lessor) dueCheckpoints(limit int) []*pb.LeaseCheckpoint {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		return nil
	}
	now := le.now()
	var cps []*pb.LeaseCheckpoint
	for l := le.cpQ.top(); l != nil && len(cps) < limit && now.Sub(l.cpAt) >= le.cfg.CheckpointInterval; l = le.cpQ.top() {
		l.cpAt = now
		le.cpQ.fixTop()
		if !now.Before(l.expiry) {
			continue // its revoke is on the way
		}
		rem := int64(math.Ceil(l.expiry.Sub(now).Seconds()))
		cps = append(cps, &pb.LeaseCheckpoint{ID: l.id, Remaining_TTL: rem})
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].ID < cps[j].ID })
	return cps
}

// AuxPutter writes an auxiliary bucket entry (storage.Importer does).
type AuxPutter interface {
	PutAux(bucket string, key, value []byte)
}

// Import writes a lease as the lessor persists it, for a store being
// filled from another one's data (an etcd snapshot): its ID, granted TTL
// and remaining TTL as last checkpointed (0: none).
func Import(tw AuxPutter, id, ttl, remainingTTL int64) {
	tw.PutAux(Bucket, encodeID(id), newLease(id, ttl, remainingTTL).encode())
}
