package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSummarizeByClass(t *testing.T) {
	ms := time.Millisecond
	samples := []sample{
		{"write", 3 * ms, nil, 0}, {"read", 1 * ms, nil, 0}, {"read", 2 * ms, nil, 0},
		{"write", 0, errors.New("boom"), 0}, {"read", 4 * ms, nil, 0},
	}
	sums := summarize("mixed", samples, time.Second)
	require.Len(t, sums, 3)
	require.Equal(t, "mixed", sums[0].Workload)
	require.Equal(t, 5, sums[0].Total)
	require.Equal(t, 1, sums[0].Errors)
	require.Equal(t, "mixed-read", sums[1].Workload, "classes by name")
	require.Equal(t, 3, sums[1].Total)
	require.Zero(t, sums[1].Errors)
	require.Equal(t, 4*ms, sums[1].Slowest)
	require.Equal(t, "mixed-write", sums[2].Workload)
	require.Equal(t, 2, sums[2].Total)
	require.Equal(t, 1, sums[2].Errors)
	require.Equal(t, 4.0, sums[0].Throughput, "successful requests per second")

	one := summarize("put", []sample{{"", ms, nil, 0}}, time.Second)
	require.Len(t, one, 1, "no classes, one summary")
}

func TestKeys(t *testing.T) {
	kc := KeyConfig{KeySize: 8, KeySpaceSize: 3, SequentialKeys: true}.withDefaults()
	require.Equal(t, kc.key(0), kc.key(3))
	require.NotEqual(t, kc.key(0), kc.key(1))
	require.Len(t, kc.key(5), 8)
	require.Len(t, KeyConfig{KeySize: 4, KeySpaceSize: 10}.withDefaults().key(1), 4)
	require.Len(t, watchedKey(3, 32), 32)
	require.Equal(t, "watch-bench-12", watchedKey(12, 4), "never cut below the unique part")
}

func TestChunks(t *testing.T) {
	ms, sec := time.Millisecond, time.Second
	// Out of finishing order, as the clients hand them in: the first two
	// to finish take 1 s, the next two 4 s (a slowdown), the last alone.
	samples := []sample{
		{"", 30 * ms, nil, 5 * sec}, {"", 10 * ms, nil, 500 * ms},
		{"", 20 * ms, errors.New("x"), 1 * sec}, {"", 40 * ms, nil, 3 * sec},
		{"", 50 * ms, nil, 6 * sec},
	}
	c := chunks(samples, 2)
	require.Len(t, c, 3)
	require.Equal(t, 0, c[0].From)
	require.Equal(t, 2, c[0].To)
	require.InDelta(t, 2.0, c[0].RPS, 1e-9)
	require.Equal(t, 1, c[0].Errors)
	require.Equal(t, 10*ms, c[0].P99, "a failure's latency is not counted")
	require.InDelta(t, 0.5, c[1].RPS, 1e-9, "two requests over the 4 s since the previous chunk")
	require.Equal(t, 40*ms, c[1].P99)
	require.Equal(t, 4, c[2].From)
	require.Equal(t, 5, c[2].To, "the last chunk may be short")
	require.InDelta(t, 1.0, c[2].RPS, 1e-9)
}

func TestTimeline(t *testing.T) {
	ms, sec := time.Millisecond, time.Second
	samples := []sample{
		{"", 5 * ms, nil, 100 * ms}, {"", 9 * ms, nil, 900 * ms},
		{"", 2 * ms, errors.New("x"), 1500 * ms},
		{"", 700 * ms, nil, 2900 * ms}, {"", 1 * ms, nil, 3 * sec}, // the last second may be partial
	}
	tl := timeline(samples, 3*sec)
	require.Len(t, tl, 4)
	require.Equal(t, 2, tl[0].Requests)
	require.Equal(t, 9*ms, tl[0].Slowest)
	require.Equal(t, 0, tl[1].Requests, "a stall shows as a second without requests")
	require.Equal(t, 1, tl[1].Errors)
	require.Equal(t, 700*ms, tl[2].Slowest)
	require.Equal(t, 1, tl[3].Requests)
	for i, s := range tl {
		require.Equal(t, i, s.Second)
	}
}
