package storage

import (
	"bytes"

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
	p := leasePrefix(lease)
	it := v.snap.NewIterator(backend.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	defer it.Close()
	var out [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, bytes.Clone(it.Key()[len(p):]))
	}
	return out, it.Error()
}
