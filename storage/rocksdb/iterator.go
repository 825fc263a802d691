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
}

// settle records validity and any error after a positioning call.
func (i *iterator) settle() bool {
	i.valid = i.it.Valid()
	if !i.valid {
		if err := i.it.Err(); err != nil && i.err == nil {
			i.err = fmt.Errorf("rocksdb: iterator: %w", err)
		}
	}
	return i.valid
}

func (i *iterator) do(f func()) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed || i.err != nil {
		i.valid = false
		return false
	}
	f()
	return i.settle()
}

func (i *iterator) SeekGE(key []byte) bool { return i.do(func() { i.it.Seek(key) }) }

func (i *iterator) SeekLT(key []byte) bool {
	return i.do(func() {
		i.it.SeekForPrev(key)
		if i.it.Valid() && bytes.Equal(i.it.Key().Data(), key) {
			i.it.Prev()
		}
	})
}

func (i *iterator) First() bool { return i.do(i.it.SeekToFirst) }
func (i *iterator) Last() bool  { return i.do(i.it.SeekToLast) }

func (i *iterator) Next() bool {
	if !i.valid {
		return false
	}
	return i.do(i.it.Next)
}

func (i *iterator) Prev() bool {
	if !i.valid {
		return false
	}
	return i.do(i.it.Prev)
}

func (i *iterator) Valid() bool { return i.valid }

// Key returns a view of RocksDB's memory, valid until the iterator moves.
func (i *iterator) Key() []byte {
	if !i.valid {
		return nil
	}
	return i.it.Key().Data()
}

// Value returns a view of RocksDB's memory, valid until the iterator moves.
func (i *iterator) Value() []byte {
	if !i.valid {
		return nil
	}
	return i.it.Value().Data()
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
