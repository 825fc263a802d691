package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cheggaaa/pb/v3"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/bench/report"
)

// Config is what every workload shares (etcd benchmark's global flags).
type Config struct {
	Endpoints []string
	Conns     int           // gRPC connections (default 1)
	Clients   int           // concurrent clients spread over them (default 1)
	Total     int           // requests in all (default 10000)
	Timeout   time.Duration // per request (default 10 s)
	// Progress, if set and a terminal, shows a live progress bar.
	Progress io.Writer
}

// Op issues request i over c.
type Op func(ctx context.Context, c *clientv3.Client, i int) error

// Run issues cfg.Total requests of op from cfg.Clients clients over
// cfg.Conns connections and summarizes them. Failed requests are counted,
// not retried.
func Run(ctx context.Context, cfg Config, name string, op Op) (report.Summary, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 1
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 1
	}
	if cfg.Total <= 0 {
		cfg.Total = 10000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	conns := make([]*clientv3.Client, cfg.Conns)
	for i := range conns {
		c, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return report.Summary{}, fmt.Errorf("connect to %v: %w", cfg.Endpoints, err)
		}
		defer c.Close()
		conns[i] = c
	}
	var bar *pb.ProgressBar
	if isTerminal(cfg.Progress) {
		bar = pb.New(cfg.Total).SetWriter(cfg.Progress).Start()
	}
	var next atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, cfg.Total)
	var errs []error
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Clients {
		c := conns[w%cfg.Conns]
		wg.Go(func() {
			var myLat []time.Duration
			var myErrs []error
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.Total {
					break
				}
				rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
				t0 := time.Now()
				err := op(rctx, c, i)
				d := time.Since(t0)
				cancel()
				if err != nil {
					myErrs = append(myErrs, err)
				} else {
					myLat = append(myLat, d)
				}
				if bar != nil {
					bar.Increment()
				}
			}
			mu.Lock()
			lat = append(lat, myLat...)
			errs = append(errs, myErrs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bar != nil {
		bar.Finish()
	}
	return report.Summarize(name, lat, errs, elapsed), ctx.Err()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
