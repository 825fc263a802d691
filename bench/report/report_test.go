package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentileNearestRank(t *testing.T) {
	var l []time.Duration
	for i := 1; i <= 100; i++ {
		l = append(l, ms(i))
	}
	require.Equal(t, ms(50), Percentile(l, 50))
	require.Equal(t, ms(99), Percentile(l, 99))
	require.Equal(t, ms(100), Percentile(l, 99.9))
	require.Equal(t, ms(1), Percentile(l, 0.1))
	require.Equal(t, ms(7), Percentile([]time.Duration{ms(7)}, 50))
	require.Zero(t, Percentile(nil, 50))
}

func TestHistogramCountsEveryLatencyOnce(t *testing.T) {
	l := []time.Duration{ms(0), ms(1), ms(1), ms(5), ms(9), ms(10)}
	h := Histogram(l)
	require.Len(t, h, 11)
	total := 0
	for i, b := range h {
		total += b.Count
		if i > 0 {
			require.GreaterOrEqual(t, b.Upper, h[i-1].Upper)
		}
	}
	require.Equal(t, len(l), total)
	require.Equal(t, 1, h[0].Count, "0 ms")
	require.Equal(t, 2, h[1].Count, "1 ms")
	require.Equal(t, ms(10), h[10].Upper)
	require.Nil(t, Histogram(nil))
}

func TestSummaryTextAndJSON(t *testing.T) {
	s := Summarize("put", []time.Duration{ms(3), ms(1), ms(2)}, []error{errors.New("boom"), errors.New("boom")}, 2*time.Second)
	require.Equal(t, 5, s.Total)
	require.Equal(t, 2, s.Errors)
	require.InDelta(t, 1.5, s.Throughput, 1e-9, "successes per second")
	require.Equal(t, ms(1), s.Fastest)
	require.Equal(t, ms(3), s.Slowest)
	require.Equal(t, ms(2), s.Average)
	require.Equal(t, ms(2), s.Percentiles["50"])
	require.Equal(t, ms(3), s.Percentiles["99.9"])
	require.Equal(t, map[string]int{"boom": 2}, s.ErrorCounts)

	var txt bytes.Buffer
	require.NoError(t, s.WriteText(&txt))
	for _, want := range []string{"Summary (put):", "Requests/sec:\t1.5000", "Response time histogram:", "99.9% in 0.0030 secs.", "[2]\tboom"} {
		require.Contains(t, txt.String(), want)
	}
	var js bytes.Buffer
	require.NoError(t, WriteJSON(&js, []Summary{s, s}))
	var objs []map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &objs))
	require.Len(t, objs, 2)
	for _, k := range []string{"workload", "total", "errors", "throughput_ops_per_sec", "percentiles_ns", "histogram"} {
		require.Contains(t, objs[0], k)
	}
	require.NotContains(t, js.String(), "sorted", "raw latencies are not serialized")
	require.True(t, strings.HasPrefix(js.String(), "["))
	require.NotContains(t, js.String(), "per_chunk", "only with --sample-every")

	s.PerChunk = []Chunk{{From: 0, To: 100000, RPS: 12345.4, P99: ms(21)}, {From: 100000, To: 150000, RPS: 9000, P99: ms(30), Errors: 3}}
	txt.Reset()
	require.NoError(t, s.WriteText(&txt))
	for _, want := range []string{"Per 100000 requests (requests/sec, p99):", "0-100000\t12345\t0.0210 secs", "100000-150000\t9000\t0.0300 secs\t3 errors"} {
		require.Contains(t, txt.String(), want)
	}
}
