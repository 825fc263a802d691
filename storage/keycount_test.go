package storage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage"
)

// TestKeyCount: the live keys, counted from disk on first use and kept
// up to date by every write after, including writes made while the count
// runs; deleted keys and updates do not count, a key put again does.
func TestKeyCount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s, err := storage.Open(e.open(t, dir), testConfig(t))
		require.NoError(t, err)
		for i := range 3000 {
			put(t, s, fmt.Sprint("k", i%1000), "v") // 1000 keys, 3 versions each
		}
		_, _, err = s.DeleteRange([]byte("k1"), []byte("k2")) // k1, k10..k19, k100..k199: 111 keys
		require.NoError(t, err)
		s.KeyCount() // starts the count
		for i := range 50 {
			put(t, s, fmt.Sprint("new", i), "v") // while it counts
		}
		put(t, s, "k1", "back")
		waitCount := func(want int64) {
			t.Helper()
			require.Eventually(t, func() bool {
				n, ok := s.KeyCount()
				return ok && n == want
			}, 5*time.Second, time.Millisecond, "want %d keys", want)
		}
		waitCount(1000 - 111 + 50 + 1)
		_, _, err = s.DeleteRange([]byte{0}, []byte{0})
		require.NoError(t, err)
		n, ok := s.KeyCount()
		require.True(t, ok)
		require.Zero(t, n)
		put(t, s, "a", "v")
		require.NoError(t, s.Close())
		if e.name == "memory" {
			return // nothing survives a close
		}
		s, err = storage.Open(e.open(t, dir), testConfig(t))
		require.NoError(t, err)
		defer s.Close()
		waitCount(1)
	})
}
