package e2e

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"context"

	v3 "go.etcd.io/etcd/client/v3"
	etcdconcurrency "go.etcd.io/etcd/client/v3/concurrency"

	"github.com/metastore/metastore/clientsdk/concurrency"
)

// locker is what both SDKs' mutexes offer.
type locker interface {
	Lock(context.Context) error
	Unlock(context.Context) error
}

// sdks builds a mutex of each SDK over a fresh session.
var sdks = []struct {
	name string
	new  func(b *testing.B, c *v3.Client, pfx string) locker
}{
	{"clientsdk", func(b *testing.B, c *v3.Client, pfx string) locker {
		s, err := concurrency.NewSession(c)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return concurrency.NewMutex(s, pfx)
	}},
	{"etcd-concurrency", func(b *testing.B, c *v3.Client, pfx string) locker {
		s, err := etcdconcurrency.NewSession(c)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return etcdconcurrency.NewMutex(s, pfx)
	}},
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkLockUnlock measures an uncontended Lock+Unlock round.
func BenchmarkLockUnlock(b *testing.B) {
	for _, sdk := range sdks {
		b.Run("sdk="+sdk.name, func(b *testing.B) {
			m := sdk.new(b, newClient(b), prefix(b))
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if err := m.Lock(b.Context()); err != nil {
					b.Fatal(err)
				}
				if err := m.Unlock(b.Context()); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatencies(b, lat)
		})
	}
}

// BenchmarkLockHandover measures, under contention, the time from one
// owner's Unlock to the next owner's Lock returning.
func BenchmarkLockHandover(b *testing.B) {
	for _, sdk := range sdks {
		for _, waiters := range []int{2, 8} {
			b.Run(fmt.Sprintf("sdk=%s/contenders=%d", sdk.name, waiters), func(b *testing.B) {
				benchHandover(b, sdk.new, waiters)
			})
		}
	}
}

func benchHandover(b *testing.B, newMutex func(*testing.B, *v3.Client, string) locker, waiters int) {
	c := newClient(b)
	pfx := prefix(b)
	var mu sync.Mutex
	var released time.Time // when the last owner started to release
	lat := make([]time.Duration, 0, b.N)
	per := (b.N + waiters - 1) / waiters
	var wg sync.WaitGroup
	b.ResetTimer()
	for range waiters {
		m := newMutex(b, c, pfx)
		wg.Go(func() {
			for range per {
				if err := m.Lock(b.Context()); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				if !released.IsZero() {
					lat = append(lat, time.Since(released))
				}
				released = time.Now()
				mu.Unlock()
				if err := m.Unlock(b.Context()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	reportLatencies(b, lat)
}
