package memory

import (
	"bytes"

	"github.com/tidwall/btree"

	"github.com/metastore/metastore/storage/backend"
)

// iterator walks a private shadow copy of the tree, clamped to bounds.
type iterator struct {
	tree   *btree.BTreeG[item]
	it     btree.IterG[item]
	lower  []byte
	upper  []byte
	valid  bool
	err    error
	closed bool
}

func newIterator(tr *btree.BTreeG[item], opts backend.IterOptions) *iterator {
	return &iterator{
		tree:  tr,
		it:    tr.Iter(),
		lower: bytes.Clone(opts.LowerBound),
		upper: bytes.Clone(opts.UpperBound),
	}
}

// check clamps the underlying position to the bounds.
func (i *iterator) check(ok bool) bool {
	if !ok || i.err != nil || i.closed {
		i.valid = false
		return false
	}
	k := i.it.Item().key
	if i.lower != nil && bytes.Compare(k, i.lower) < 0 {
		i.valid = false
	} else if i.upper != nil && bytes.Compare(k, i.upper) >= 0 {
		i.valid = false
	} else {
		i.valid = true
	}
	return i.valid
}

func (i *iterator) usable() bool { return i.err == nil && !i.closed && i.tree != nil }

func (i *iterator) SeekGE(key []byte) bool {
	if !i.usable() {
		return false
	}
	if i.lower != nil && bytes.Compare(key, i.lower) < 0 {
		key = i.lower
	}
	return i.check(i.it.Seek(item{key: key}))
}

func (i *iterator) SeekLT(key []byte) bool {
	if !i.usable() {
		return false
	}
	if i.upper != nil && bytes.Compare(key, i.upper) > 0 {
		key = i.upper
	}
	if !i.it.Seek(item{key: key}) {
		return i.check(i.it.Last())
	}
	return i.check(i.it.Prev())
}

func (i *iterator) First() bool {
	if !i.usable() {
		return false
	}
	if i.lower != nil {
		return i.SeekGE(i.lower)
	}
	return i.check(i.it.First())
}

func (i *iterator) Last() bool {
	if !i.usable() {
		return false
	}
	if i.upper != nil {
		return i.SeekLT(i.upper)
	}
	return i.check(i.it.Last())
}

func (i *iterator) Next() bool {
	if !i.valid {
		return false
	}
	return i.check(i.it.Next())
}

func (i *iterator) Prev() bool {
	if !i.valid {
		return false
	}
	return i.check(i.it.Prev())
}

func (i *iterator) Valid() bool { return i.valid }

func (i *iterator) Key() []byte {
	if !i.valid {
		return nil
	}
	return i.it.Item().key
}

func (i *iterator) Value() []byte {
	if !i.valid {
		return nil
	}
	return i.it.Item().value
}

func (i *iterator) Error() error { return i.err }

func (i *iterator) Close() error {
	if !i.closed {
		i.closed, i.valid = true, false
		if i.tree != nil {
			i.it.Release()
			i.tree = nil
		}
	}
	return i.err
}
