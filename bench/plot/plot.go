package plot

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/metastore/metastore/bench/report"
)

// cdfPoints is the most points drawn per curve: a run of a million
// requests is drawn from its quantiles.
const cdfPoints = 1000

// Latency draws the cumulative latency distribution of each summary
// (percent of requests at or below a latency, latency on a log scale)
// into path. Summaries without latencies are left out.
func Latency(path, title string, sums []report.Summary) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "requests at or below (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks125{}
	p.Y.Min, p.Y.Max = 0, 100
	p.Legend.Top, p.Legend.Left = false, false // the bottom right stays empty
	p.Add(plotter.NewGrid())
	drawn := 0
	for i, s := range sums {
		xys := cdf(s.Latencies())
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (p99 %s)", s.Workload, s.Percentiles["99"].Round(10*time.Microsecond)), l)
		drawn++
	}
	if drawn == 0 {
		return errors.New("plot: no latencies to draw")
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// cdf returns up to cdfPoints points (latency in ms, percent) of sorted
// latencies' cumulative distribution. A zero latency is drawn at 1 µs: a
// log scale has no zero.
func cdf(sorted []time.Duration) plotter.XYs {
	n := len(sorted)
	if n == 0 {
		return nil
	}
	step := max(n/cdfPoints, 1)
	var xys plotter.XYs
	for i := 0; i < n; i += step {
		xys = append(xys, point(sorted[i], i+1, n))
	}
	if last := point(sorted[n-1], n, n); xys[len(xys)-1] != last {
		xys = append(xys, last)
	}
	return xys
}

func point(d time.Duration, rank, n int) plotter.XY {
	ms := math.Max(float64(d)/float64(time.Millisecond), 0.001)
	return plotter.XY{X: ms, Y: 100 * float64(rank) / float64(n)}
}

// ticks125 marks a log axis at 1, 2 and 5 times each power of ten,
// labelled, with unlabelled minor ticks at the other integers.
type ticks125 struct{}

// Ticks implements plot.Ticker.
func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		base := math.Pow(10, e)
		for m := 1; m <= 9; m++ {
			v := float64(m) * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// Ratios draws one bar per name with its ratio (MetaStore/etcd) and a
// line at 1 (parity) into path.
func Ratios(path, title string, names []string, ratios []float64) error {
	if len(names) != len(ratios) || len(names) == 0 {
		return fmt.Errorf("plot: %d names for %d ratios", len(names), len(ratios))
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "MetaStore / etcd"
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	bars, err := plotter.NewBarChart(plotter.Values(ratios), vg.Points(24))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{R: 0x2b, G: 0x6c, B: 0xb0, A: 0xff}
	bars.LineStyle.Width = 0
	p.Add(bars)
	top := 1.0
	var at plotter.XYs
	var labels []string
	for i, r := range ratios {
		top = math.Max(top, r)
		at = append(at, plotter.XY{X: float64(i), Y: r})
		labels = append(labels, fmt.Sprintf("%.2f×", r))
	}
	p.Y.Max = top * 1.15
	lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: at, Labels: labels})
	if err != nil {
		return err
	}
	for i := range lbl.TextStyle {
		lbl.TextStyle[i].XAlign = -0.5 // centred on the bar
		lbl.TextStyle[i].YAlign = 0    // above it
	}
	p.Add(lbl)
	parity, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(ratios)) - 0.5, Y: 1}})
	if err != nil {
		return err
	}
	parity.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	parity.Color = color.Gray{Y: 0x60}
	p.Add(parity)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = -1 // right-aligned under the bar when rotated
	p.X.Tick.Label.YAlign = -0.5
	w := vg.Length(math.Max(6, 0.9*float64(len(names)))) * vg.Inch
	return p.Save(w, 5*vg.Inch, path)
}
