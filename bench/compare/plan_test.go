package compare

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/bench/report"
)

// The schedule runs every workload once per round on each target,
// alternates A and B on fresh clusters (grouped by size), and keeps the
// same order for both.
func TestPlanAlternatesTargets(t *testing.T) {
	ws := []Workload{
		{ID: "a", Members: 1}, {ID: "b", Members: 3}, {ID: "c", Members: 1},
	}
	steps := Plan(3, ws)
	require.Len(t, steps, 3*2*2, "rounds × sizes × targets")
	seen := map[string]int{}
	for i, st := range steps {
		require.Equal(t, i%2, st.Target, "A/B/A/B")
		require.Equal(t, i/4, st.Round)
		if st.Target == 1 {
			prev := steps[i-1]
			require.Equal(t, prev.Members, st.Members)
			require.Equal(t, prev.Workloads, st.Workloads, "B runs what A ran, in the same order")
		}
		for _, w := range st.Workloads {
			require.Equal(t, st.Members, w.Members)
			seen[fmt.Sprintf("%d/%d/%s", st.Round, st.Target, w.ID)]++
		}
	}
	require.Len(t, seen, 3*2*3)
	for k, n := range seen {
		require.Equal(t, 1, n, k)
	}
	require.Equal(t, []string{"a", "c"}, []string{steps[0].Workloads[0].ID, steps[0].Workloads[1].ID})
	require.Equal(t, 3, steps[2].Members, "sizes in the order the workloads name them")
	require.Empty(t, Plan(0, ws))
}

func TestSelect(t *testing.T) {
	all, err := Select("")
	require.NoError(t, err)
	require.Equal(t, Standard, all)
	ws, err := Select("put-100-3m, put-1")
	require.NoError(t, err)
	require.Equal(t, []string{"put-1", "put-100-3m"}, []string{ws[0].ID, ws[1].ID}, "standard order")
	_, err = Select("put-1,zz,aa")
	require.ErrorContains(t, err, "--workloads: unknown aa, zz (known: put-1, ")
	ids := map[string]bool{}
	for _, w := range Standard {
		require.False(t, ids[w.ID], "unique IDs")
		ids[w.ID] = true
		o := Options{}
		o.defaults()
		_, err := o.op(w)
		require.NoError(t, err, w.ID)
	}
}

func TestMedian(t *testing.T) {
	require.Zero(t, Median(nil))
	require.Equal(t, 5.0, Median([]float64{5}))
	require.Equal(t, 2.0, Median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
	xs := []float64{3, 1, 2}
	Median(xs)
	require.Equal(t, []float64{3, 1, 2}, xs, "input not reordered")
}

func sum(tput float64, p99 time.Duration, errs int) report.Summary {
	return report.Summary{Throughput: tput, Errors: errs, Percentiles: map[string]time.Duration{"99": p99}}
}

func TestAggregate(t *testing.T) {
	ws := []Workload{{ID: "w1"}, {ID: "w2"}}
	ms := []Measurement{
		{Round: 1, Target: 0, Workload: "w1", Summary: sum(100, 3*time.Millisecond, 0)},
		{Round: 0, Target: 0, Workload: "w1", Summary: sum(90, 1*time.Millisecond, 0)},
		{Round: 2, Target: 0, Workload: "w1", Summary: sum(300, 2*time.Millisecond, 1)},
		{Round: 0, Target: 1, Workload: "w1", Summary: sum(200, 1*time.Millisecond, 0)},
		{Round: 1, Target: 1, Workload: "w1", Summary: sum(180, 5*time.Millisecond, 2)},
		{Round: 2, Target: 1, Workload: "w1", Summary: sum(220, 4*time.Millisecond, 0)},
		{Round: 0, Target: 0, Workload: "w2", Summary: sum(10, time.Millisecond, 0)},
		{Round: 0, Target: 1, Workload: "w2", Summary: sum(5, time.Millisecond, 0)},
		{Round: 0, Target: 1, Workload: "unknown", Summary: sum(5, time.Millisecond, 0)},
	}
	rows := Aggregate(ws, ms)
	require.Len(t, rows, 2)
	r := rows[0]
	require.Equal(t, []float64{90, 100, 300}, r.A.Throughput, "by round")
	require.Equal(t, 100.0, r.A.Median)
	require.Equal(t, 200.0, r.B.Median)
	require.Equal(t, 2.0, r.Ratio)
	require.Equal(t, 2*time.Millisecond, r.A.MedianP99)
	require.Equal(t, 4*time.Millisecond, r.B.MedianP99)
	require.Equal(t, 1, r.A.Errors)
	require.Equal(t, 2, r.B.Errors)
	require.Equal(t, 0.5, rows[1].Ratio)

	require.Zero(t, Aggregate([]Workload{{ID: "none"}}, nil)[0].Ratio, "no baseline: no ratio")

	// CPU per successful request, medians over the rounds.
	cpu := []Measurement{
		{Workload: "w1", Summary: report.Summary{Total: 110, Errors: 10}, ServerCPU: 100 * time.Millisecond, ClientCPU: 50 * time.Millisecond},
		{Workload: "w1", Summary: report.Summary{Total: 100}, ServerCPU: 300 * time.Millisecond},
		{Workload: "w1", Summary: report.Summary{Total: 100}, ServerCPU: 200 * time.Millisecond},
		{Workload: "w1", Summary: report.Summary{Total: 5, Errors: 5}, ServerCPU: time.Second, Target: 1},
	}
	require.Equal(t, time.Millisecond, cpu[0].ServerCPUPerOp())
	require.Equal(t, 500*time.Microsecond, cpu[0].ClientCPUPerOp())
	require.Zero(t, cpu[3].ServerCPUPerOp(), "no successful request")
	r = Aggregate(ws[:1], cpu)[0]
	require.Equal(t, 2*time.Millisecond, r.A.ServerCPUPerOp)
	require.Equal(t, time.Duration(0), r.A.ClientCPUPerOp)
}

func TestMarkdownAndReplaceSection(t *testing.T) {
	res := Result{Date: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Rounds: 3, Duration: 5 * time.Second,
		A: Target{Name: "etcd", Ver: "etcd Version: 3.7.3"}, B: Target{Name: "MetaStore", Ver: "MetaStore Version: 0.1"},
		Machine: Machine{CPU: "cpu", CPUs: 2, Filesystem: "ext4"},
		Rows: Aggregate([]Workload{{ID: "put-1", Title: "put, 1 client"}}, []Measurement{
			{Target: 0, Workload: "put-1", Summary: sum(1234.4, 1500*time.Microsecond, 0)},
			{Target: 1, Workload: "put-1", Summary: sum(2468.8, 1200*time.Microsecond, 0)},
		})}
	md := res.Markdown("make bench-compare", "plot.svg")
	for _, want := range []string{
		"Measured 2026-11-26 with", "make bench-compare", "- machine: 2 × cpu", "etcd Version: 3.7.3",
		"| workload | etcd ops/s | MetaStore ops/s | ratio | p99 etcd / MetaStore |",
		"| put, 1 client | 1,234 (1,234) | 2,469 (2,469) | **2.00×** | 1.50 / 1.20 ms | 0 / 0 µs | 0 / 0 µs |",
		"](plot.svg)",
	} {
		require.Contains(t, md, want)
	}
	var txt strings.Builder
	require.NoError(t, res.WriteText(&txt))
	require.Contains(t, txt.String(), "2.00×")

	doc := "a\n" + BeginMarker + "\nold\n" + EndMarker + "\nb\n"
	out, err := ReplaceSection(doc, "new\n\n")
	require.NoError(t, err)
	require.Equal(t, "a\n"+BeginMarker+"\nnew\n"+EndMarker+"\nb\n", out)
	_, err = ReplaceSection("no markers", "x")
	require.ErrorContains(t, err, "no "+BeginMarker)
	_, err = ReplaceSection(EndMarker+BeginMarker, "x")
	require.Error(t, err)
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", -4321: "-4,321"} {
		require.Equal(t, want, num(in))
	}
}
