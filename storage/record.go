package storage

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// record is one version of a key as stored under its version key:
//
//	flags(1) uvarint(create_revision) uvarint(version) varint(lease) value
//
// A tombstone has flagTombstone set and nothing else.
type record struct {
	tombstone bool
	create    int64
	version   int64
	lease     int64
	value     []byte
}

const flagTombstone byte = 1

func (r *record) encode() []byte {
	if r.tombstone {
		return []byte{flagTombstone}
	}
	return r.appendTo(make([]byte, 0, r.encodedLen()))
}

// encodedLen bounds the length of r's encoding.
func (r *record) encodedLen() int {
	if r.tombstone {
		return 1
	}
	return 1 + 3*binary.MaxVarintLen64 + len(r.value)
}

// appendTo appends r's encoding to b.
func (r *record) appendTo(b []byte) []byte {
	if r.tombstone {
		return append(b, flagTombstone)
	}
	b = append(b, 0)
	b = binary.AppendUvarint(b, uint64(r.create))
	b = binary.AppendUvarint(b, uint64(r.version))
	b = binary.AppendVarint(b, r.lease)
	return append(b, r.value...)
}

// decodeRecord parses v. With withValue false the value is not copied; with
// it true the value is copied out of v, which the caller may reuse.
func decodeRecord(v []byte, withValue bool) (record, error) {
	r, p, err := parseRecord(v)
	if err == nil && withValue && !r.tombstone {
		r.value = append([]byte{}, v[p:]...)
	}
	return r, err
}

// decodeRecordShared parses v, whose bytes the caller never changes: the
// record's value is v's own tail, not a copy.
func decodeRecordShared(v []byte) (record, error) {
	r, p, err := parseRecord(v)
	if err == nil && !r.tombstone {
		r.value = v[p:len(v):len(v)]
	}
	return r, err
}

// parseRecord parses v but its value, which starts at p.
func parseRecord(v []byte) (r record, p int, err error) {
	if len(v) == 0 {
		return r, 0, fmt.Errorf("%w: empty record", ErrCorrupt)
	}
	if v[0]&flagTombstone != 0 {
		r.tombstone = true
		return r, len(v), nil
	}
	p = 1
	c, n := binary.Uvarint(v[p:])
	if n <= 0 {
		return r, 0, fmt.Errorf("%w: bad record", ErrCorrupt)
	}
	p += n
	ver, n := binary.Uvarint(v[p:])
	if n <= 0 {
		return r, 0, fmt.Errorf("%w: bad record", ErrCorrupt)
	}
	p += n
	l, n := binary.Varint(v[p:])
	if n <= 0 {
		return r, 0, fmt.Errorf("%w: bad record", ErrCorrupt)
	}
	p += n
	r.create, r.version, r.lease = int64(c), int64(ver), l
	return r, p, nil
}

// kv builds the wire KeyValue for this record of key at mod. The key slice is
// used as is.
func (r *record) kv(key []byte, mod int64) *mvccpb.KeyValue {
	kv := &mvccpb.KeyValue{}
	r.setKV(kv, key, mod)
	return kv
}

// setKV fills the fields of a new KeyValue kv as kv builds them.
func (r *record) setKV(kv *mvccpb.KeyValue, key []byte, mod int64) {
	kv.Key, kv.CreateRevision, kv.ModRevision = key, r.create, mod
	kv.Version, kv.Value, kv.Lease = r.version, r.value, r.lease
}

// latestValue encodes the value of a 'k' entry: the version's revision,
// then its record.
func latestValue(r Revision, rec []byte) []byte {
	b := make([]byte, 0, revLen+len(rec))
	return append(appendRev(b, r), rec...)
}

// splitLatest splits a 'k' entry's value into revision and record bytes.
func splitLatest(v []byte) (Revision, []byte, error) {
	if len(v) < revLen+1 {
		return Revision{}, nil, fmt.Errorf("%w: bad latest entry", ErrCorrupt)
	}
	return parseRev(v), v[revLen:], nil
}

// historyValue is the value of a history entry: flags, then the user key.
func historyValue(key []byte, tombstone bool) []byte {
	return appendHistoryValue(make([]byte, 0, 1+len(key)), key, tombstone)
}

// appendHistoryValue appends historyValue(key, tombstone) to b.
func appendHistoryValue(b, key []byte, tombstone bool) []byte {
	if tombstone {
		b = append(b, flagTombstone)
	} else {
		b = append(b, 0)
	}
	return append(b, key...)
}

func parseHistoryValue(v []byte) (key []byte, tombstone bool, err error) {
	if len(v) < 1 {
		return nil, false, fmt.Errorf("%w: bad history entry", ErrCorrupt)
	}
	return append([]byte{}, v[1:]...), v[0]&flagTombstone != 0, nil
}
