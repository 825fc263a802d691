package compare

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes r's table for a terminal.
func (r Result) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n%s vs %s — medians of %d rounds of %s each\n\n", r.A.Name, r.B.Name, r.Rounds, r.Duration)
	fmt.Fprintf(tw, "workload\t%s ops/s\t%s ops/s\tratio\tp99 %s\tp99 %s\tserver CPU/op\tclient CPU/op\terrors\n", r.A.Name, r.B.Name, r.A.Name, r.B.Name)
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f×\t%s\t%s\t%s / %s\t%s / %s\t%d / %d\n", row.Workload.Title,
			num(row.A.Median), num(row.B.Median), row.Ratio, ms(row.A.MedianP99), ms(row.B.MedianP99),
			us(row.A.ServerCPUPerOp), us(row.B.ServerCPUPerOp), us(row.A.ClientCPUPerOp), us(row.B.ClientCPUPerOp),
			row.A.Errors, row.B.Errors)
	}
	return tw.Flush()
}

// num formats n with thousands separators, no decimals.
func num(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Markdown renders r for docs/benchmarks.md: how and where it was
// measured, and the table. command is the command line that produced it;
// plot, if not empty, is a link to the ratio plot relative to the
// document.
func (r Result) Markdown(command, plot string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s with\n\n```sh\n%s\n```\n\n", r.Date.Format("2006-01-02"), command)
	fmt.Fprintf(&b, "- machine: %s\n", r.Machine)
	fmt.Fprintf(&b, "- A: %s — %s\n- B: %s — %s\n", r.A.Name, r.A.Ver, r.B.Name, r.B.Ver)
	fmt.Fprintf(&b, "- %d rounds A/B/A/B, each target alone on a fresh cluster (fresh data dirs on the same disk, loopback, the same etcd flags), each workload measured for %s after a warm-up; 8-byte sequential keys over 100,000, 256-byte values, one key for the ranges; the load generator runs on the same machine. Figures: median of the rounds (each round's in parentheses), ratio = MetaStore median / etcd median, median of the rounds' p99; CPU/op = CPU time (user + system) per request of all members (server) and of the load generator (client), medians.\n\n", r.Rounds, r.Duration)
	fmt.Fprintf(&b, "| workload | %s ops/s | %s ops/s | ratio | p99 %s / %s | server CPU/op %s / %s | client CPU/op |\n|---|---|---|---|---|---|---|\n",
		r.A.Name, r.B.Name, r.A.Name, r.B.Name, r.A.Name, r.B.Name)
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s (%s) | %s (%s) | **%.2f×** | %s / %s | %s / %s | %s / %s |\n", row.Workload.Title,
			num(row.A.Median), runs(row.A.Throughput), num(row.B.Median), runs(row.B.Throughput), row.Ratio,
			strings.TrimSuffix(ms(row.A.MedianP99), " ms"), ms(row.B.MedianP99),
			strings.TrimSuffix(us(row.A.ServerCPUPerOp), " µs"), us(row.B.ServerCPUPerOp),
			strings.TrimSuffix(us(row.A.ClientCPUPerOp), " µs"), us(row.B.ClientCPUPerOp))
	}
	for _, row := range r.Rows {
		if row.A.Errors+row.B.Errors > 0 {
			fmt.Fprintf(&b, "\nErrors in %s: %s %d, %s %d.\n", row.Workload.ID, r.A.Name, row.A.Errors, r.B.Name, row.B.Errors)
		}
	}
	if plot != "" {
		fmt.Fprintf(&b, "\n![%s / %s throughput ratio per workload](%s)\n", r.B.Name, r.A.Name, plot)
	}
	return b.String()
}

func runs(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = num(x)
	}
	return strings.Join(parts, " / ")
}

// Doc markers delimit the section UpdateDoc rewrites.
const (
	BeginMarker = "<!-- bench-compare:begin -->"
	EndMarker   = "<!-- bench-compare:end -->"
)

// ReplaceSection returns doc with the text between BeginMarker and
// EndMarker replaced by section.
func ReplaceSection(doc, section string) (string, error) {
	i := strings.Index(doc, BeginMarker)
	j := strings.Index(doc, EndMarker)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %s … %s section", BeginMarker, EndMarker)
	}
	return doc[:i+len(BeginMarker)] + "\n" + strings.TrimSpace(section) + "\n" + doc[j:], nil
}

// UpdateDoc rewrites path's comparison section with r. plotPath, if not
// empty, is linked relative to the document.
func (r Result) UpdateDoc(path, command, plotPath string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	link := ""
	if plotPath != "" {
		absDoc, err1 := filepath.Abs(filepath.Dir(path))
		absPlot, err2 := filepath.Abs(plotPath)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if link, err = filepath.Rel(absDoc, absPlot); err != nil {
			return err
		}
	}
	out, err := ReplaceSection(string(data), r.Markdown(command, filepath.ToSlash(link)))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
