package storage

import (
	"bytes"
	"cmp"
	"hash/crc32"
	"slices"

	"github.com/metastore/metastore/storage/backend"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// KVHash is the result of HashKV.
type KVHash struct {
	// Hash is a CRC-32C over the history the store keeps for revisions up to
	// HashRev, as compaction at CompactRev defines it.
	Hash uint32
	// HashRev is the revision hashed up to.
	HashRev int64
	// CompactRev is the compaction revision in force, -1 if none.
	CompactRev int64
}

// HashKV hashes the MVCC history up to rev (0: the current revision) as
// etcd v3.7 does: a CRC-32C, seeded with the name of etcd's key bucket, over
// etcd's key-bucket pair of every change after the compaction revision and
// of every survivor of compaction at or before it. A store and an etcd
// member with the same history and compaction revision get the same hash,
// however far either's physical compaction has progressed, so members can
// compare it to detect corruption — across MetaStore and etcd too.
func (s *Store) HashKV(rev int64) (KVHash, error) {
	if h, ok := s.rememberedHash(rev); ok {
		return h, nil
	}
	if p := s.pendingHash(rev); p != nil {
		// The hash at a compaction revision is being taken from the
		// state before that compaction: wait for it.
		<-p.done
		return p.h, p.err
	}
	v, err := s.newView()
	if err != nil {
		return KVHash{}, err
	}
	defer v.snap.Close()
	return s.hashView(v, rev, false)
}

// hashView hashes v's history up to rev (0: v's revision) as etcd's
// hashByRev does. atCompaction selects the hash etcd takes while it
// compacts at rev (scheduleCompaction), which differs in one corner: see
// keepEmpty.
func (s *Store) hashView(v view, rev int64, atCompaction bool) (KVHash, error) {
	if rev > v.rev {
		return KVHash{}, ErrFutureRev
	}
	if rev <= 0 {
		rev = v.rev
	}
	if rev < v.compactRev {
		return KVHash{}, ErrCompacted
	}
	h := crc32.New(crcTable)
	h.Write([]byte(EtcdKeyBucket))
	empty := -1 // keepEmpty, once asked
	err := forEachEtcdKV(v, rev, s.stop, func(c *etcdChange) error {
		if c.rev.Main <= v.compactRev {
			// etcd skips a deletion at the compaction revision, and hashes
			// what compaction kept only if it is still the newest version
			// of its key at rev — or, when no key is (its keep set is
			// empty), all of it.
			if c.tombstone && c.rev.Main == v.compactRev {
				return nil
			}
			_, l, _, err := latest(v.snap, c.key, rev, false)
			if err != nil {
				return err
			}
			if l != c.rev {
				if empty < 0 {
					e, err := keepEmpty(v, rev, atCompaction)
					if err != nil {
						return err
					}
					empty = boolToInt(e)
				}
				if empty == 0 {
					return nil
				}
			}
		}
		h.Write(c.k)
		h.Write(c.v)
		return nil
	})
	if err != nil {
		return KVHash{}, err
	}
	return KVHash{Hash: h.Sum32(), HashRev: rev, CompactRev: v.compactRev}, nil
}

// keepEmpty reports whether etcd's set of revisions to keep at rev is
// empty: no key exists at rev — and, for the hash etcd takes while
// compacting at rev, no key was deleted at exactly rev either (that set
// keeps such deletions; the one HashKV uses does not).
func keepEmpty(v view, rev int64, atCompaction bool) (bool, error) {
	res, err := rangeAt(v.snap, []byte{0}, []byte{0}, rev, RangeOptions{Limit: 1})
	if err != nil || len(res.KVs) > 0 {
		return false, err
	}
	if !atCompaction {
		return true, nil
	}
	it := v.snap.NewIterator(backend.IterOptions{
		LowerBound: historyKey(Revision{Main: rev}),
		UpperBound: historyKey(Revision{Main: rev + 1}),
	})
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if _, tomb, err := parseHistoryValue(it.Value()); err != nil || tomb {
			return false, err
		}
	}
	return true, it.Error()
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// maxRememberedHashes is how many compaction-time hashes are kept (etcd:
// hashStorageMaxSize, 10).
const maxRememberedHashes = 10

// pendingHash is a compaction-time hash being computed in the background.
type pendingHash struct {
	done chan struct{} // closed when h and err are set
	h    KVHash
	err  error
}

// hashBeforeCompaction takes, in the background, the hash of the history
// up to rev as it stands before compaction at rev removes any of it (v is
// a view taken now, under writeMu), and remembers it: HashKV(rev) answers
// it from then on, as etcd does. The hash reads the whole history, so it
// must not hold up the caller — the apply of a compaction request.
func (s *Store) hashBeforeCompaction(v view, rev int64) {
	p := &pendingHash{done: make(chan struct{})}
	s.hashMu.Lock()
	if s.hashPending == nil {
		s.hashPending = map[int64]*pendingHash{}
	}
	s.hashPending[rev] = p
	s.hashMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if s.hashHook != nil {
			s.hashHook()
		}
		h, err := s.hashView(v, rev, true)
		v.snap.Close()
		s.hashMu.Lock()
		delete(s.hashPending, rev)
		if err == nil {
			s.rememberHashLocked(h)
		}
		p.h, p.err = h, err
		s.hashMu.Unlock()
		close(p.done)
	}()
}

func (s *Store) pendingHash(rev int64) *pendingHash {
	s.hashMu.Lock()
	defer s.hashMu.Unlock()
	return s.hashPending[rev]
}

func (s *Store) rememberHashLocked(h KVHash) {
	s.hashes = append(s.hashes, h)
	if len(s.hashes) > maxRememberedHashes {
		s.hashes = s.hashes[len(s.hashes)-maxRememberedHashes:]
	}
}

func (s *Store) rememberedHash(rev int64) (KVHash, bool) {
	s.hashMu.Lock()
	defer s.hashMu.Unlock()
	for _, h := range s.hashes {
		if h.HashRev == rev {
			return h, true
		}
	}
	return KVHash{}, false
}

// hashIgnored lists meta keys that differ between members holding the same
// data: the Raft position and physical compaction progress.
var hashIgnored = [][]byte{metaConsistentIndex, metaCompactDone}

// Hash returns a CRC-32C of everything the engine holds except the
// consistent index and compaction progress, and the revision it was taken
// at. Unlike HashKV it also covers history not yet physically compacted, as
// etcd's Maintenance.Hash does.
func (s *Store) Hash() (uint32, int64, error) {
	v, err := s.newView()
	if err != nil {
		return 0, 0, err
	}
	defer v.snap.Close()
	h := crc32.New(crcTable)
	it := v.snap.NewIterator(backend.IterOptions{})
	defer it.Close()
next:
	for ok := it.First(); ok; ok = it.Next() {
		for _, ig := range hashIgnored {
			if bytes.Equal(it.Key(), ig) {
				continue next
			}
		}
		h.Write(it.Key())
		h.Write(it.Value())
	}
	return h.Sum32(), v.rev, it.Error()
}

// CompactionHashes returns the hashes taken at the last compactions (at
// most 10, as etcd keeps), newest revision first: what etcd's compaction
// hash check compares across members.
func (s *Store) CompactionHashes() []KVHash {
	s.hashMu.Lock()
	defer s.hashMu.Unlock()
	out := slices.Clone(s.hashes)
	slices.SortFunc(out, func(a, b KVHash) int { return cmp.Compare(b.HashRev, a.HashRev) })
	return out
}
