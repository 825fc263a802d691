package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cheggaaa/pb/v3"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/metastore/metastore/bench/report"
)

// Config is what every workload shares (etcd benchmark's global flags).
type Config struct {
	Endpoints []string
	Conns     int           // gRPC connections (default 1)
	Clients   int           // concurrent clients spread over them (default 1)
	Total     int           // requests in all (default 10000)
	Timeout   time.Duration // per request (default 10 s)
	// Duration, if positive, ends the run after this long even if Total
	// requests were not issued (compare mode runs time-boxed rounds).
	Duration time.Duration
	// Rate limits the requests per second of all clients together (0: no
	// limit), as etcd benchmark's --rate.
	Rate int
	// DialTimeout bounds connecting (default 5 s).
	DialTimeout time.Duration
	// TargetLeader connects to the leader's endpoint only.
	TargetLeader bool
	// TLS: client certificate and key, trusted CA bundle, and whether to
	// skip verifying the server's certificate. Any of them turns TLS on.
	CertFile, KeyFile, TrustedCAFile string
	InsecureSkipTLSVerify            bool
	// Username and Password authenticate every connection (etcd auth).
	Username, Password string
	// Sample adds a per-second timeline to the summary (requests finished
	// and the slowest of them, each second), which shows stalls.
	Sample bool
	// SampleEvery, if above 0, adds the throughput and p99 of every
	// SampleEvery requests in the order they finished (PerChunk), which
	// shows whether a long run stays flat (per 100,000 inserts).
	SampleEvery int
	// Errors, if set, gets each new kind of request error as it first
	// happens (one line each).
	Errors io.Writer
	// Progress, if set and a terminal, shows a live progress bar.
	Progress io.Writer
}

func (cfg Config) withDefaults() Config {
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
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	return cfg
}

// clientConfig is clientv3's configuration for endpoints eps.
func (cfg Config) clientConfig(eps []string) (clientv3.Config, error) {
	cc := clientv3.Config{Endpoints: eps, DialTimeout: cfg.DialTimeout, Logger: zap.NewNop(),
		Username: cfg.Username, Password: cfg.Password}
	if cfg.CertFile != "" || cfg.KeyFile != "" || cfg.TrustedCAFile != "" || cfg.InsecureSkipTLSVerify {
		if (cfg.CertFile == "") != (cfg.KeyFile == "") {
			return cc, errors.New("--cert and --key go together")
		}
		info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
			TrustedCAFile: cfg.TrustedCAFile, InsecureSkipVerify: cfg.InsecureSkipTLSVerify}
		tc, err := info.ClientConfig()
		if err != nil {
			return cc, fmt.Errorf("TLS: %w", err)
		}
		cc.TLS = tc
	}
	return cc, nil
}

// Dial opens cfg.Conns connections to cfg.Endpoints — to the leader's
// endpoint only with TargetLeader — with cfg's TLS and credentials.
func Dial(ctx context.Context, cfg Config) ([]*clientv3.Client, error) {
	cfg = cfg.withDefaults()
	eps := cfg.Endpoints
	if cfg.TargetLeader {
		leader, err := FindLeader(ctx, cfg)
		if err != nil {
			return nil, err
		}
		eps = []string{leader}
	}
	cc, err := cfg.clientConfig(eps)
	if err != nil {
		return nil, err
	}
	conns := make([]*clientv3.Client, 0, cfg.Conns)
	for range cfg.Conns {
		cc.Context = ctx
		c, err := clientv3.New(cc)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("connect to %v: %w", eps, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*clientv3.Client) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// FindLeader returns the endpoint among cfg.Endpoints whose member is the
// leader, asking each member's Status as etcd benchmark's --target-leader
// does.
func FindLeader(ctx context.Context, cfg Config) (string, error) {
	cfg = cfg.withDefaults()
	cc, err := cfg.clientConfig(cfg.Endpoints)
	if err != nil {
		return "", err
	}
	cc.Context = ctx
	c, err := clientv3.New(cc)
	if err != nil {
		return "", fmt.Errorf("connect to %v: %w", cfg.Endpoints, err)
	}
	defer c.Close()
	var errs []error
	for _, ep := range cfg.Endpoints {
		sctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		st, err := c.Status(sctx, ep)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		if st.Leader != 0 && st.Leader == st.Header.MemberId {
			return ep, nil
		}
	}
	return "", fmt.Errorf("--target-leader: no leader among %v %w", cfg.Endpoints, errors.Join(errs...))
}

// Op issues request i over c. It returns the request's class — "" for
// workloads of one kind; mixed workloads name theirs, and each class is
// summarized on its own besides the whole.
type Op func(ctx context.Context, c *clientv3.Client, i int) (class string, err error)

// Plain adapts a one-kind request to an Op.
func Plain(f func(ctx context.Context, c *clientv3.Client, i int) error) Op {
	return func(ctx context.Context, c *clientv3.Client, i int) (string, error) { return "", f(ctx, c, i) }
}

// sample is one finished request.
type sample struct {
	class string
	d     time.Duration
	err   error
	end   time.Duration // when it finished, since the run started
}

// Run issues cfg.Total requests of op (or as many as fit in cfg.Duration)
// from cfg.Clients clients over cfg.Conns connections and summarizes them:
// the first summary covers every request, then one per class, by name. Failed requests are counted, not retried.
func Run(ctx context.Context, cfg Config, name string, op Op) ([]report.Summary, error) {
	cfg = cfg.withDefaults()
	conns, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	return RunOn(ctx, conns, cfg, name, op)
}

// RunOn is Run over connections already open.
func RunOn(ctx context.Context, conns []*clientv3.Client, cfg Config, name string, op Op) ([]report.Summary, error) {
	cfg = cfg.withDefaults()
	var bar *pb.ProgressBar
	if isTerminal(cfg.Progress) {
		bar = pb.New(cfg.Total).SetWriter(cfg.Progress).Start()
	}
	var limiter *rate.Limiter
	if cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var next atomic.Int64
	var mu sync.Mutex
	samples := make([]sample, 0, min(cfg.Total, 1<<20))
	start := time.Now()
	runCtx, giveUp := context.WithCancelCause(runCtx)
	defer giveUp(nil)
	health := newRunHealth(start, cfg)
	stopWatch := health.watch(giveUp)
	defer stopWatch()
	var wg sync.WaitGroup
	for w := range cfg.Clients {
		c := conns[w%len(conns)]
		wg.Go(func() {
			var mine []sample
			for runCtx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.Total {
					break
				}
				if limiter != nil && limiter.Wait(runCtx) != nil {
					break
				}
				// A request runs to its own timeout even when the run's
				// duration ends meanwhile: it was issued, so it counts.
				rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
				t0 := time.Now()
				class, err := op(rctx, c, i)
				d := time.Since(t0)
				cancel()
				mine = append(mine, sample{class, d, err, time.Since(start)})
				health.done(err)
				if bar != nil {
					bar.Increment()
				}
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bar != nil {
		bar.Finish()
	}
	sums := summarize(name, samples, elapsed)
	if cfg.Sample {
		sums[0].PerSecond = timeline(samples, elapsed)
	}
	if cfg.SampleEvery > 0 {
		sums[0].PerChunk = chunks(samples, cfg.SampleEvery)
	}
	if err := context.Cause(runCtx); errors.Is(err, ErrGaveUp) {
		return sums, err
	}
	return sums, ctx.Err()
}

// ErrGaveUp ends a run in which no request succeeded for the request
// timeout while requests failed (the server died or is unreachable); the
// summary so far is returned with it.
var ErrGaveUp = errors.New("bench: no request succeeded within the request timeout; giving up")

// runHealth follows a run's answers: each new kind of error is reported
// when it first happens (Config.Errors), and the run gives up when only
// errors came back for a whole request timeout.
type runHealth struct {
	cfg    Config
	lastOK atomic.Int64 // unix nanos of the last success (or the start)
	failed atomic.Bool  // a request failed since the last success
	mu     sync.Mutex
	seen   map[string]bool
}

func newRunHealth(start time.Time, cfg Config) *runHealth {
	h := &runHealth{cfg: cfg, seen: map[string]bool{}}
	h.lastOK.Store(start.UnixNano())
	return h
}

func (h *runHealth) done(err error) {
	if err == nil {
		h.lastOK.Store(time.Now().UnixNano())
		h.failed.Store(false)
		return
	}
	h.failed.Store(true)
	if h.cfg.Errors == nil {
		return
	}
	msg := err.Error()
	h.mu.Lock()
	first := !h.seen[msg]
	h.seen[msg] = true
	h.mu.Unlock()
	if first {
		fmt.Fprintf(h.cfg.Errors, "bench: %s: %s\n", time.Now().Format(time.TimeOnly), msg)
	}
}

// watch gives the run up (through giveUp) once only errors came back for
// the request timeout; the returned function stops watching.
func (h *runHealth) watch(giveUp context.CancelCauseFunc) func() {
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(min(h.cfg.Timeout/10, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if h.failed.Load() && time.Since(time.Unix(0, h.lastOK.Load())) >= h.cfg.Timeout {
					giveUp(ErrGaveUp)
					return
				}
			}
		}
	}()
	return func() { close(stop) }
}

// timeline buckets the finished requests by the second they finished in.
func timeline(samples []sample, elapsed time.Duration) []report.Second {
	out := make([]report.Second, int(elapsed/time.Second)+1)
	for i := range out {
		out[i].Second = i
	}
	for _, s := range samples {
		b := &out[min(int(s.end/time.Second), len(out)-1)]
		if s.err != nil {
			b.Errors++
			continue
		}
		b.Requests++
		b.Slowest = max(b.Slowest, s.d)
	}
	return out
}

// chunks cuts the finished requests, in the order they finished, into
// runs of n (the last may be shorter) with each one's throughput — from
// the previous chunk's last finish to its own — and p99 latency.
func chunks(samples []sample, n int) []report.Chunk {
	byEnd := slices.Clone(samples)
	slices.SortFunc(byEnd, func(a, b sample) int { return cmp.Compare(a.end, b.end) })
	var out []report.Chunk
	var prev time.Duration
	for from := 0; from < len(byEnd); from += n {
		part := byEnd[from:min(from+n, len(byEnd))]
		c := report.Chunk{From: from, To: from + len(part)}
		lat := make([]time.Duration, 0, len(part))
		for _, s := range part {
			if s.err != nil {
				c.Errors++
				continue
			}
			lat = append(lat, s.d)
		}
		slices.Sort(lat)
		c.P99 = report.Percentile(lat, 99)
		end := part[len(part)-1].end
		if d := end - prev; d > 0 {
			c.RPS = float64(len(part)) / d.Seconds()
		}
		prev = end
		out = append(out, c)
	}
	return out
}

// summarize builds the whole run's summary and one per class.
func summarize(name string, samples []sample, elapsed time.Duration) []report.Summary {
	type group struct {
		lat  []time.Duration
		errs []error
	}
	all := &group{}
	var order []string
	classes := map[string]*group{}
	for _, s := range samples {
		gs := []*group{all}
		if s.class != "" {
			g, ok := classes[s.class]
			if !ok {
				g = &group{}
				classes[s.class] = g
				order = append(order, s.class)
			}
			gs = append(gs, g)
		}
		for _, g := range gs {
			if s.err != nil {
				g.errs = append(g.errs, s.err)
			} else {
				g.lat = append(g.lat, s.d)
			}
		}
	}
	sort.Strings(order)
	out := []report.Summary{report.Summarize(name, all.lat, all.errs, elapsed)}
	for _, c := range order {
		out = append(out, report.Summarize(name+"-"+c, classes[c].lat, classes[c].errs, elapsed))
	}
	return out
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
