package storage

import (
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/storage/backend"
)

// keyCount is the number of live keys (etcd's
// etcd_debugging_mvcc_keys_total). It is not kept on disk: the first
// KeyCount call counts the key space from a view in the background,
// while write transactions committed after that view add their changes
// (guarded by Store.mu, which orders them against the view).
type keyCount struct {
	start    sync.Once
	counting bool  // guarded by Store.mu: writes add to delta
	delta    int64 // guarded by Store.mu
	base     int64 // guarded by Store.mu; valid when known
	known    bool  // guarded by Store.mu
}

// keyDelta is what evs do to the number of live keys: a put of a
// version 1 creates a key, a delete removes one.
func keyDelta(evs []*mvccpb.Event) int64 {
	var d int64
	for _, ev := range evs {
		switch {
		case ev.Type == mvccpb.DELETE:
			d--
		case ev.Kv.Version == 1:
			d++
		}
	}
	return d
}

// KeyCount returns the number of keys that exist now (not deleted), and
// false until the count is known: the first call starts counting the key
// space in the background, which takes about a second per few million
// keys.
func (s *Store) KeyCount() (int64, bool) {
	s.keys.start.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		snap, err := s.be.NewSnapshot()
		if err != nil {
			s.lg.Warn("cannot count keys", zap.Error(err))
			return
		}
		s.keys.counting = true
		s.wg.Add(1)
		go s.countKeys(snap)
	})
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys.base + s.keys.delta, s.keys.known
}

// countKeys counts the live latest entries in snap.
func (s *Store) countKeys(snap backend.Snapshot) {
	defer s.wg.Done()
	defer snap.Close()
	it := snap.NewIterator(backend.IterOptions{LowerBound: []byte{prefixLatest}, UpperBound: latestSpaceEnd})
	defer it.Close()
	var n, i int64
	for ok := it.First(); ok; ok = it.Next() {
		if i++; i%4096 == 0 {
			select {
			case <-s.stop:
				return
			default:
			}
		}
		_, raw, err := splitLatest(it.Value())
		if err != nil {
			s.lg.Warn("cannot count keys", zap.Error(err))
			return
		}
		if raw[0]&flagTombstone == 0 {
			n++
		}
	}
	if err := it.Error(); err != nil {
		s.lg.Warn("cannot count keys", zap.Error(err))
		return
	}
	s.mu.Lock()
	s.keys.base, s.keys.known = n, true
	s.mu.Unlock()
}
