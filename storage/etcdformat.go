package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage/backend"
)

// etcd v3 keeps every version of every key in the "key" bucket of its
// bbolt file, keyed by revision: 8 bytes big-endian main, '_', 8 bytes
// big-endian sub, and a trailing 't' for a deletion; the value is the
// marshaled mvccpb.KeyValue (a deletion's holds only the key). Snapshots in
// etcd's format and HashKV (a CRC over those pairs) are built from the same
// iteration, so a MetaStore history and an etcd history that are the same
// have the same hash.

// EtcdKeyBucket is the name of etcd's key bucket; HashKV's CRC starts with
// it, as etcd's does.
const EtcdKeyBucket = "key"

// EtcdRevKey returns etcd's key-bucket key of the change at r.
func EtcdRevKey(r Revision, tombstone bool) []byte {
	b := make([]byte, 0, 18)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Main))
	b = append(b, '_')
	b = binary.BigEndian.AppendUint64(b, uint64(r.Sub))
	if tombstone {
		b = append(b, 't')
	}
	return b
}

// ParseEtcdRevKey parses a key-bucket key of etcd's.
func ParseEtcdRevKey(k []byte) (r Revision, tombstone bool, err error) {
	if (len(k) != 17 && len(k) != 18) || k[8] != '_' || (len(k) == 18 && k[17] != 't') {
		return Revision{}, false, fmt.Errorf("%w: bad etcd revision key %x", ErrCorrupt, k)
	}
	r.Main = int64(binary.BigEndian.Uint64(k))
	r.Sub = int64(binary.BigEndian.Uint64(k[9:]))
	return r, len(k) == 18, nil
}

// etcdChange is one change of the history, in etcd's key-bucket form.
type etcdChange struct {
	rev       Revision
	key       []byte // the user key
	tombstone bool
	k, v      []byte // etcd's key-bucket pair; valid until the callback returns
}

// forEachEtcdKV calls fn, in revision order, with every change up to rev
// that v's history holds as etcd's key bucket would after compaction at
// v's compaction revision: after it everything; at or before it the
// newest version of each key as of the compaction revision, if it is not a
// deletion or is a deletion at exactly that revision (etcd keeps those
// since 3.5.16). stop, when closed, ends the walk with ErrClosed.
func forEachEtcdKV(v view, rev int64, stop <-chan struct{}, fn func(c *etcdChange) error) error {
	it := v.snap.NewIterator(backend.IterOptions{
		LowerBound: []byte{prefixHistory},
		UpperBound: historyKey(Revision{Main: rev + 1}),
	})
	defer it.Close()
	n := 0
	var c etcdChange
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%1024 == 0 && stop != nil {
			select {
			case <-stop:
				return ErrClosed
			default:
			}
		}
		r, err := parseHistoryKey(it.Key())
		if err != nil {
			return err
		}
		key, tomb, err := parseHistoryValue(it.Value())
		if err != nil {
			return err
		}
		if r.Main <= v.compactRev {
			_, l, ok, err := latest(v.snap, key, v.compactRev, false)
			if err != nil {
				return err
			}
			if !ok || l != r || (tomb && r.Main != v.compactRev) {
				continue
			}
		}
		kv := &mvccpb.KeyValue{Key: key}
		if !tomb {
			raw, err := recordAt(v.snap, key, r)
			if err != nil {
				return err
			}
			rec, err := decodeRecord(raw, true)
			if err != nil {
				return err
			}
			if rec.tombstone {
				return fmt.Errorf("%w: history says put, record says delete at %d/%d", ErrCorrupt, r.Main, r.Sub)
			}
			kv = rec.kv(key, r.Main)
		}
		// etcd writes proto.Marshal's bytes.
		c.v, err = proto.MarshalOptions{}.MarshalAppend(c.v[:0], kv)
		if err != nil {
			return err
		}
		c.rev, c.key, c.tombstone, c.k = r, key, tomb, EtcdRevKey(r, tomb)
		if err := fn(&c); err != nil {
			return err
		}
	}
	return it.Error()
}

// ForEachEtcdKV calls fn with etcd's key-bucket pair of every change the
// snapshot's history keeps (everything after the compaction revision, what
// compaction keeps at or before it, as etcd does), in revision order, until fn
// returns an error. fn must not keep k or v after it returns. A bbolt file
// written from these pairs is what etcd would hold for the same history.
func (sn *Snapshot) ForEachEtcdKV(fn func(k, v []byte) error) error {
	return forEachEtcdKV(sn.v, sn.v.rev, nil, func(c *etcdChange) error { return fn(c.k, c.v) })
}

// CompactRev returns the compaction revision in force when the snapshot was
// taken, -1 if none.
func (sn *Snapshot) CompactRev() int64 { return sn.v.compactRev }

// ConsistentIndex returns the consistent index the snapshot holds.
func (sn *Snapshot) ConsistentIndex() (ConsistentIndex, error) {
	v, err := sn.v.snap.Get(metaConsistentIndex)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return ConsistentIndex{}, nil
	case err != nil:
		return ConsistentIndex{}, err
	case len(v) != 16:
		return ConsistentIndex{}, fmt.Errorf("%w: consistent index of %d bytes", ErrCorrupt, len(v))
	}
	return ConsistentIndex{Index: binary.BigEndian.Uint64(v), Term: binary.BigEndian.Uint64(v[8:])}, nil
}

// ForEachAux calls fn for every entry of the auxiliary bucket as the
// snapshot holds it, in key order, until fn returns an error. fn must not
// keep key or value after it returns.
func (sn *Snapshot) ForEachAux(bucket string, fn func(key, value []byte) error) error {
	return forEachAux(sn.v.snap, bucket, fn)
}
