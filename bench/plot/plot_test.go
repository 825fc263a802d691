package plot

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/bench/report"
)

func TestCDFPoints(t *testing.T) {
	require.Nil(t, cdf(nil))
	var l []time.Duration
	for i := range 100000 {
		l = append(l, time.Duration(i)*time.Microsecond)
	}
	xys := cdf(l)
	require.LessOrEqual(t, len(xys), cdfPoints+1)
	require.Equal(t, 0.001, xys[0].X, "a zero latency is drawn at 1 µs")
	for i := 1; i < len(xys); i++ {
		require.GreaterOrEqual(t, xys[i].X, xys[i-1].X)
		require.Greater(t, xys[i].Y, xys[i-1].Y)
	}
	last := xys[len(xys)-1]
	require.Equal(t, 100.0, last.Y)
	require.InDelta(t, 99.999, last.X, 1e-9)

	xys = cdf([]time.Duration{2 * time.Millisecond})
	require.Len(t, xys, 1)
	require.Equal(t, 2.0, xys[0].X)
	require.Equal(t, 100.0, xys[0].Y)
}

func TestLatencyAndRatiosFiles(t *testing.T) {
	dir := t.TempDir()
	var lat []time.Duration
	for i := 1; i <= 500; i++ {
		lat = append(lat, time.Duration(i)*10*time.Microsecond)
	}
	sums := []report.Summary{report.Summarize("put", lat, nil, time.Second), report.Summarize("empty", nil, nil, time.Second)}
	p := filepath.Join(dir, "lat.png")
	require.NoError(t, Latency(p, "put", sums))
	f, err := os.Open(p)
	require.NoError(t, err)
	img, err := png.Decode(f)
	f.Close()
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), img.Bounds().Dy(), "landscape")

	s := filepath.Join(dir, "lat.svg")
	require.NoError(t, Latency(s, "put", sums))
	data, err := os.ReadFile(s)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(data), "<svg"))
	require.Contains(t, string(data), "put (p99 4.95ms)", "legend names the run and its p99")

	require.ErrorContains(t, Latency(filepath.Join(dir, "x.png"), "none", sums[1:]), "no latencies")
	require.Error(t, Latency(filepath.Join(dir, "x.bmpx"), "put", sums), "unknown format")

	r := filepath.Join(dir, "ratios.svg")
	require.NoError(t, Ratios(r, "ratios", []string{"put-1", "range-l-1"}, []float64{1.07, 0.82}))
	data, err = os.ReadFile(r)
	require.NoError(t, err)
	for _, want := range []string{"put-1", "range-l-1", "1.07×", "0.82×"} {
		require.Contains(t, string(data), want)
	}
	require.ErrorContains(t, Ratios(r, "x", []string{"a"}, nil), "1 names for 0 ratios")
}
