package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metastore/metastore/bench/compare"
	"github.com/metastore/metastore/bench/plot"
)

// etcdVersion is the etcd release compared against by default.
const etcdVersion = "v3.7.3"

func newCompare(g *globals) *cobra.Command {
	var (
		o            compare.Options
		etcdBin      string
		etcdVer      string
		workloads    string
		updateDoc    string
		etcdFlags    []string
		msFlags      []string
		keepDataBase bool
		recordAs     string
	)
	o.B.Name, o.A.Name = "MetaStore", "etcd"
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Run the standard workloads on etcd and MetaStore alternately and print medians and ratios",
		Long: `compare starts etcd (built from the Go module proxy unless --etcd-bin is
given) and MetaStore with the same flags on fresh data dirs on the same disk,
runs each workload on both alternately (A/B/A/B) for --rounds rounds, and
prints per-workload medians and the MetaStore/etcd throughput ratio.
With --cacert, --cert and --key both run with mutual TLS on client and
peer URLs (the certificate must be valid for 127.0.0.1 and for both
server and client use), and the load goes over TLS.
Workloads (--workloads, comma-separated; default all):
` + workloadList(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return fmt.Errorf("--output: %q is not text or json", g.output)
			}
			ws, err := compare.Select(workloads)
			if err != nil {
				return err
			}
			o.Workloads = ws
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if etcdBin == "" {
				if etcdBin, err = compare.DefaultEtcdCache(etcdVer); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "etcd %s: %s (built from the Go module proxy if missing)\n", etcdVer, etcdBin)
				if err := compare.BuildEtcd(ctx, etcdVer, etcdBin); err != nil {
					return err
				}
			}
			o.A.Bin, o.A.Args, o.B.Args = etcdBin, etcdFlags, msFlags
			if _, err := os.Stat(o.B.Bin); err != nil {
				return fmt.Errorf("--metastore-bin: %w (run make build)", err)
			}
			if o.DataDir == "" {
				if o.DataDir, err = os.MkdirTemp(".", ".bench-compare-"); err != nil {
					return err
				}
				if !keepDataBase {
					defer os.RemoveAll(o.DataDir)
				}
			}
			o.Log = cmd.ErrOrStderr()
			if g.cfg.CertFile != "" || g.cfg.TrustedCAFile != "" {
				// --cacert/--cert/--key: both servers with mutual TLS on
				// client and peer URLs, with this certificate.
				if g.cfg.CertFile == "" || g.cfg.KeyFile == "" || g.cfg.TrustedCAFile == "" {
					return fmt.Errorf("compare over TLS needs --cacert, --cert and --key")
				}
				o.TLS = &compare.TLS{CAFile: g.cfg.TrustedCAFile, CertFile: g.cfg.CertFile, KeyFile: g.cfg.KeyFile}
			}
			res, err := compare.Run(ctx, o)
			if err != nil {
				return err
			}
			if g.plot != "" {
				names, ratios := make([]string, len(res.Rows)), make([]float64, len(res.Rows))
				for i, r := range res.Rows {
					names[i], ratios[i] = r.Workload.ID, r.Ratio
				}
				title := fmt.Sprintf("%s / %s throughput (median of %d rounds)", res.B.Name, res.A.Name, res.Rounds)
				if err := plot.Ratios(g.plot, title, names, ratios); err != nil {
					return err
				}
			}
			if updateDoc != "" {
				if recordAs == "" {
					recordAs = commandLine()
				}
				if err := res.UpdateDoc(updateDoc, recordAs, g.plot); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "updated %s\n", updateDoc)
			}
			if g.output == "json" {
				return res.WriteJSON(cmd.OutOrStdout())
			}
			return res.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&etcdBin, "etcd-bin", "", "etcd binary (default: etcd --etcd-version built from the Go module proxy into the user cache dir)")
	f.StringVar(&etcdVer, "etcd-version", etcdVersion, "etcd release to build when --etcd-bin is not given")
	f.StringVar(&o.B.Bin, "metastore-bin", filepath.Join("bin", "metastore"), "metastore binary")
	f.StringVar(&workloads, "workloads", "all", "comma-separated workload IDs")
	f.IntVar(&o.Rounds, "rounds", 3, "A/B rounds")
	f.DurationVar(&o.Duration, "duration", 5*time.Second, "measured time of each workload in each round")
	f.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured warm-up before each measured run")
	f.IntVar(&o.ValSize, "val-size", 256, "value size of writes")
	f.IntVar(&o.KeySpace, "key-space-size", 100000, "distinct keys written")
	f.StringVar(&o.DataDir, "data-dir", "", "where the clusters' data dirs go (default: a temporary dir in the current directory, i.e. on its disk)")
	f.BoolVar(&keepDataBase, "keep-data-dir", false, "keep the default data dir's member logs")
	f.StringVar(&updateDoc, "update-doc", "", "rewrite this markdown file's "+compare.BeginMarker+" section with the result")
	f.StringSliceVar(&etcdFlags, "etcd-flag", nil, "extra flag for every etcd member (repeatable)")
	f.StringSliceVar(&msFlags, "metastore-flag", nil, "extra flag for every metastore member (repeatable)")
	f.StringVar(&recordAs, "record-command", "", "the command line recorded by --update-doc (default: this one)")
	return cmd
}

func newBuildEtcd() *cobra.Command {
	var version string
	cmd := &cobra.Command{
		Use:   "build-etcd",
		Short: "Build etcd --etcd-version from the Go module proxy into the user cache dir (if missing) and print its path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := compare.DefaultEtcdCache(version)
			if err != nil {
				return err
			}
			if err := compare.BuildEtcd(cmd.Context(), version, bin); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), bin)
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "etcd-version", etcdVersion, "etcd release")
	return cmd
}

func workloadList() string {
	var b strings.Builder
	for _, w := range compare.Standard {
		fmt.Fprintf(&b, "  %-12s %s\n", w.ID, w.Title)
	}
	return b.String()
}

// commandLine is how this process was invoked, for the record.
func commandLine() string {
	args := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	for i, a := range args {
		if strings.ContainsAny(a, " \t'\"") {
			args[i] = "'" + a + "'"
		}
	}
	return strings.Join(args, " ")
}
