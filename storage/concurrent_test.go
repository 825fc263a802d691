package storage_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/storage"
)

// TestConcurrentCompactionKeepsVisibleHistory runs a writer, a compactor and
// readers at once. Every read at a revision that is not compacted must see
// exactly what the writer's log says was there.
func TestConcurrentCompactionKeepsVisibleHistory(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := newStore(t, e)
		const keys = 8
		writes := 3000
		if testing.Short() {
			writes = 1500
		}
		// log[rev] is the (key, value) written at rev; "" value is a delete.
		var mu sync.RWMutex
		type change struct {
			key   int
			value string
		}
		log := map[int64]change{}
		logged := int64(1) // highest revision whose change is in log; guarded by mu
		var wg sync.WaitGroup
		stop := make(chan struct{})
		tick := make(chan struct{}, 1) // the writer paces the compactor
		wg.Go(func() {                 // writer
			defer close(stop)
			rng := rand.New(rand.NewPCG(1, 1))
			for i := range writes {
				if i%25 == 0 {
					select {
					case tick <- struct{}{}:
					default:
					}
				}
				k := rng.IntN(keys)
				key := []byte(fmt.Sprintf("key%d", k))
				if rng.IntN(5) == 0 {
					n, rev, err := s.DeleteRange(key, nil)
					require.NoError(t, err)
					if n == 1 {
						mu.Lock()
						log[rev], logged = change{k, ""}, rev
						mu.Unlock()
					}
					continue
				}
				v := fmt.Sprint("v", i)
				rev, err := s.Put(key, []byte(v), 0)
				require.NoError(t, err)
				mu.Lock()
				log[rev], logged = change{k, v}, rev
				mu.Unlock()
			}
		})
		wg.Go(func() { // compactor
			rng := rand.New(rand.NewPCG(2, 2))
			for {
				select {
				case <-stop:
					return
				case <-tick:
				}
				target := s.Rev() - int64(rng.IntN(50))
				if target > s.CompactRev() {
					done, err := s.Compact(target)
					if err == nil && rng.IntN(2) == 0 {
						<-done
					}
				}
			}
		})
		for r := range 2 { // readers
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(3, uint64(r)))
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.RLock()
					cur := logged
					mu.RUnlock()
					low := s.CompactRev()
					low = max(low, 1)
					if cur <= low {
						continue
					}
					rev := low + rng.Int64N(cur-low+1)
					k := rng.IntN(keys)
					res, err := s.Range([]byte(fmt.Sprintf("key%d", k)), nil, storage.RangeOptions{Rev: rev})
					if errors.Is(err, storage.ErrCompacted) {
						continue
					}
					require.NoError(t, err)
					want := ""
					mu.RLock()
					for r := rev; r >= 2; r-- {
						if c, ok := log[r]; ok && c.key == k {
							want = c.value
							break
						}
					}
					mu.RUnlock()
					got := ""
					if len(res.KVs) == 1 {
						got = string(res.KVs[0].Value)
					}
					require.Equal(t, want, got, "key%d at rev %d (compacted at %d)", k, rev, s.CompactRev())
				}
			})
		}
		wg.Wait()
	})
}
