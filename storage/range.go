package storage

import (
	"bytes"
	"errors"
	"fmt"
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
	// NoTotalCount stops reading once Limit KVs (and the one more that
	// sets More) are found, so Count only covers the keys read — etcd's
	// WithTotalCount=false, used by RangeStream. Without a Limit it has
	// no effect.
	NoTotalCount bool
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

// full reports whether Limit KVs plus the one that sets More are collected.
func (c *collector) full() bool {
	return c.opts.Limit > 0 && int64(len(c.res.KVs)) > c.opts.Limit
}

// add visits one live key; build is called only if its KV is needed. It
// reports whether the walk should go on.
func (c *collector) add(create, mod int64, build func(withValue bool) *mvccpb.KeyValue) bool {
	c.res.Count++
	if c.opts.CountOnly || c.full() || !c.opts.keep(create, mod) {
		return true
	}
	c.res.KVs = append(c.res.KVs, build(!c.opts.KeysOnly))
	return !(c.opts.NoTotalCount && c.full())
}

func (c *collector) result(rev int64) *RangeResult {
	if c.opts.Limit > 0 && int64(len(c.res.KVs)) > c.opts.Limit {
		c.res.KVs = c.res.KVs[:c.opts.Limit]
		c.res.More = true
	}
	c.res.Rev = rev
	return &c.res
}

// emptyRange reports a range that can hold no key (end <= key).
func emptyRange(key, end []byte) bool {
	return len(end) > 0 && !(len(end) == 1 && end[0] == 0) && bytes.Compare(end, key) <= 0
}

// walkLatest calls fn, in key order, for every key in [key, end) that is
// live at rev, with its revision and record bytes. ukey and raw are only
// valid during the call; fn returns false to stop.
//
// At the current revision this reads one 'k' entry per key. Keys changed
// after rev are looked up in the 'v' space with one seek each.
func walkLatest(r backend.Reader, key, end []byte, rev int64,
	fn func(ukey []byte, mod Revision, raw []byte) (bool, error)) error {
	if emptyRange(key, end) {
		return nil
	}
	if len(end) == 0 {
		mod, raw, ok, err := versionAt(r, key, rev, nil)
		if err != nil || !ok || raw[0]&flagTombstone != 0 {
			return err
		}
		_, err = fn(key, mod, raw)
		return err
	}
	hi := latestSpaceEnd
	if !(len(end) == 1 && end[0] == 0) {
		hi = latestKey(end)
	}
	it := r.NewIterator(backend.IterOptions{LowerBound: latestKey(key), UpperBound: hi})
	defer it.Close()
	var older backend.Iterator // over the 'v' space, opened on demand
	defer func() {
		if older != nil {
			older.Close()
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		ukey := it.Key()[1:]
		mod, raw, err := splitLatest(it.Value())
		if err != nil {
			return err
		}
		if mod.Main > rev {
			if older == nil {
				older = r.NewIterator(backend.IterOptions{LowerBound: []byte{prefixVersion}, UpperBound: []byte{prefixVersion + 1}})
			}
			var found bool
			if mod, raw, found, err = olderVersion(older, ukey, rev); err != nil {
				return err
			} else if !found {
				continue
			}
		}
		if raw[0]&flagTombstone != 0 {
			continue
		}
		if cont, err := fn(ukey, mod, raw); err != nil || !cont {
			return err
		}
	}
	return it.Error()
}

// olderVersion positions it (over the 'v' space) at key's newest older
// version at or below rev. raw is only valid until it moves.
func olderVersion(it backend.Iterator, key []byte, rev int64) (mod Revision, raw []byte, found bool, err error) {
	p := keyPrefix(key)
	if !it.SeekGE(appendInvRev(p, Revision{Main: rev, Sub: maxSub})) {
		return mod, nil, false, it.Error()
	}
	pref, mod, err := splitVersionKey(it.Key())
	if err != nil || !bytes.Equal(pref, p) {
		return mod, nil, false, err
	}
	if raw = it.Value(); len(raw) == 0 {
		return mod, nil, false, fmt.Errorf("%w: empty record", ErrCorrupt)
	}
	return mod, raw, true, nil
}

// versionAt returns key's newest version at or below rev, tombstones
// included. The caller owns raw. buf, if not nil, is scratch space for the
// engine key.
func versionAt(r backend.Reader, key []byte, rev int64, buf []byte) (mod Revision, raw []byte, ok bool, err error) {
	v, err := r.Get(appendLatestKey(buf[:0], key))
	if errors.Is(err, backend.ErrNotFound) {
		return mod, nil, false, nil
	} else if err != nil {
		return mod, nil, false, err
	}
	if mod, raw, err = splitLatest(v); err != nil || mod.Main <= rev {
		return mod, raw, err == nil, err
	}
	it := r.NewIterator(backend.IterOptions{LowerBound: keyPrefix(key), UpperBound: keyPrefixEnd(key)})
	defer it.Close()
	mod, raw, ok, err = olderVersion(it, key, rev)
	return mod, bytes.Clone(raw), ok, err
}

// recordAt returns the record of key's version at exactly rv.
//
// The latest version is looked up first: it is the one asked for most
// (history walks of recent or once-written keys), and a hit there saves a
// lookup in the older versions that misses.
func recordAt(r backend.Reader, key []byte, rv Revision) ([]byte, error) {
	v, err := r.Get(latestKey(key))
	if err == nil {
		if mod, raw, err := splitLatest(v); err == nil && mod == rv {
			return raw, nil
		}
	} else if !errors.Is(err, backend.ErrNotFound) {
		return nil, err
	}
	raw, err := r.Get(versionKey(key, rv))
	if err == nil || !errors.Is(err, backend.ErrNotFound) {
		return raw, err
	}
	return nil, fmt.Errorf("%w: no version of %q at %d/%d", ErrCorrupt, key, rv.Main, rv.Sub)
}

// rangeAt serves a range from r at rev.
func rangeAt(r backend.Reader, key, end []byte, rev int64, opts RangeOptions) (*RangeResult, error) {
	c := collector{opts: opts}
	err := walkLatest(r, key, end, rev, func(ukey []byte, mod Revision, raw []byte) (bool, error) {
		rec, err := decodeRecord(raw, false)
		if err != nil {
			return false, err
		}
		return c.add(rec.create, mod.Main, func(withValue bool) *mvccpb.KeyValue {
			if withValue {
				rec.value = append([]byte{}, raw[len(raw)-valueLen(raw):]...)
			}
			return rec.kv(bytes.Clone(ukey), mod.Main)
		}), nil
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

// latest returns key's newest version at or below rev (a tombstone is
// returned as such).
func latest(r backend.Reader, key []byte, rev int64, withValue bool) (rec record, mod Revision, ok bool, err error) {
	mod, raw, ok, err := versionAt(r, key, rev, nil)
	if err != nil || !ok {
		return rec, mod, false, err
	}
	rec, err = decodeRecord(raw, withValue)
	return rec, mod, err == nil, err
}

// sortKVs sorts kvs by key.
func sortKVs(kvs []*mvccpb.KeyValue) {
	sort.Slice(kvs, func(i, j int) bool { return bytes.Compare(kvs[i].Key, kvs[j].Key) < 0 })
}
