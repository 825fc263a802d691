package compare

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/metastore/metastore/bench/report"
)

// Workload is one shape of the comparison: a kind of request, the
// cluster size and the client shape.
type Workload struct {
	ID      string `json:"id"`      // short name, e.g. "put-100"
	Title   string `json:"title"`   // for tables, e.g. "put, 100 clients / 10 conns"
	Kind    string `json:"kind"`    // put, txn-put, insert, range-l or range-s
	Members int    `json:"members"` // cluster size
	Conns   int    `json:"conns"`
	Clients int    `json:"clients"`
}

// Standard is the set `make bench-compare` runs: etcd's performance
// guide shapes (8-byte sequential keys, 256-byte values) for one client
// and for 100 clients over 10 connections, writes and both read
// consistencies, and writes on three members.
var Standard = []Workload{
	{ID: "put-1", Title: "put, 1 client", Kind: "put", Members: 1, Conns: 1, Clients: 1},
	{ID: "put-100", Title: "put, 100 clients / 10 conns", Kind: "put", Members: 1, Conns: 10, Clients: 100},
	{ID: "txn-put-1", Title: "txn-put, 1 client", Kind: "txn-put", Members: 1, Conns: 1, Clients: 1},
	{ID: "txn-put-100", Title: "txn-put, 100 clients / 10 conns", Kind: "txn-put", Members: 1, Conns: 10, Clients: 100},
	{ID: "range-l-1", Title: "range linearizable, 1 client", Kind: "range-l", Members: 1, Conns: 1, Clients: 1},
	{ID: "range-l-100", Title: "range linearizable, 100 clients / 10 conns", Kind: "range-l", Members: 1, Conns: 10, Clients: 100},
	{ID: "range-s-1", Title: "range serializable, 1 client", Kind: "range-s", Members: 1, Conns: 1, Clients: 1},
	{ID: "range-s-100", Title: "range serializable, 100 clients / 10 conns", Kind: "range-s", Members: 1, Conns: 10, Clients: 100},
	{ID: "insert-100", Title: "insert (new 16-byte keys), 100 clients / 10 conns", Kind: "insert", Members: 1, Conns: 10, Clients: 100},
	{ID: "put-100-3m", Title: "put, 3 members, 100 clients / 10 conns", Kind: "put", Members: 3, Conns: 10, Clients: 100},
}

// Select returns the standard workloads named in ids (comma-separated, in
// the standard order), or all of them for "" or "all".
func Select(ids string) ([]Workload, error) {
	if ids == "" || ids == "all" {
		return slices.Clone(Standard), nil
	}
	want := map[string]bool{}
	for id := range strings.SplitSeq(ids, ",") {
		want[strings.TrimSpace(id)] = true
	}
	var out []Workload
	for _, w := range Standard {
		if want[w.ID] {
			out = append(out, w)
			delete(want, w.ID)
		}
	}
	if len(want) > 0 {
		var unknown, known []string
		for id := range want {
			unknown = append(unknown, id)
		}
		for _, w := range Standard {
			known = append(known, w.ID)
		}
		sort.Strings(unknown)
		return nil, fmt.Errorf("--workloads: unknown %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return out, nil
}

// Step is one cluster's life in the schedule: target Target (0 = A,
// the baseline; 1 = B) started fresh with Members members runs Workloads
// in order during round Round.
type Step struct {
	Round     int
	Target    int
	Members   int
	Workloads []Workload
}

// Plan schedules rounds of workloads on two targets alternately: in each
// round, for each cluster size (in the order the workloads name them), A
// runs the workloads of that size on a fresh cluster, then B does — so
// A/B/A/B, each target alone on the machine while it is measured, and
// both see the same sequence.
func Plan(rounds int, ws []Workload) []Step {
	var sizes []int
	bySize := map[int][]Workload{}
	for _, w := range ws {
		if _, ok := bySize[w.Members]; !ok {
			sizes = append(sizes, w.Members)
		}
		bySize[w.Members] = append(bySize[w.Members], w)
	}
	var steps []Step
	for r := range rounds {
		for _, m := range sizes {
			for t := range 2 {
				steps = append(steps, Step{Round: r, Target: t, Members: m, Workloads: bySize[m]})
			}
		}
	}
	return steps
}

// Measurement is one workload's run on one target in one round.
type Measurement struct {
	Round    int            `json:"round"`
	Target   int            `json:"target"`
	Workload string         `json:"workload"`
	Summary  report.Summary `json:"summary"`
	// CPU time (user + system) the cluster's members and the load
	// generator used during the measured run.
	ServerCPU time.Duration `json:"server_cpu_ns"`
	ClientCPU time.Duration `json:"client_cpu_ns"`
}

// ServerCPUPerOp is the members' CPU time per successful request.
func (m Measurement) ServerCPUPerOp() time.Duration { return perOp(m.ServerCPU, m.Summary) }

// ClientCPUPerOp is the load generator's CPU time per successful request.
func (m Measurement) ClientCPUPerOp() time.Duration { return perOp(m.ClientCPU, m.Summary) }

func perOp(d time.Duration, s report.Summary) time.Duration {
	if ok := s.Total - s.Errors; ok > 0 {
		return d / time.Duration(ok)
	}
	return 0
}

// Side is one target's figures for a workload.
type Side struct {
	Throughput []float64       `json:"ops_per_sec"` // per round
	P99        []time.Duration `json:"p99_ns"`      // per round
	Errors     int             `json:"errors"`      // over all rounds
	Median     float64         `json:"median_ops_per_sec"`
	MedianP99  time.Duration   `json:"median_p99_ns"`
	// Medians over the rounds of the CPU time per request of the members
	// and of the load generator.
	ServerCPUPerOp time.Duration `json:"median_server_cpu_per_op_ns"`
	ClientCPUPerOp time.Duration `json:"median_client_cpu_per_op_ns"`

	serverCPU, clientCPU []float64
}

// Row is a workload's comparison: A's and B's figures and the ratio of
// B's median throughput to A's.
type Row struct {
	Workload Workload `json:"workload"`
	A        Side     `json:"a"`
	B        Side     `json:"b"`
	Ratio    float64  `json:"ratio"`
}

// Aggregate folds measurements into one row per workload (in ws's order):
// per-target medians over the rounds of throughput and of p99 latency,
// and the ratio of the medians (B/A).
func Aggregate(ws []Workload, ms []Measurement) []Row {
	rows := make([]Row, len(ws))
	index := map[string]int{}
	for i, w := range ws {
		rows[i].Workload = w
		index[w.ID] = i
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Round < ms[j].Round })
	for _, m := range ms {
		i, ok := index[m.Workload]
		if !ok {
			continue
		}
		side := &rows[i].A
		if m.Target == 1 {
			side = &rows[i].B
		}
		side.Throughput = append(side.Throughput, m.Summary.Throughput)
		side.P99 = append(side.P99, m.Summary.Percentiles["99"])
		side.Errors += m.Summary.Errors
		side.serverCPU = append(side.serverCPU, float64(m.ServerCPUPerOp()))
		side.clientCPU = append(side.clientCPU, float64(m.ClientCPUPerOp()))
	}
	for i := range rows {
		for _, s := range []*Side{&rows[i].A, &rows[i].B} {
			s.Median = Median(s.Throughput)
			p := make([]float64, len(s.P99))
			for j, d := range s.P99 {
				p[j] = float64(d)
			}
			s.MedianP99 = time.Duration(Median(p))
			s.ServerCPUPerOp = time.Duration(Median(s.serverCPU))
			s.ClientCPUPerOp = time.Duration(Median(s.clientCPU))
		}
		if rows[i].A.Median > 0 {
			rows[i].Ratio = rows[i].B.Median / rows[i].A.Median
		}
	}
	return rows
}

// Median returns the median of xs (the mean of the middle two for an
// even count), 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
