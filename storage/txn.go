package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"

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
	key     []byte // the key, owned and never changed: the events share it
	exists  bool   // the key has a latest entry (live or tombstone)
	rec     record // its latest version
	rev     Revision
	enc     []byte // rec encoded, if exists; never changed once set
	written bool   // the transaction wrote rec
	preLive bool   // the key was live before the transaction
	pre     record // its version then, if preLive, for prev_kv
	preMod  int64  // and that version's revision
}

// WriteTxn applies many changes at one revision, atomically. Only one write
// transaction runs at a time: Write blocks until the previous one ends. Its
// own reads see its own writes. It is not safe for concurrent use.
type WriteTxn struct {
	s        *Store
	beginRev int64
	batch    backend.Batch
	// The keys touched: the first inline, the rest in more, by key. Most
	// transactions touch one key, and need no map.
	first    pendingKey
	hasFirst bool
	more     map[string]*pendingKey
	events   []*mvccpb.Event
	ci       ConsistentIndex
	hasCI    bool             // SetConsistentIndex was called
	ev1      [1]*mvccpb.Event // events' first backing array
	aux      bool             // PutAux/DeleteAux wrote to the batch
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
	return &WriteTxn{s: s, beginRev: rev, batch: s.be.NewBatch()}, nil
}

// Rev returns the revision before this transaction; its changes get Rev()+1.
func (tw *WriteTxn) Rev() int64 { return tw.beginRev }

func (tw *WriteTxn) nextRev() Revision {
	return Revision{Main: tw.beginRev + 1, Sub: int64(len(tw.events))}
}

// Changes returns the events of the transaction so far, in order. The
// caller must not modify them.
func (tw *WriteTxn) Changes() []*mvccpb.Event { return tw.events }

// lookup returns the pending state of key, if the transaction touched it.
func (tw *WriteTxn) lookup(key []byte) (*pendingKey, bool) {
	if tw.hasFirst && bytes.Equal(tw.first.key, key) {
		return &tw.first, true
	}
	pk, ok := tw.more[string(key)]
	return pk, ok
}

// pending yields the state of every key the transaction touched, in no
// particular order.
func (tw *WriteTxn) pending(yield func(*pendingKey) bool) {
	if !tw.hasFirst || !yield(&tw.first) {
		return
	}
	for _, pk := range tw.more {
		if !yield(pk) {
			return
		}
	}
}

// current returns the latest state of key as this transaction sees it.
// It also returns a copy of value, made in the same allocation as the
// key's own copy when the key is new to the transaction.
func (tw *WriteTxn) current(key, value []byte) (*pendingKey, []byte, error) {
	if pk, ok := tw.lookup(key); ok {
		return pk, bytes.Clone(value), nil
	}
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
	} else if mod, raw, ok, err = versionAt(tw.s.be, key, tw.beginRev, tw.s.wbuf); err != nil {
		return nil, nil, err
	} else if ok {
		tw.s.latestAdd(key, mod, raw)
	}
	var rec record
	if ok {
		// raw is the cache's or our own copy, never changed: the
		// record's value may share it.
		if rec, err = decodeRecordShared(raw); err != nil {
			return nil, nil, err
		}
	} else {
		rec = record{tombstone: true}
	}
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	var pk *pendingKey
	if !tw.hasFirst {
		pk, tw.hasFirst = &tw.first, true
	} else {
		if tw.more == nil {
			tw.more = map[string]*pendingKey{}
		}
		pk = &pendingKey{}
		tw.more[string(key)] = pk
	}
	*pk = pendingKey{key: buf[:len(key):len(key)], exists: ok, rec: rec, rev: mod, enc: raw}
	if ok && !rec.tombstone {
		pk.preLive, pk.pre, pk.preMod = true, rec, mod.Main
	}
	var v []byte
	if value != nil {
		v = buf[len(key):]
	}
	return pk, v, nil
}

// supersede writes rec as key's latest version at rev, moving the previous
// latest version (if any) to the older-versions space.
func (tw *WriteTxn) supersede(pk *pendingKey, rev Revision, rec record) {
	b := tw.s.wbuf[:0]
	if pk.exists {
		b = appendVersionKey(b, pk.key, pk.rev)
		tw.batch.Set(b, pk.enc)
	}
	// The latest entry's value is allocated, not scratch: its record part
	// is kept as pk.enc, which the latest-version cache may keep.
	lv := appendRev(make([]byte, 0, revLen+rec.encodedLen()), rev)
	lv = rec.appendTo(lv)
	b = appendLatestKey(b[:0], pk.key)
	tw.batch.Set(b, lv)
	b = appendHistoryKey(b[:0], rev)
	n := len(b)
	b = appendHistoryValue(b, pk.key, rec.tombstone)
	tw.batch.Set(b[:n], b[n:])
	tw.s.wbuf = b
	pk.exists, pk.rec, pk.rev, pk.enc, pk.written = true, rec, rev, lv[revLen:len(lv):len(lv)], true
}

// setLease attaches (set) or detaches key's lease entry.
func (tw *WriteTxn) setLease(lease int64, key []byte, set bool) {
	b := appendLeaseKey(tw.s.wbuf[:0], lease, key)
	if set {
		tw.batch.Set(b, nil)
	} else {
		tw.batch.Delete(b)
	}
	tw.s.wbuf = b
}

// change is one event with its KeyValues, allocated together.
type change struct {
	ev       mvccpb.Event
	kv, prev mvccpb.KeyValue
}

// addEvent records the event of a change to pk at mod: a put of rec, or
// (rec nil) a delete. With prev it carries the key's state before the
// transaction as prev_kv.
func (tw *WriteTxn) addEvent(pk *pendingKey, mod int64, rec *record, prev bool) {
	c := &change{}
	c.ev.Kv = &c.kv
	if rec != nil {
		rec.setKV(&c.kv, pk.key, mod)
	} else {
		c.ev.Type, c.kv.Key, c.kv.ModRevision = mvccpb.DELETE, pk.key, mod
	}
	if prev && pk.preLive {
		pk.pre.setKV(&c.prev, pk.key, pk.preMod)
		c.ev.PrevKv = &c.prev
	}
	if tw.events == nil {
		tw.events = tw.ev1[:0]
	}
	tw.events = append(tw.events, &c.ev)
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
	pk, v, err := tw.current(key, value)
	if err != nil {
		return 0, err
	}
	rev := tw.nextRev()
	rec := record{create: rev.Main, version: 1, lease: lease, value: v}
	if !pk.rec.tombstone {
		rec.create, rec.version = pk.rec.create, pk.rec.version+1
		if pk.rec.lease != 0 && pk.rec.lease != lease {
			tw.setLease(pk.rec.lease, pk.key, false)
		}
	}
	if lease != 0 {
		tw.setLease(lease, pk.key, true)
	}
	tw.supersede(pk, rev, rec)
	// etcd gives no prev_kv to create events.
	tw.addEvent(pk, rev.Main, &rec, rec.version > 1)
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
		pk, _, err := tw.current(kv.Key, nil)
		if err != nil {
			return 0, err
		}
		if pk.rec.lease != 0 {
			tw.setLease(pk.rec.lease, pk.key, false)
		}
		rev := tw.nextRev()
		tw.supersede(pk, rev, record{tombstone: true})
		tw.addEvent(pk, rev.Main, nil, true)
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
		for pk := range tw.pending {
			if keyInRange(pk.key, key, end) {
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
	for pk := range tw.pending {
		if !keyInRange(pk.key, key, end) {
			continue
		}
		if pk.rec.tombstone {
			delete(merged, string(pk.key))
		} else {
			merged[string(pk.key)] = pk.rec.kv(pk.key, pk.rev.Main)
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
	tw.ci, tw.hasCI = ci, true
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
	if len(tw.events) == 0 && !tw.hasCI && !tw.aux {
		tw.batch.Close()
		s.writeMu.Unlock()
		return rev, nil
	}
	if len(tw.events) > 0 {
		// No revision key: the history entries written with the events
		// give the revision on open (currentRev).
		rev++
	}
	if tw.hasCI {
		s.wbuf = appendCI(s.wbuf[:0], tw.ci)
		tw.batch.Set(metaConsistentIndex, s.wbuf)
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
	if tw.hasCI {
		s.ci = tw.ci
	}
	if s.keys.counting {
		s.keys.delta += keyDelta(tw.events)
	}
	for pk := range tw.pending {
		if pk.written {
			s.latestSet(pk.key, pk.rev, pk.rec.tombstone, pk.enc)
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

func encodeCI(ci ConsistentIndex) []byte { return appendCI(make([]byte, 0, 16), ci) }

// appendCI appends ci's encoding, index then term, to b.
func appendCI(b []byte, ci ConsistentIndex) []byte {
	b = binary.BigEndian.AppendUint64(b, ci.Index)
	return binary.BigEndian.AppendUint64(b, ci.Term)
}

// unsafeString views key as a string without copying it, for cache
// lookups, which keep no key they are given.
func unsafeString(key []byte) string { return unsafe.String(unsafe.SliceData(key), len(key)) }

// latestGet returns key's cached latest version.
func (s *Store) latestGet(key []byte) (cachedLatest, bool) {
	if s.latest == nil {
		return cachedLatest{}, false
	}
	return s.latest.Get(unsafeString(key))
}

// latestAdd caches key's committed latest version read from the engine.
func (s *Store) latestAdd(key []byte, rev Revision, raw []byte) {
	if s.latest == nil || len(raw) > latestCacheMaxRecord || raw[0]&flagTombstone != 0 {
		return
	}
	s.latest.Add(string(key), cachedLatest{rev: rev, raw: raw})
}

// latestSet records a committed write of key: a new latest version, or a
// tombstone, which is never cached (compaction may remove it). raw is
// kept, and must never change.
func (s *Store) latestSet(key []byte, rev Revision, tombstone bool, raw []byte) {
	if s.latest == nil {
		return
	}
	k := unsafeString(key)
	if tombstone || len(raw) > latestCacheMaxRecord {
		s.latest.Remove(k)
		return
	}
	// Add keeps the key of an entry already there and stores the key it is
	// given only for a new one, which must own it: hence the Contains
	// first: a second map lookup instead of a key copy (an allocation) on
	// every write.
	if !s.latest.Contains(k) {
		k = string(key)
	}
	s.latest.Add(k, cachedLatest{rev: rev, raw: raw})
}
