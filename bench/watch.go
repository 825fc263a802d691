package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/time/rate"

	"github.com/metastore/metastore/bench/report"
)

// WatchConfig shapes the watch workloads (etcd benchmark's watch and
// watch-latency flags).
type WatchConfig struct {
	Streams           int  // watch streams, spread over the connections (default 10)
	WatchersPerStream int  // watchers on each stream (default 100)
	WatchedKeys       int  // distinct keys watched; watcher j watches key j mod WatchedKeys (default 1)
	PutTotal          int  // puts to the watched keys (default 1000)
	PutRate           int  // puts per second, 0: no limit
	KeySize           int  // bytes per key (default 32)
	ValSize           int  // bytes per value (default and minimum 16)
	PrevKV            bool // watchers ask for the previous key-value
	// WaitEach makes each put wait until every watcher of its key got
	// the event before the next put starts (watch-latency); otherwise
	// cfg.Clients put concurrently (watch).
	WaitEach bool
}

func (wc WatchConfig) withDefaults() WatchConfig {
	if wc.Streams <= 0 {
		wc.Streams = 10
	}
	if wc.WatchersPerStream <= 0 {
		wc.WatchersPerStream = 100
	}
	if wc.WatchedKeys <= 0 {
		wc.WatchedKeys = 1
	}
	if wc.PutTotal <= 0 {
		wc.PutTotal = 1000
	}
	if wc.KeySize <= 0 {
		wc.KeySize = 32
	}
	wc.ValSize = max(wc.ValSize, valIndexLen)
	return wc
}

// valIndexLen is the width of the put index at the start of each value.
const valIndexLen = 16

// watchedKey returns the n-th watched key, padded to size.
func watchedKey(n, size int) string {
	k := fmt.Sprintf("watch-bench-%d", n)
	if len(k) < size {
		k += strings.Repeat("-", size-len(k))
	}
	return k
}

// Watch measures watches: it opens wc.Streams streams of
// wc.WatchersPerStream watchers each, then puts wc.PutTotal values to the
// watched keys and waits until every watcher got every event of its key
// (or cfg.Timeout passed since the last put). Summaries: "<name>-create"
// (watch creation), "<name>-put" (the puts) and "<name>-events" (from a
// put's start to each watcher receiving it; throughput in events/s).
func Watch(ctx context.Context, cfg Config, name string, wc WatchConfig) ([]report.Summary, error) {
	cfg, wc = cfg.withDefaults(), wc.withDefaults()
	conns, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)

	// Who watches what: expected[k] watchers on key k.
	nWatchers := wc.Streams * wc.WatchersPerStream
	expected := make([]int32, wc.WatchedKeys)
	for j := range nWatchers {
		expected[j%wc.WatchedKeys]++
	}
	keyOf := func(put int) int { return put % wc.WatchedKeys }
	putStart := make([]atomic.Int64, wc.PutTotal)
	got := make([]atomic.Int32, wc.PutTotal)
	putFailed := make([]atomic.Bool, wc.PutTotal)
	var done []chan struct{}
	if wc.WaitEach {
		done = make([]chan struct{}, wc.PutTotal)
		for i := range done {
			done[i] = make(chan struct{})
		}
	}
	var want int64
	for i := range wc.PutTotal {
		want += int64(expected[keyOf(i)])
	}
	var delivered atomic.Int64
	allDelivered := make(chan struct{})
	var lastEvent atomic.Int64

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var mu sync.Mutex
	var createLat, eventLat []time.Duration
	var createErrs []error
	var recv sync.WaitGroup
	receive := func(ch clientv3.WatchChan) {
		var mine []time.Duration
		defer func() {
			mu.Lock()
			eventLat = append(eventLat, mine...)
			mu.Unlock()
		}()
		for resp := range ch {
			now := time.Now()
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut || len(ev.Kv.Value) < valIndexLen {
					continue
				}
				i, err := strconv.Atoi(string(ev.Kv.Value[:valIndexLen]))
				if err != nil || i < 0 || i >= wc.PutTotal {
					continue
				}
				mine = append(mine, now.Sub(time.Unix(0, putStart[i].Load())))
				if n := got[i].Add(1); done != nil && n == expected[keyOf(i)] {
					close(done[i])
				}
				lastEvent.Store(now.UnixNano())
				if delivered.Add(1) == want {
					close(allDelivered)
				}
			}
		}
	}

	// Creation: each stream's watchers one after another, streams in
	// parallel.
	createStart := time.Now()
	var creators sync.WaitGroup
	for s := range wc.Streams {
		w := clientv3.NewWatcher(conns[s%len(conns)])
		defer w.Close()
		creators.Go(func() {
			for j := range wc.WatchersPerStream {
				n := s*wc.WatchersPerStream + j
				opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
				if wc.PrevKV {
					opts = append(opts, clientv3.WithPrevKV())
				}
				t0 := time.Now()
				ch := w.Watch(wctx, watchedKey(n%wc.WatchedKeys, wc.KeySize), opts...)
				var err error
				select {
				case resp, ok := <-ch:
					switch {
					case !ok:
						err = errors.New("watch channel closed before creation")
					case resp.Err() != nil:
						err = resp.Err()
					case !resp.Created:
						err = errors.New("first watch response is not the creation")
					}
				case <-time.After(cfg.Timeout):
					err = context.DeadlineExceeded
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					createErrs = append(createErrs, err)
				} else {
					createLat = append(createLat, d)
				}
				mu.Unlock()
				if err == nil {
					recv.Go(func() { receive(ch) })
				}
			}
		})
	}
	creators.Wait()
	createSum := report.Summarize(name+"-create", createLat, createErrs, time.Since(createStart))
	if len(createErrs) > 0 {
		// A watcher missing: its events would never come.
		stopWatch()
		recv.Wait()
		return []report.Summary{createSum}, fmt.Errorf("%d of %d watches failed: %w", len(createErrs), nWatchers, createErrs[0])
	}

	// Puts.
	var limiter *rate.Limiter
	if wc.PutRate > 0 {
		limiter = rate.NewLimiter(rate.Limit(wc.PutRate), 1)
	}
	pad := strings.Repeat("x", wc.ValSize-valIndexLen)
	var putLat []time.Duration
	var putErrs []error
	var next atomic.Int64
	putters := cfg.Clients
	if wc.WaitEach {
		putters = 1
	}
	putStartAll := time.Now()
	var wg sync.WaitGroup
	for p := range putters {
		c := conns[p%len(conns)]
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= wc.PutTotal {
					return
				}
				if limiter != nil && limiter.Wait(ctx) != nil {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
				t0 := time.Now()
				putStart[i].Store(t0.UnixNano())
				_, err := c.Put(rctx, watchedKey(keyOf(i), wc.KeySize), fmt.Sprintf("%0*d", valIndexLen, i)+pad)
				d := time.Since(t0)
				if err == nil && done != nil {
					select {
					case <-done[i]:
					case <-rctx.Done():
					}
				}
				cancel()
				mu.Lock()
				if err != nil {
					putFailed[i].Store(true)
					putErrs = append(putErrs, err)
				} else {
					putLat = append(putLat, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	putSum := report.Summarize(name+"-put", putLat, putErrs, time.Since(putStartAll))

	select {
	case <-allDelivered:
	case <-time.After(cfg.Timeout):
	case <-ctx.Done():
	}
	stopWatch()
	recv.Wait()
	// Every event of a put that succeeded and was not received is an
	// error of the events summary.
	var missing []error
	for i := range wc.PutTotal {
		if putStart[i].Load() == 0 || putFailed[i].Load() {
			continue
		}
		for range max(expected[keyOf(i)]-got[i].Load(), 0) {
			missing = append(missing, errors.New("event not delivered within --timeout"))
		}
	}
	end := time.Unix(0, lastEvent.Load())
	if lastEvent.Load() == 0 {
		end = time.Now()
	}
	eventSum := report.Summarize(name+"-events", eventLat, missing, end.Sub(putStartAll))
	return []report.Summary{createSum, putSum, eventSum}, ctx.Err()
}
