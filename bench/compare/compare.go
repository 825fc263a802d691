package compare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/metastore/metastore/bench"
)

// Options configure a comparison.
type Options struct {
	A, B      Target     // A is the baseline (etcd), B the contender (MetaStore)
	Workloads []Workload // in the order they run within a round
	Rounds    int        // A/B alternations (default 3)
	Duration  time.Duration
	Warmup    time.Duration // unmeasured run before each measured one
	ValSize   int           // bytes per value (default 256)
	KeySpace  int           // distinct keys written (default 100,000)
	// DataDir holds every cluster's data dirs (removed after each step);
	// put it on the disk under test.
	DataDir string
	// Log receives one line per step and run (nil: discarded).
	Log io.Writer
	// TLS, if set, runs both servers with mutual TLS on client and peer
	// URLs using these files, and the load over TLS.
	TLS *TLS
}

// TLS are the files of a TLS comparison: the CA bundle, and one
// certificate and key used by the servers (server, peer and peer client)
// and by the load generator.
type TLS struct{ CAFile, CertFile, KeyFile string }

// Result is a comparison's outcome.
type Result struct {
	Date         time.Time     `json:"date"`
	Machine      Machine       `json:"machine"`
	A            Target        `json:"a"`
	B            Target        `json:"b"`
	Rounds       int           `json:"rounds"`
	Duration     time.Duration `json:"duration_ns"`
	Rows         []Row         `json:"rows"`
	Measurements []Measurement `json:"measurements"`
}

func (o *Options) defaults() {
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.ValSize <= 0 {
		o.ValSize = 256
	}
	if o.KeySpace <= 0 {
		o.KeySpace = 100000
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// rangeKey is the key the range workloads read (written before them).
const rangeKey = "metastore-bench-range"

// op builds w's request.
func (o *Options) op(w Workload) (bench.Op, error) {
	kc := bench.KeyConfig{KeySize: 8, ValSize: o.ValSize, KeySpaceSize: o.KeySpace, SequentialKeys: true}
	switch w.Kind {
	case "put":
		return bench.Put(kc), nil
	case "txn-put":
		return bench.TxnPut(kc), nil
	case "insert":
		kc.KeySize = 16
		return bench.Insert(kc), nil
	case "range-l":
		return bench.Range(rangeKey, "", "l", 0)
	case "range-s":
		return bench.Range(rangeKey, "", "s", 0)
	}
	return nil, fmt.Errorf("workload %s: unknown kind %q", w.ID, w.Kind)
}

// Run executes the plan: for each step a fresh cluster of the step's
// target, each workload warmed up then measured for o.Duration, the
// cluster stopped and its data removed.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	res := Result{Date: time.Now().UTC(), A: o.A, B: o.B, Rounds: o.Rounds, Duration: o.Duration}
	if len(o.Workloads) == 0 {
		return res, errors.New("no workloads")
	}
	for _, w := range o.Workloads {
		if _, err := o.op(w); err != nil {
			return res, err
		}
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return res, err
	}
	res.Machine = DescribeMachine(o.DataDir)
	for _, t := range []*Target{&res.A, &res.B} {
		v, err := t.Version(ctx)
		if err != nil {
			return res, err
		}
		t.Ver = v
	}
	fmt.Fprintf(o.Log, "machine: %s\nA: %s (%s)\nB: %s (%s)\n", res.Machine, res.A.Name, res.A.Ver, res.B.Name, res.B.Ver)
	steps := Plan(o.Rounds, o.Workloads)
	for n, st := range steps {
		t := o.A
		if st.Target == 1 {
			t = o.B
		}
		ms, err := o.runStep(ctx, st, t, n, len(steps))
		res.Measurements = append(res.Measurements, ms...)
		if err != nil {
			return res, err
		}
	}
	res.Rows = Aggregate(o.Workloads, res.Measurements)
	return res, nil
}

func (o *Options) runStep(ctx context.Context, st Step, t Target, n, of int) ([]Measurement, error) {
	dir := filepath.Join(o.DataDir, fmt.Sprintf("round%d-%s-%dm", st.Round+1, t.Name, st.Members))
	fmt.Fprintf(o.Log, "[%d/%d] round %d: %s, %d member(s)\n", n+1, of, st.Round+1, t.Name, st.Members)
	cl, err := Start(ctx, t, st.Members, dir, o.TLS)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	defer cl.Stop()
	var out []Measurement
	for _, w := range st.Workloads {
		m, err := o.measure(ctx, cl, w)
		if err != nil {
			return out, fmt.Errorf("%s on %s: %w%s", w.ID, t.Name, err, cl.logTail())
		}
		s := m.Summary
		fmt.Fprintf(o.Log, "    %-12s %10.0f ops/s  p99 %-10s CPU/op server %-8s client %-8s errors %d\n", w.ID, s.Throughput,
			s.Percentiles["99"].Round(time.Microsecond), m.ServerCPUPerOp().Round(100*time.Nanosecond), m.ClientCPUPerOp().Round(100*time.Nanosecond), s.Errors)
		m.Round, m.Target, m.Workload = st.Round, st.Target, w.ID
		out = append(out, m)
	}
	return out, nil
}

// measure warms w up, then runs it for o.Duration, and counts the CPU
// time the cluster and this process used during the measured run.
func (o *Options) measure(ctx context.Context, cl *Cluster, w Workload) (m Measurement, err error) {
	op, err := o.op(w)
	if err != nil {
		return m, err
	}
	cfg := bench.Config{Endpoints: cl.Endpoints, Conns: w.Conns, Clients: w.Clients, Total: math.MaxInt32}
	if o.TLS != nil {
		cfg.TrustedCAFile, cfg.CertFile, cfg.KeyFile = o.TLS.CAFile, o.TLS.CertFile, o.TLS.KeyFile
	}
	conns, err := bench.Dial(ctx, cfg)
	if err != nil {
		return m, err
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if _, err := conns[0].Put(ctx, rangeKey, strings.Repeat("x", o.ValSize)); err != nil {
		return m, fmt.Errorf("write the range key: %w", err)
	}
	if o.Warmup > 0 {
		cfg.Duration = o.Warmup
		if _, err := bench.RunOn(ctx, conns, cfg, w.ID, op); err != nil {
			return m, err
		}
	}
	cfg.Duration = o.Duration
	server0, err := cl.CPUTime()
	if err != nil {
		return m, err
	}
	client0 := selfCPUTime()
	sums, err := bench.RunOn(ctx, conns, cfg, w.ID, op)
	if err != nil {
		return m, err
	}
	client1 := selfCPUTime()
	server1, err := cl.CPUTime()
	if err != nil {
		return m, err
	}
	m = Measurement{Summary: sums[0], ServerCPU: server1 - server0, ClientCPU: client1 - client0}
	if sums[0].Total > 0 && sums[0].Errors == sums[0].Total {
		return m, fmt.Errorf("every request failed: %v", sums[0].ErrorCounts)
	}
	return m, nil
}

// WriteJSON writes r as one JSON object.
func (r Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
