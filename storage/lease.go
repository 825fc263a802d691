package storage

import (
	"bytes"
	"sort"

	"github.com/metastore/metastore/storage/backend"
)

// LeaseKeys returns the keys currently attached to lease, in key order. The
// caller owns the returned slices. The lessor uses it to revoke a lease
// without scanning the key space.
func (s *Store) LeaseKeys(lease int64) ([][]byte, error) {
	v, err := s.newView()
	if err != nil {
		return nil, err
	}
	defer v.snap.Close()
	return leaseKeys(v.snap, lease)
}

func leaseKeys(r backend.Reader, lease int64) ([][]byte, error) {
	p := leasePrefix(lease)
	it := r.NewIterator(backend.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	defer it.Close()
	var out [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, bytes.Clone(it.Key()[len(p):]))
	}
	return out, it.Error()
}

// LeaseKeys returns the keys attached to lease as this transaction sees
// them (its own puts and deletes included), in key order.
func (tw *WriteTxn) LeaseKeys(lease int64) ([][]byte, error) {
	if tw.done {
		return nil, ErrTxnDone
	}
	// Writers are serialized, so the engine holds exactly the state the
	// transaction began from.
	committed, err := leaseKeys(tw.s.be, lease)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	seen := make(map[string]bool, len(committed))
	for _, k := range committed {
		seen[string(k)] = true
		if pk, ok := tw.lookup(k); ok && (pk.rec.tombstone || pk.rec.lease != lease) {
			continue
		}
		out = append(out, k)
	}
	added := false
	for pk := range tw.pending {
		if !pk.rec.tombstone && pk.rec.lease == lease && !seen[string(pk.key)] {
			out = append(out, bytes.Clone(pk.key))
			added = true
		}
	}
	if added {
		sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	}
	return out, nil
}
