package rocksdb

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/linxGnu/grocksdb"

	"github.com/metastore/metastore/storage/backend"
)

// iterator wraps a RocksDB iterator. Its mutex lets Backend.Close release it
// while another goroutine still holds it; afterwards it reports ErrClosed.
type iterator struct {
	b      *Backend
	mu     sync.Mutex
	it     *grocksdb.Iterator
	ro     *grocksdb.ReadOptions
	lower  []byte // kept alive: RocksDB holds pointers to them
	upper  []byte
	valid  bool
	closed bool
	err    error
	// key and value cache views of the current entry (one cgo call each
	// per position); value is fetched lazily.
	key      []byte
	value    []byte
	hasValue bool
}

// settle records validity and any error after a positioning call.
func (i *iterator) settle() bool {
	i.valid = i.it.Valid()
	i.key, i.value, i.hasValue = nil, nil, false
	if i.valid {
		i.key = i.it.Key().Data()
	} else {
		if err := i.it.Err(); err != nil && i.err == nil {
			i.err = fmt.Errorf("rocksdb: iterator: %w", err)
		}
	}
	return i.valid
}

// Positioning operations, dispatched by do without allocating closures.
const (
	opSeekGE = iota
	opSeekLT
	opFirst
	opLast
	opNext
	opPrev
)

func (i *iterator) do(op int, key []byte) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed || i.err != nil {
		i.valid = false
		return false
	}
	switch op {
	case opSeekGE:
		i.it.Seek(key)
	case opSeekLT:
		i.it.SeekForPrev(key)
		if i.it.Valid() && bytes.Equal(i.it.Key().Data(), key) {
			i.it.Prev()
		}
	case opFirst:
		i.it.SeekToFirst()
	case opLast:
		i.it.SeekToLast()
	case opNext:
		i.it.Next()
	case opPrev:
		i.it.Prev()
	}
	return i.settle()
}

func (i *iterator) SeekGE(key []byte) bool { return i.do(opSeekGE, key) }
func (i *iterator) SeekLT(key []byte) bool { return i.do(opSeekLT, key) }
func (i *iterator) First() bool            { return i.do(opFirst, nil) }
func (i *iterator) Last() bool             { return i.do(opLast, nil) }

func (i *iterator) Next() bool {
	if !i.valid {
		return false
	}
	return i.do(opNext, nil)
}

func (i *iterator) Prev() bool {
	if !i.valid {
		return false
	}
	return i.do(opPrev, nil)
}

func (i *iterator) Valid() bool { return i.valid }

// Key returns a view of RocksDB's memory, valid until the iterator moves.
func (i *iterator) Key() []byte {
	if !i.valid {
		return nil
	}
	return i.key
}

// Value returns a view of RocksDB's memory, valid until the iterator moves.
func (i *iterator) Value() []byte {
	if !i.valid {
		return nil
	}
	if !i.hasValue {
		i.value, i.hasValue = i.it.Value().Data(), true
	}
	return i.value
}

func (i *iterator) Error() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.err
}

// release frees the RocksDB objects; the caller holds b.mu.
func (i *iterator) release() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return
	}
	i.closed, i.valid = true, false
	i.it.Close()
	i.ro.Destroy()
	if i.err == nil {
		i.err = backend.ErrClosed
	}
}

func (i *iterator) Close() error {
	i.mu.Lock()
	if i.closed {
		err := i.err
		i.mu.Unlock()
		if err == backend.ErrClosed {
			return nil
		}
		return err
	}
	i.closed, i.valid = true, false
	i.it.Close()
	i.ro.Destroy()
	err := i.err
	i.mu.Unlock()
	i.b.forget(i)
	return err
}
