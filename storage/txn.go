package storage

import (
	"bytes"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/storage/backend"
)

// ReadTxn reads one consistent view of the store. It is not safe for
// concurrent use; End releases it.
type ReadTxn struct {
	v    view
	done bool
}

// Read starts a read transaction at the current revision.
func (s *Store) Read() (*ReadTxn, error) {
	v, err := s.newView()
	if err != nil {
		return nil, err
	}
	return &ReadTxn{v: v}, nil
}

// Rev returns the revision this transaction reads at by default.
func (tr *ReadTxn) Rev() int64 { return tr.v.rev }

// Range returns the keys in [key, end) (see Store.Range for the conventions).
func (tr *ReadTxn) Range(key, end []byte, opts RangeOptions) (*RangeResult, error) {
	if tr.done {
		return nil, ErrTxnDone
	}
	rev, err := checkRev(opts.Rev, tr.v.rev, tr.v.compactRev)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	res, err := rangeAt(tr.v.snap, key, end, rev, opts)
	if err != nil {
		return nil, err
	}
	res.Rev = tr.v.rev
	return res, nil
}

// End releases the transaction's view.
func (tr *ReadTxn) End() {
	if !tr.done {
		tr.done = true
		_ = tr.v.snap.Close()
	}
}

// checkRev resolves a requested revision against the current and compacted
// revisions, with etcd's rules.
func checkRev(req, cur, compacted int64) (int64, error) {
	if req > cur {
		return 0, ErrFutureRev
	}
	if req <= 0 {
		req = cur
	}
	if req < compacted {
		return 0, ErrCompacted
	}
	return req, nil
}

// Range reads [key, end) at opts.Rev. end nil or empty means the single key;
// end "\x00" means every key >= key; an end at or before key is an empty
// range. key must not be empty.
func (s *Store) Range(key, end []byte, opts RangeOptions) (*RangeResult, error) {
	tr, err := s.Read()
	if err != nil {
		return nil, err
	}
	defer tr.End()
	return tr.Range(key, end, opts)
}

// Put writes key=value attached to lease (0 for none) in its own
// transaction and returns the new revision.
func (s *Store) Put(key, value []byte, lease int64) (int64, error) {
	tw, err := s.Write()
	if err != nil {
		return 0, err
	}
	if _, err := tw.Put(key, value, lease); err != nil {
		tw.Abort()
		return 0, err
	}
	return tw.End()
}

// DeleteRange deletes the keys in [key, end) in its own transaction. It
// returns the number of keys deleted and the store revision afterwards
// (unchanged when nothing was deleted).
func (s *Store) DeleteRange(key, end []byte) (n, rev int64, err error) {
	tw, err := s.Write()
	if err != nil {
		return 0, 0, err
	}
	n, err = tw.DeleteRange(key, end)
	if err != nil {
		tw.Abort()
		return 0, 0, err
	}
	rev, err = tw.End()
	return n, rev, err
}

// pendingKey is the state of a key touched by the current transaction.
type pendingKey struct {
	exists bool   // the key has a latest entry (live or tombstone)
	rec    record // its latest version
	rev    Revision
	pre    *mvccpb.KeyValue // live state before the transaction, for prev_kv
	raw    []byte           // rec encoded, if the transaction wrote it
}

// WriteTxn applies many changes at one revision, atomically. Only one write
// transaction runs at a time: Write blocks until the previous one ends. Its
// own reads see its own writes. It is not safe for concurrent use.
type WriteTxn struct {
	s        *Store
	beginRev int64
	batch    backend.Batch
	pending  map[string]*pendingKey
	events   []*mvccpb.Event
	ci       *ConsistentIndex
	aux      bool // PutAux/DeleteAux wrote to the batch
	done     bool
}

// Write starts a write transaction.
func (s *Store) Write() (*WriteTxn, error) {
	s.writeMu.Lock()
	s.mu.RLock()
	closed, rev := s.closed, s.rev
	s.mu.RUnlock()
	if closed {
		s.writeMu.Unlock()
		return nil, ErrClosed
	}
	return &WriteTxn{s: s, beginRev: rev, batch: s.be.NewBatch(), pending: map[string]*pendingKey{}}, nil
}

// Rev returns the revision before this transaction; its changes get Rev()+1.
func (tw *WriteTxn) Rev() int64 { return tw.beginRev }

func (tw *WriteTxn) nextRev() Revision {
	return Revision{Main: tw.beginRev + 1, Sub: int64(len(tw.events))}
}

// Changes returns the events of the transaction so far, in order. The
// caller must not modify them.
func (tw *WriteTxn) Changes() []*mvccpb.Event { return tw.events }

// current returns the latest state of key as this transaction sees it.
func (tw *WriteTxn) current(key []byte) (*pendingKey, error) {
	if pk, ok := tw.pending[string(key)]; ok {
		return pk, nil
	}
	pk := &pendingKey{}
	var (
		mod Revision
		raw []byte
		ok  bool
		err error
	)
	if c, hit := tw.s.latestGet(key); hit {
		// Under writeMu the cache holds the committed latest version:
		// nothing newer than beginRev exists.
		mod, raw, ok = c.rev, c.raw, true
	} else if mod, raw, ok, err = versionAt(tw.s.be, key, tw.beginRev); err != nil {
		return nil, err
	} else if ok {
		tw.s.latestAdd(key, mod, raw)
	}
	if ok {
		if pk.rec, err = decodeRecord(raw, true); err != nil {
			return nil, err
		}
		pk.exists, pk.rev = true, mod
		if !pk.rec.tombstone {
			pk.pre = pk.rec.kv(bytes.Clone(key), mod.Main)
		}
	} else {
		pk.rec = record{tombstone: true}
	}
	tw.pending[string(key)] = pk
	return pk, nil
}

// supersede writes rec as key's latest version at rev, moving the previous
// latest version (if any) to the older-versions space.
func (tw *WriteTxn) supersede(key []byte, pk *pendingKey, rev Revision, rec record) {
	if pk.exists {
		tw.batch.Set(versionKey(key, pk.rev), pk.rec.encode())
	}
	raw := rec.encode()
	tw.batch.Set(latestKey(key), latestValue(rev, raw))
	tw.batch.Set(historyKey(rev), historyValue(key, rec.tombstone))
	pk.exists, pk.rec, pk.rev, pk.raw = true, rec, rev, raw
}

// Put writes key=value with the given lease (0 for none) and returns the
// transaction's revision.
func (tw *WriteTxn) Put(key, value []byte, lease int64) (int64, error) {
	if tw.done {
		return 0, ErrTxnDone
	}
	switch {
	case len(key) == 0:
		return 0, ErrEmptyKey
	case len(key) > tw.s.cfg.MaxKeyBytes:
		return 0, ErrKeyTooLarge
	case len(value) > tw.s.cfg.MaxValueBytes:
		return 0, ErrValueTooLarge
	}
	pk, err := tw.current(key)
	if err != nil {
		return 0, err
	}
	rev := tw.nextRev()
	rec := record{create: rev.Main, version: 1, lease: lease, value: bytes.Clone(value)}
	if !pk.rec.tombstone {
		rec.create, rec.version = pk.rec.create, pk.rec.version+1
		if pk.rec.lease != 0 && pk.rec.lease != lease {
			tw.batch.Delete(leaseKey(pk.rec.lease, key))
		}
	}
	if lease != 0 {
		tw.batch.Set(leaseKey(lease, key), nil)
	}
	k := bytes.Clone(key)
	tw.supersede(k, pk, rev, rec)
	ev := &mvccpb.Event{Type: mvccpb.PUT, Kv: rec.kv(k, rev.Main)}
	if rec.version > 1 {
		ev.PrevKv = pk.pre // etcd gives no prev_kv to create events
	}
	tw.events = append(tw.events, ev)
	return rev.Main, nil
}

// DeleteRange deletes every key in [key, end) (conventions as in
// Store.Range) and returns how many were deleted.
func (tw *WriteTxn) DeleteRange(key, end []byte) (int64, error) {
	if tw.done {
		return 0, ErrTxnDone
	}
	if len(key) == 0 {
		return 0, ErrEmptyKey
	}
	res, err := tw.rangeAt(key, end, tw.Rev()+1, RangeOptions{KeysOnly: true})
	if err != nil {
		return 0, err
	}
	for _, kv := range res.KVs {
		pk, err := tw.current(kv.Key)
		if err != nil {
			return 0, err
		}
		if pk.rec.lease != 0 {
			tw.batch.Delete(leaseKey(pk.rec.lease, kv.Key))
		}
		rev := tw.nextRev()
		tw.supersede(kv.Key, pk, rev, record{tombstone: true})
		tw.events = append(tw.events, &mvccpb.Event{
			Type:   mvccpb.DELETE,
			Kv:     &mvccpb.KeyValue{Key: kv.Key, ModRevision: rev.Main},
			PrevKv: pk.pre,
		})
	}
	return int64(len(res.KVs)), nil
}

// Range reads [key, end). At the transaction's own revision (the default
// once it has changes) it sees its own writes.
func (tw *WriteTxn) Range(key, end []byte, opts RangeOptions) (*RangeResult, error) {
	if tw.done {
		return nil, ErrTxnDone
	}
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	cur := tw.beginRev
	if len(tw.events) > 0 {
		cur++
	}
	tw.s.mu.RLock()
	compacted := tw.s.compactRev
	tw.s.mu.RUnlock()
	rev, err := checkRev(opts.Rev, cur, compacted)
	if err != nil {
		return nil, err
	}
	res, err := tw.rangeAt(key, end, rev, opts)
	if err != nil {
		return nil, err
	}
	res.Rev = cur
	return res, nil
}

// rangeAt reads the committed state, overlaid with this transaction's
// writes when rev is the transaction's revision.
func (tw *WriteTxn) rangeAt(key, end []byte, rev int64, opts RangeOptions) (*RangeResult, error) {
	touched := false
	if rev > tw.beginRev {
		for k := range tw.pending {
			if keyInRange([]byte(k), key, end) {
				touched = true
				break
			}
		}
	}
	if !touched {
		return rangeAt(tw.s.be, key, end, min(rev, tw.beginRev), opts)
	}
	// Merge: read the committed keys fully, then apply pending changes.
	base, err := rangeAt(tw.s.be, key, end, tw.beginRev, RangeOptions{KeysOnly: opts.KeysOnly || opts.CountOnly})
	if err != nil {
		return nil, err
	}
	merged := make(map[string]*mvccpb.KeyValue, len(base.KVs))
	for _, kv := range base.KVs {
		merged[string(kv.Key)] = kv
	}
	for k, pk := range tw.pending {
		if !keyInRange([]byte(k), key, end) {
			continue
		}
		if pk.rec.tombstone {
			delete(merged, k)
		} else {
			merged[k] = pk.rec.kv([]byte(k), pk.rev.Main)
		}
	}
	kvs := make([]*mvccpb.KeyValue, 0, len(merged))
	for _, kv := range merged {
		kvs = append(kvs, kv)
	}
	sortKVs(kvs)
	c := collector{opts: opts}
	for _, kv := range kvs {
		if !c.add(kv.CreateRevision, kv.ModRevision, func(withValue bool) *mvccpb.KeyValue {
			out := &mvccpb.KeyValue{
				Key:            bytes.Clone(kv.Key),
				CreateRevision: kv.CreateRevision,
				ModRevision:    kv.ModRevision,
				Version:        kv.Version,
				Lease:          kv.Lease,
			}
			if withValue {
				out.Value = bytes.Clone(kv.Value)
			}
			return out
		}) {
			break
		}
	}
	return c.result(rev), nil
}

// SetConsistentIndex records the Raft position this transaction covers; it
// is written in the same atomic batch as the transaction's changes, even
// when there are none.
func (tw *WriteTxn) SetConsistentIndex(ci ConsistentIndex) {
	tw.ci = &ci
}

// Abort discards the transaction's changes and releases the write lock.
func (tw *WriteTxn) Abort() {
	if tw.done {
		return
	}
	tw.done = true
	tw.batch.Close()
	tw.s.writeMu.Unlock()
}

// End commits the transaction and returns the store revision afterwards.
// It returns once the changes are durable (unless Config.NoSync). A
// transaction without changes leaves the revision unchanged.
func (tw *WriteTxn) End() (int64, error) {
	if tw.done {
		return 0, ErrTxnDone
	}
	tw.done = true
	s := tw.s
	rev := tw.beginRev
	if len(tw.events) == 0 && tw.ci == nil && !tw.aux {
		tw.batch.Close()
		s.writeMu.Unlock()
		return rev, nil
	}
	if len(tw.events) > 0 {
		// No revision key: the history entries written with the events
		// give the revision on open (currentRev).
		rev++
	}
	if tw.ci != nil {
		tw.batch.Set(metaConsistentIndex, encodeCI(*tw.ci))
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		tw.batch.Close()
		s.writeMu.Unlock()
		return 0, ErrClosed
	}
	failpoint(fpBeforeCommit)
	if err := tw.batch.Commit(false); err != nil {
		s.mu.Unlock()
		s.writeMu.Unlock()
		s.lg.Error("failed to commit write transaction", zap.Int64("revision", rev), zap.Error(err))
		return 0, fmt.Errorf("storage: commit: %w", err)
	}
	s.rev = rev
	if tw.ci != nil {
		s.ci = *tw.ci
	}
	if s.keys.counting {
		s.keys.delta += keyDelta(tw.events)
	}
	for k, pk := range tw.pending {
		if pk.raw != nil { // written by this transaction
			s.latestSet(k, pk.rev, pk.rec.tombstone, pk.raw)
		}
	}
	seq := s.durable.commit()
	failpoint(fpAfterCommit)
	if len(tw.events) > 0 {
		// Until notify has run, rev is visible but its events are not yet
		// with the synced watchers: progress must not report it.
		s.notifyPending.Store(rev)
	}
	s.mu.Unlock()
	if len(tw.events) > 0 {
		s.watch.notify(rev, tw.events)
		s.notifyPending.CompareAndSwap(rev, 0)
	}
	s.writeMu.Unlock()
	if !s.cfg.NoSync {
		if err := s.durable.wait(seq); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

func encodeCI(ci ConsistentIndex) []byte {
	b := make([]byte, 0, 16)
	b = append(b, encodeInt(int64(ci.Index))...)
	return append(b, encodeInt(int64(ci.Term))...)
}

// latestGet returns key's cached latest version.
func (s *Store) latestGet(key []byte) (cachedLatest, bool) {
	if s.latest == nil {
		return cachedLatest{}, false
	}
	return s.latest.Get(string(key))
}

// latestAdd caches key's committed latest version read from the engine.
func (s *Store) latestAdd(key []byte, rev Revision, raw []byte) {
	if s.latest == nil || len(raw) > latestCacheMaxRecord || raw[0]&flagTombstone != 0 {
		return
	}
	s.latest.Add(string(key), cachedLatest{rev: rev, raw: raw})
}

// latestSet records a committed write of key: a new latest version, or a
// tombstone, which is never cached (compaction may remove it).
func (s *Store) latestSet(key string, rev Revision, tombstone bool, raw []byte) {
	if s.latest == nil {
		return
	}
	if tombstone || len(raw) > latestCacheMaxRecord {
		s.latest.Remove(key)
		return
	}
	s.latest.Add(key, cachedLatest{rev: rev, raw: raw})
}
