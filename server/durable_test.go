package server

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/backend"
	"github.com/metastore/metastore/storage/memory"
)

// syncCounter counts the engine syncs (memtable flushes, for RocksDB
// without a WAL) the store asks for.
type syncCounter struct {
	backend.Backend
	n atomic.Int64
}

func (c *syncCounter) Sync() error {
	c.n.Add(1)
	return c.Backend.Sync()
}

// durableSM returns a state machine over a fresh store whose engine syncs
// are counted, and a function applying n more entries (index and
// consistent index advance together).
func durableSM(t *testing.T, snapshotCount uint64) (*stateMachine, *syncCounter, func(n int)) {
	eng := &syncCounter{Backend: memory.New()}
	st, err := storage.Open(eng, storage.Config{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	s := &Server{cfg: Config{SnapshotCount: snapshotCount}}
	s.store.Store(st)
	sm := &stateMachine{s: s}
	var index uint64
	apply := func(n int) {
		for range n {
			index++
			tw, err := st.Write()
			require.NoError(t, err)
			_, err = tw.Put([]byte("k"), []byte("v"), 0)
			require.NoError(t, err)
			tw.SetConsistentIndex(storage.ConsistentIndex{Index: index, Term: 1})
			_, err = tw.End()
			require.NoError(t, err)
		}
	}
	return sm, eng, apply
}

// TestDurableIndexFlushesEveryFiveSnapshotCounts checks that at etcd's
// default snapshot count the store is flushed only every five snapshot
// counts (or 64 MiB of entries), the durable index staying at the last
// flush in between — it never reports an index not flushed.
func TestDurableIndexFlushesEveryFiveSnapshotCounts(t *testing.T) {
	sm, eng, apply := durableSM(t, 10_000)
	apply(10)
	require.EqualValues(t, 10, sm.DurableIndex(), "the first call flushes")
	require.EqualValues(t, 1, eng.n.Load())

	apply(10_000)
	require.EqualValues(t, 10, sm.DurableIndex(), "10,000 entries later: no flush yet")
	require.EqualValues(t, 1, eng.n.Load())

	apply(40_000)
	require.EqualValues(t, 50_010, sm.DurableIndex(), "50,000 entries after the last flush")
	require.EqualValues(t, 2, eng.n.Load())

	apply(1)
	sm.unflushed.Store(durableFlushBytes)
	require.EqualValues(t, 50_011, sm.DurableIndex(), "64 MiB of entries since the last flush")
	require.EqualValues(t, 3, eng.n.Load())
	require.Zero(t, sm.unflushed.Load())
}

// TestDurableIndexFlushesEverySnapshotBelowTheDefault checks that a
// snapshot count below etcd's default (tests, followers made to catch up
// by snapshot) still gets a flush at every snapshot.
func TestDurableIndexFlushesEverySnapshotBelowTheDefault(t *testing.T) {
	sm, eng, apply := durableSM(t, 100)
	apply(100)
	require.EqualValues(t, 100, sm.DurableIndex())
	apply(100)
	require.EqualValues(t, 200, sm.DurableIndex())
	require.EqualValues(t, 2, eng.n.Load())
	apply(99)
	require.EqualValues(t, 200, sm.DurableIndex(), "fewer entries than a snapshot count")
	require.EqualValues(t, 2, eng.n.Load())
}

// TestDurableIndexFlushesANewStore checks that a store replaced by a
// snapshot install is flushed at the next call, whatever was flushed of
// the old one.
func TestDurableIndexFlushesANewStore(t *testing.T) {
	sm, _, apply := durableSM(t, 10_000)
	apply(5)
	require.EqualValues(t, 5, sm.DurableIndex())
	eng2 := &syncCounter{Backend: memory.New()}
	st2, err := storage.Open(eng2, storage.Config{NoSync: true})
	require.NoError(t, err)
	defer st2.Close()
	tw, err := st2.Write()
	require.NoError(t, err)
	tw.SetConsistentIndex(storage.ConsistentIndex{Index: 7, Term: 1})
	_, err = tw.End()
	require.NoError(t, err)
	sm.s.store.Store(st2)
	require.EqualValues(t, 7, sm.DurableIndex())
	require.EqualValues(t, 1, eng2.n.Load())
}
