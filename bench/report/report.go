package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Summary is the outcome of one run.
type Summary struct {
	Workload   string        `json:"workload"`
	Total      int           `json:"total"`
	Errors     int           `json:"errors"`
	Duration   time.Duration `json:"duration_ns"`
	Throughput float64       `json:"throughput_ops_per_sec"`
	Fastest    time.Duration `json:"fastest_ns"`
	Slowest    time.Duration `json:"slowest_ns"`
	Average    time.Duration `json:"average_ns"`
	// Percentiles maps "50", "90", "99", "99.9" to latencies.
	Percentiles map[string]time.Duration `json:"percentiles_ns"`
	Histogram   []Bucket                 `json:"histogram"`
	// ErrorCounts counts each distinct error message.
	ErrorCounts map[string]int `json:"error_counts,omitempty"`
	// PerSecond is the run's timeline (with --sample).
	PerSecond []Second `json:"per_second,omitempty"`
	// PerChunk is the run cut into equal runs of finished requests (with
	// --sample-every).
	PerChunk []Chunk `json:"per_chunk,omitempty"`

	sorted []time.Duration // every latency, ascending (not serialized)
}

// Latencies returns every successful request's latency, ascending. A
// Summary read back from JSON has none.
func (s Summary) Latencies() []time.Duration { return s.sorted }

// Second is one second of a run's timeline: the requests that finished in
// it, the slowest of them and the failures.
type Second struct {
	Second   int           `json:"second"`
	Requests int           `json:"requests"`
	Errors   int           `json:"errors,omitempty"`
	Slowest  time.Duration `json:"slowest_ns"`
}

// Chunk is one run of a run's requests, in the order they finished:
// requests From to To (exclusive), their throughput from the previous
// chunk's end to this one's, their p99 latency and their failures.
type Chunk struct {
	From   int           `json:"from"`
	To     int           `json:"to"`
	RPS    float64       `json:"requests_per_second"`
	P99    time.Duration `json:"p99_ns"`
	Errors int           `json:"errors,omitempty"`
}

// Bucket counts the latencies at or below Upper (and above the previous
// bucket's).
type Bucket struct {
	Upper time.Duration `json:"upper_ns"`
	Count int           `json:"count"`
}

// percentiles reported, as etcd's benchmark plus 99.9.
var percentiles = []float64{10, 25, 50, 75, 90, 95, 99, 99.9}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted
// latencies, nearest-rank.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// histogramBuckets is how many buckets the histogram has.
const histogramBuckets = 10

// Histogram splits [fastest, slowest] of sorted latencies into equal-width
// buckets, as etcd's benchmark does.
func Histogram(sorted []time.Duration) []Bucket {
	if len(sorted) == 0 {
		return nil
	}
	lo, hi := sorted[0], sorted[len(sorted)-1]
	width := (hi - lo) / histogramBuckets
	out := make([]Bucket, histogramBuckets+1)
	for i := range out {
		out[i].Upper = lo + time.Duration(i)*width
	}
	out[histogramBuckets].Upper = hi
	b := 0
	for _, d := range sorted {
		for b < len(out)-1 && d > out[b].Upper {
			b++
		}
		out[b].Count++
	}
	return out
}

// Summarize builds the summary of a run that took elapsed.
func Summarize(workload string, latencies []time.Duration, errs []error, elapsed time.Duration) Summary {
	sorted := append([]time.Duration(nil), latencies...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	s := Summary{Workload: workload, Total: len(sorted) + len(errs), Errors: len(errs), Duration: elapsed,
		Percentiles: map[string]time.Duration{}, sorted: sorted}
	if elapsed > 0 {
		s.Throughput = float64(len(sorted)) / elapsed.Seconds()
	}
	if len(sorted) > 0 {
		s.Fastest, s.Slowest = sorted[0], sorted[len(sorted)-1]
		var sum time.Duration
		for _, d := range sorted {
			sum += d
		}
		s.Average = sum / time.Duration(len(sorted))
		for _, p := range percentiles {
			s.Percentiles[pname(p)] = Percentile(sorted, p)
		}
		s.Histogram = Histogram(sorted)
	}
	for _, err := range errs {
		if s.ErrorCounts == nil {
			s.ErrorCounts = map[string]int{}
		}
		s.ErrorCounts[err.Error()]++
	}
	return s
}

func pname(p float64) string { return strings.TrimSuffix(fmt.Sprintf("%g", p), ".0") }

// WriteJSON writes sums as one JSON array (a workload may report more
// than one summary: txn-mixed's reads and writes, watch's phases).
func WriteJSON(w io.Writer, sums []Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sums)
}

// WriteText writes s in etcd benchmark's layout.
func (s Summary) WriteText(w io.Writer) error {
	sec := func(d time.Duration) string { return fmt.Sprintf("%.4f secs", d.Seconds()) }
	var b strings.Builder
	fmt.Fprintf(&b, "\nSummary (%s):\n", s.Workload)
	fmt.Fprintf(&b, "  Total:\t%s.\n", sec(s.Duration))
	fmt.Fprintf(&b, "  Slowest:\t%s.\n", sec(s.Slowest))
	fmt.Fprintf(&b, "  Fastest:\t%s.\n", sec(s.Fastest))
	fmt.Fprintf(&b, "  Average:\t%s.\n", sec(s.Average))
	fmt.Fprintf(&b, "  Requests/sec:\t%.4f\n", s.Throughput)
	if len(s.Histogram) > 0 {
		fmt.Fprintf(&b, "\nResponse time histogram:\n")
		maxCount := 0
		for _, bk := range s.Histogram {
			maxCount = max(maxCount, bk.Count)
		}
		for _, bk := range s.Histogram {
			bar := 0
			if maxCount > 0 {
				bar = bk.Count * 40 / maxCount
			}
			fmt.Fprintf(&b, "  %.4f [%d]\t|%s\n", bk.Upper.Seconds(), bk.Count, strings.Repeat("∎", bar))
		}
		fmt.Fprintf(&b, "\nLatency distribution:\n")
		for _, p := range percentiles {
			fmt.Fprintf(&b, "  %s%% in %s.\n", pname(p), sec(s.Percentiles[pname(p)]))
		}
	}
	if len(s.PerSecond) > 0 {
		fmt.Fprintf(&b, "\nPer second (requests, slowest):\n")
		for _, p := range s.PerSecond {
			fmt.Fprintf(&b, "  %4ds\t%d\t%s", p.Second, p.Requests, sec(p.Slowest))
			if p.Errors > 0 {
				fmt.Fprintf(&b, "\t%d errors", p.Errors)
			}
			b.WriteString("\n")
		}
	}
	if len(s.PerChunk) > 0 {
		fmt.Fprintf(&b, "\nPer %d requests (requests/sec, p99):\n", s.PerChunk[0].To-s.PerChunk[0].From)
		for _, c := range s.PerChunk {
			fmt.Fprintf(&b, "  %d-%d\t%.0f\t%s", c.From, c.To, c.RPS, sec(c.P99))
			if c.Errors > 0 {
				fmt.Fprintf(&b, "\t%d errors", c.Errors)
			}
			b.WriteString("\n")
		}
	}
	if s.Errors > 0 {
		fmt.Fprintf(&b, "\nError distribution (%d errors):\n", s.Errors)
		msgs := make([]string, 0, len(s.ErrorCounts))
		for m := range s.ErrorCounts {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		for _, m := range msgs {
			fmt.Fprintf(&b, "  [%d]\t%s\n", s.ErrorCounts[m], m)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
