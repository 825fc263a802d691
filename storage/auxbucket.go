package storage

import (
	"bytes"

	"github.com/metastore/metastore/storage/backend"
)

// Auxiliary buckets hold the replicated state of services that live beside
// the key space — leases, members, alarms, auth — so that it is written in
// the same atomic batch as the key-space changes and the consistent index
// of the Raft entry that caused it, travels in snapshots, and is not part of
// the key space (ranges, watches, HashKV never see it).
//
// Engine layout: 'a' bucket 0x00 key -> value. Bucket names must not
// contain 0x00.

func auxKey(bucket string, key []byte) []byte {
	b := make([]byte, 0, 2+len(bucket)+len(key))
	b = append(b, prefixAux)
	b = append(b, bucket...)
	b = append(b, 0)
	return append(b, key...)
}

// PutAux sets key to value in the auxiliary bucket, in this transaction's
// batch. It does not change the revision.
func (tw *WriteTxn) PutAux(bucket string, key, value []byte) {
	tw.batch.Set(auxKey(bucket, key), value)
	tw.aux = true
}

// DeleteAux removes key from the auxiliary bucket, in this transaction's
// batch. It does not change the revision.
func (tw *WriteTxn) DeleteAux(bucket string, key []byte) {
	tw.batch.Delete(auxKey(bucket, key))
	tw.aux = true
}

// ForEachAux calls fn for every entry of the auxiliary bucket in key order,
// on a consistent snapshot, until fn returns an error. fn must not keep key
// or value after it returns.
func (s *Store) ForEachAux(bucket string, fn func(key, value []byte) error) error {
	v, err := s.newView()
	if err != nil {
		return err
	}
	defer v.snap.Close()
	return forEachAux(v.snap, bucket, fn)
}

func forEachAux(r backend.Reader, bucket string, fn func(key, value []byte) error) error {
	p := auxKey(bucket, nil)
	it := r.NewIterator(backend.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if !bytes.HasPrefix(it.Key(), p) {
			break
		}
		if err := fn(it.Key()[len(p):], it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}
