package storage

import (
	"bytes"
	"math"
	"sort"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage/backend"
)

// RangeOptions selects what a Range returns.
type RangeOptions struct {
	// Rev is the revision to read at; <= 0 means the current revision.
	Rev int64
	// Limit caps the number of KVs returned; <= 0 means no limit.
	Limit int64
	// CountOnly returns only Count: no KVs are read or returned.
	CountOnly bool
	// KeysOnly returns KVs without values; values are never copied.
	KeysOnly bool
	// MinModRev, MaxModRev, MinCreateRev and MaxCreateRev filter the KVs
	// returned (0 disables a bound). As in etcd they do not change Count.
	MinModRev    int64
	MaxModRev    int64
	MinCreateRev int64
	MaxCreateRev int64
}

func (o RangeOptions) filtered() bool {
	return o.MinModRev != 0 || o.MaxModRev != 0 || o.MinCreateRev != 0 || o.MaxCreateRev != 0
}

func (o RangeOptions) keep(create, mod int64) bool {
	return (o.MinModRev == 0 || mod >= o.MinModRev) &&
		(o.MaxModRev == 0 || mod <= o.MaxModRev) &&
		(o.MinCreateRev == 0 || create >= o.MinCreateRev) &&
		(o.MaxCreateRev == 0 || create <= o.MaxCreateRev)
}

// RangeResult is the answer to a Range.
type RangeResult struct {
	// KVs are the matching keys in ascending key order. The caller owns them.
	KVs []*mvccpb.KeyValue
	// Rev is the store revision the read was served at (the current revision
	// of the transaction, not RangeOptions.Rev), as etcd reports it.
	Rev int64
	// Count is the number of keys in the range at the read revision,
	// regardless of Limit and the revision filters.
	Count int64
	// More reports that KVs were cut by Limit.
	More bool
}

// collector applies count, filters and limit to the live keys of a range,
// visited in key order.
type collector struct {
	opts RangeOptions
	res  RangeResult
}

// wants reports whether the next key that passes the filters would be
// returned (or counts towards More).
func (c *collector) full() bool {
	return c.opts.Limit > 0 && int64(len(c.res.KVs)) > c.opts.Limit
}

// add visits one live key; build is called only if its KV is needed.
func (c *collector) add(create, mod int64, build func(withValue bool) *mvccpb.KeyValue) {
	c.res.Count++
	if c.opts.CountOnly || c.full() || !c.opts.keep(create, mod) {
		return
	}
	c.res.KVs = append(c.res.KVs, build(!c.opts.KeysOnly))
}

func (c *collector) result(rev int64) *RangeResult {
	if c.opts.Limit > 0 && int64(len(c.res.KVs)) > c.opts.Limit {
		c.res.KVs = c.res.KVs[:c.opts.Limit]
		c.res.More = true
	}
	c.res.Rev = rev
	return &c.res
}

// rangeBounds returns the engine bounds of the user range [key, end).
func rangeBounds(key, end []byte) (lo, hi []byte) {
	switch {
	case len(end) == 0:
		return keyPrefix(key), keyPrefixEnd(key)
	case len(end) == 1 && end[0] == 0:
		return keyRangeStart(key), keySpaceEnd
	default:
		return keyRangeStart(key), keyRangeStart(end)
	}
}

// emptyRange reports a range that can hold no key (end <= key).
func emptyRange(key, end []byte) bool {
	return len(end) > 0 && !(len(end) == 1 && end[0] == 0) && bytes.Compare(end, key) <= 0
}

// maxSkipSteps is how many older versions walkLatest steps over before it
// seeks past a key instead.
const maxSkipSteps = 8

// walkLatest calls fn, in key order, for every key in [key, end) whose
// latest version at or below rev is not a tombstone. prefix and raw are
// only valid during the call. fn returns false to stop.
func walkLatest(r backend.Reader, key, end []byte, rev int64,
	fn func(prefix []byte, mod Revision, raw []byte) (bool, error)) error {
	if emptyRange(key, end) {
		return nil
	}
	lo, hi := rangeBounds(key, end)
	it := r.NewIterator(backend.IterOptions{LowerBound: lo, UpperBound: hi})
	defer it.Close()
	bound := Revision{Main: rev, Sub: math.MaxInt64} // sorts before every change of rev
	ok := it.First()
	for ok {
		prefix, r, err := splitVersionKey(it.Key())
		if err != nil {
			return err
		}
		if r.Main > rev {
			// Newer than the read revision: jump to the newest version <= rev.
			// The iterator owns prefix's memory, so keep a copy across the seek.
			prefix = bytes.Clone(prefix)
			if ok = it.SeekGE(appendInvRev(bytes.Clone(prefix), bound)); !ok {
				break
			}
			var p2 []byte
			if p2, r, err = splitVersionKey(it.Key()); err != nil {
				return err
			}
			if !bytes.Equal(p2, prefix) {
				continue // no version of this key at or below rev
			}
		}
		raw := it.Value()
		if len(raw) == 0 {
			return ErrCorrupt
		}
		if raw[0]&flagTombstone == 0 {
			cont, err := fn(prefix, r, raw)
			if err != nil || !cont {
				return err
			}
		}
		// Skip the older versions of this key. Keys usually have few
		// versions, and a step is much cheaper than a seek, so step a few
		// times before seeking past them.
		next := append(bytes.Clone(prefix[:len(prefix)-1]), 2)
		ok = it.Next()
		for steps := 0; ok && bytes.Compare(it.Key(), next) < 0; steps++ {
			if steps == maxSkipSteps {
				ok = it.SeekGE(next)
				break
			}
			ok = it.Next()
		}
	}
	return it.Error()
}

// rangeAt serves a range from r at rev.
func rangeAt(r backend.Reader, key, end []byte, rev int64, opts RangeOptions) (*RangeResult, error) {
	c := collector{opts: opts}
	err := walkLatest(r, key, end, rev, func(prefix []byte, mod Revision, raw []byte) (bool, error) {
		rec, err := decodeRecord(raw, false)
		if err != nil {
			return false, err
		}
		var derr error
		c.add(rec.create, mod.Main, func(withValue bool) *mvccpb.KeyValue {
			uk, err := userKey(prefix)
			if err != nil {
				derr = err
			}
			if withValue {
				rec.value = append([]byte{}, raw[len(raw)-valueLen(raw):]...)
			}
			return rec.kv(uk, mod.Main)
		})
		return true, derr
	})
	if err != nil {
		return nil, err
	}
	return c.result(rev), nil
}

// valueLen returns the length of the value at the end of a live record.
func valueLen(raw []byte) int {
	p := 1
	for range 3 { // create, version, lease varints
		for raw[p]&0x80 != 0 {
			p++
		}
		p++
	}
	return len(raw) - p
}

// latest returns key's latest version at or below rev in r, if any (a
// tombstone is returned as such).
func latest(r backend.Reader, key []byte, rev int64, withValue bool) (rec record, mod Revision, ok bool, err error) {
	lo, hi := keyPrefix(key), keyPrefixEnd(key)
	it := r.NewIterator(backend.IterOptions{LowerBound: lo, UpperBound: hi})
	defer it.Close()
	if !it.SeekGE(appendInvRev(lo, Revision{Main: rev, Sub: math.MaxInt64})) {
		return rec, mod, false, it.Error()
	}
	if _, mod, err = splitVersionKey(it.Key()); err != nil {
		return rec, mod, false, err
	}
	rec, err = decodeRecord(it.Value(), withValue)
	return rec, mod, err == nil, err
}

// sortKVs sorts kvs by key.
func sortKVs(kvs []*mvccpb.KeyValue) {
	sort.Slice(kvs, func(i, j int) bool { return bytes.Compare(kvs[i].Key, kvs[j].Key) < 0 })
}
