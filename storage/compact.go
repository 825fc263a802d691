package storage

import (
	"bytes"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/metastore/metastore/storage/backend"
)

// Compact schedules compaction at rev: afterwards reads below rev fail with
// ErrCompacted, and history no read at rev or later can see is removed in
// the background, in bounded batches that never stall writers. The returned
// channel is closed when the physical removal is done. rev must be above
// the previous compaction (else ErrCompacted) and at most the current
// revision (else ErrFutureRev).
func (s *Store) Compact(rev int64) (<-chan struct{}, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if f := s.cfg.Observer.CompactionPause; f != nil {
		defer func(t0 time.Time) { f(true, time.Since(t0)) }(time.Now())
	}
	s.mu.RLock()
	closed, cur, compacted := s.closed, s.rev, s.compactRev
	s.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrClosed
	case rev <= compacted:
		return nil, ErrCompacted
	case rev > cur:
		return nil, ErrFutureRev
	}
	// As etcd: the hash of the history up to rev, taken before compaction
	// removes any of it, is what HashKV(rev) answers from now on, so a
	// member's hash at a compaction revision does not change when the
	// compaction runs (etcd keeps the last 10 in memory). It is computed
	// in the background from a view taken now.
	if v, err := s.newView(); err == nil {
		s.hashBeforeCompaction(v, rev)
	}
	wb := s.be.NewBatch()
	wb.Set(metaCompactSched, encodeInt(rev))
	if err := wb.Commit(!s.cfg.NoSync); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.compactRev = rev
	s.mu.Unlock()
	s.lg.Info("scheduled compaction", zap.Int64("compact-revision", rev))
	return s.comp.schedule(rev), nil
}

// compactor removes compacted history in the background.
type compactor struct {
	s    *Store
	mu   sync.Mutex // guards the fields below
	want int64      // highest scheduled revision
	done int64      // highest revision whose removal finished
	wait []compactWaiter
	kick chan struct{}
}

type compactWaiter struct {
	rev int64
	ch  chan struct{}
}

func newCompactor(s *Store) *compactor {
	c := &compactor{s: s, kick: make(chan struct{}, 1), want: s.compactRev, done: -1}
	if d, err := s.metaInt(metaCompactDone, -1); err == nil {
		c.done = d
	}
	if c.want > c.done {
		c.kick <- struct{}{} // resume an interrupted compaction
	}
	return c
}

func (c *compactor) schedule(rev int64) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	c.want = max(c.want, rev)
	c.wait = append(c.wait, compactWaiter{rev: rev, ch: ch})
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return ch
}

func (c *compactor) run() {
	defer c.s.wg.Done()
	for {
		select {
		case <-c.s.stop:
			return
		case <-c.kick:
		}
		for {
			c.mu.Lock()
			want, done := c.want, c.done
			c.mu.Unlock()
			if want <= done {
				break
			}
			if err := c.compact(done, want); err != nil {
				if err != ErrClosed {
					c.s.lg.Error("compaction failed", zap.Int64("compact-revision", want), zap.Error(err))
				}
				return
			}
			c.mu.Lock()
			c.done = want
			kept := c.wait[:0]
			for _, w := range c.wait {
				if w.rev <= want {
					close(w.ch)
				} else {
					kept = append(kept, w)
				}
			}
			c.wait = kept
			c.mu.Unlock()
			c.s.lg.Info("finished compaction", zap.Int64("compact-revision", want))
		}
	}
}

// compact removes history made obsolete by compaction at to, examining the
// history entries in [from, to] in batches: from again, because a deletion
// at exactly the compaction revision is kept (as etcd keeps it: a watch
// from the compaction revision still gets it) until the next compaction.
// A crash midway is harmless: the work is idempotent and resumes from the
// last finished compaction.
func (c *compactor) compact(from, to int64) error {
	cursor := historyKey(Revision{Main: max(from, 0)})
	end := historyKey(Revision{Main: to + 1})
	t0, deleted := time.Now(), 0
	for {
		select {
		case <-c.s.stop:
			return ErrClosed
		default:
		}
		next, n, err := c.batch(cursor, end, to)
		if err != nil {
			return err
		}
		deleted += n
		if next == nil {
			wb := c.s.be.NewBatch()
			wb.Set(metaCompactDone, encodeInt(to))
			if err := wb.Commit(false); err != nil {
				return err
			}
			if f := c.s.cfg.Observer.CompactionDone; f != nil {
				f(to, time.Since(t0), deleted)
			}
			return nil
		}
		cursor = next
		if d := c.s.cfg.CompactionSleepInterval; d > 0 {
			select {
			case <-c.s.stop:
				return ErrClosed
			case <-time.After(d):
			}
		}
	}
}

// batch processes up to CompactionBatchLimit history entries from cursor
// and returns where to continue, or nil when done, and how many engine
// records it deleted. The batch is prepared
// without locks and committed under the write lock, after rechecking the
// latest-version entries it removes (a writer may have superseded them).
func (c *compactor) batch(cursor, end []byte, to int64) ([]byte, int, error) {
	be := c.s.be
	// Decide from one consistent snapshot: a writer committing meanwhile
	// only adds versions above to and moves latest entries to the 'v'
	// space, which the snapshot does not see and the batch never deletes.
	snap, err := be.NewSnapshot()
	if err != nil {
		return nil, 0, err
	}
	defer snap.Close()
	it := snap.NewIterator(backend.IterOptions{LowerBound: cursor, UpperBound: end})
	defer it.Close()
	wb := be.NewBatch()
	defer wb.Close()
	var tombs []tombstone
	n := 0
	var next []byte
	for ok := it.First(); ok; ok = it.Next() {
		if n == c.s.cfg.CompactionBatchLimit {
			next = append([]byte{}, it.Key()...)
			break
		}
		n++
		r, err := parseHistoryKey(it.Key())
		if err != nil {
			return nil, 0, err
		}
		key, _, err := parseHistoryValue(it.Value())
		if err != nil {
			return nil, 0, err
		}
		t, err := compactKey(snap, wb, key, r, to)
		if err != nil {
			return nil, 0, err
		}
		if t != nil {
			tombs = append(tombs, *t)
		}
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	c.s.writeMu.Lock()
	defer c.s.writeMu.Unlock()
	if f := c.s.cfg.Observer.CompactionPause; f != nil {
		defer func(t0 time.Time) { f(false, time.Since(t0)) }(time.Now())
	}
	for _, t := range tombs {
		// Delete the latest entry only if it is still that tombstone;
		// otherwise a writer moved it to the older-versions space.
		v, err := be.Get(latestKey(t.key))
		if err != nil && !errors.Is(err, backend.ErrNotFound) {
			return nil, 0, err
		}
		if mod, _, perr := splitLatest(v); err == nil && perr == nil && mod == t.rev {
			wb.Delete(latestKey(t.key))
		} else {
			wb.Delete(versionKey(t.key, t.rev))
		}
	}
	deleted := wb.Count()
	failpoint(fpCompactBeforeBatch)
	if err := wb.Commit(false); err != nil {
		return nil, 0, err
	}
	failpoint(fpCompactAfterBatch)
	return next, deleted, nil
}

// tombstone is a latest-version tombstone that compaction removes.
type tombstone struct {
	key []byte
	rev Revision
}

// compactKey handles the history entry of key at r. Only the entry of the
// key's newest version at or below to does work: it deletes every older
// version with its history entry, and the newest itself if it is a
// tombstone below to (one at to stays, as in etcd, until the next
// compaction). Entries of older versions are deleted by that work. A
// tombstone that is the key's latest entry is returned for the caller to
// remove under the write lock.
func compactKey(be backend.Reader, wb backend.Batch, key []byte, r Revision, to int64) (*tombstone, error) {
	v, err := be.Get(latestKey(key))
	if errors.Is(err, backend.ErrNotFound) {
		wb.Delete(historyKey(r)) // stale entry: its key is gone
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	lmod, lraw, err := splitLatest(v)
	if err != nil {
		return nil, err
	}
	it := be.NewIterator(backend.IterOptions{LowerBound: keyPrefix(key), UpperBound: keyPrefixEnd(key)})
	defer it.Close()
	var l Revision
	var tomb, inLatest bool
	var more bool
	if lmod.Main <= to {
		l, tomb, inLatest = lmod, lraw[0]&flagTombstone != 0, true
		more = it.First() // every older version goes
	} else {
		if !it.SeekGE(versionKey(key, Revision{Main: to, Sub: maxSub})) {
			wb.Delete(historyKey(r)) // stale entry: its version is gone
			return nil, it.Error()
		}
		if _, l, err = splitVersionKey(it.Key()); err != nil {
			return nil, err
		}
		if l != r {
			return nil, nil
		}
		if it.Value()[0]&flagTombstone != 0 && l.Main < to {
			wb.Delete(bytes.Clone(it.Key()))
			wb.Delete(historyKey(l))
		}
		more = it.Next()
	}
	if l != r {
		return nil, nil
	}
	for ; more; more = it.Next() {
		_, old, err := splitVersionKey(it.Key())
		if err != nil {
			return nil, err
		}
		wb.Delete(bytes.Clone(it.Key()))
		wb.Delete(historyKey(old))
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if inLatest && tomb && l.Main < to {
		wb.Delete(historyKey(l))
		return &tombstone{key: key, rev: l}, nil
	}
	return nil, nil
}
