package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metastore/metastore/bench/compare"
)

func newJoin(g *globals) *cobra.Command {
	var (
		etcdBin, msBin, etcdVer, dataDir string
		keys                             []int
		valSize                          int
		replace                          bool
		window                           time.Duration
		serverFlags                      []string
		only                             string
	)
	cmd := &cobra.Command{
		Use:   "join",
		Short: "Measure a member joining (MemberAdd latency, time to serve) on etcd and MetaStore side by side",
		Long: `join starts a one-member cluster of etcd and of MetaStore (same flags, same
disk), writes --keys keys (each count in turn; values of --val-size bytes),
adds a learner and starts it, and reports how long MemberAdd took and the
time from the new member's process start until it serves the last key
(a serializable read of its own state). With --replace it instead runs a
put load (16 clients) on three members and replaces one (remove, add a
voter, start it, caught up), reporting the write throughput before,
during and after.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			var err error
			if etcdBin == "" {
				if etcdBin, err = compare.DefaultEtcdCache(etcdVer); err != nil {
					return err
				}
				if err := compare.BuildEtcd(ctx, etcdVer, etcdBin); err != nil {
					return err
				}
			}
			if _, err := os.Stat(msBin); err != nil {
				return fmt.Errorf("--metastore-bin: %w (run make build)", err)
			}
			if dataDir == "" {
				if dataDir, err = os.MkdirTemp(".", ".bench-join-"); err != nil {
					return err
				}
				defer os.RemoveAll(dataDir)
			}
			var targets []compare.Target
			for _, t := range []compare.Target{{Name: "etcd", Bin: etcdBin, Args: serverFlags}, {Name: "MetaStore", Bin: msBin, Args: serverFlags}} {
				if only == "" || strings.EqualFold(only, t.Name) {
					targets = append(targets, t)
				}
			}
			out := cmd.OutOrStdout()
			var results []any
			if replace {
				fmt.Fprintln(out, "| keys | server | puts/s before | during replacement | after | replacement took | failed puts |")
				fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
			} else {
				fmt.Fprintln(out, "| keys | server | MemberAdd | start → serving |")
				fmt.Fprintln(out, "|---|---|---|---|")
			}
			for _, n := range keys {
				for _, t := range targets {
					if replace {
						r, err := compare.MeasureReplace(ctx, t, dataDir, n, valSize, window)
						if err != nil {
							return fmt.Errorf("%s, %d keys: %w", t.Name, n, err)
						}
						results = append(results, r)
						fmt.Fprintf(out, "| %s | %s | %.0f | %.0f | %.0f | %v | %d |\n", count(n), t.Name, r.Before, r.During, r.After,
							r.Took.Round(time.Millisecond), r.Failed)
						continue
					}
					r, err := compare.MeasureJoin(ctx, t, dataDir, n, valSize)
					if err != nil {
						return fmt.Errorf("%s, %d keys: %w", t.Name, n, err)
					}
					results = append(results, r)
					fmt.Fprintf(out, "| %s | %s | %v | %v |\n", count(n), t.Name, r.AddLatency.Round(100*time.Microsecond), r.ToServing.Round(time.Millisecond))
				}
			}
			if g.output == "json" {
				return json.NewEncoder(out).Encode(results)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&etcdBin, "etcd-bin", "", "etcd binary (default: etcd --etcd-version built from the Go module proxy into the user cache)")
	f.StringVar(&etcdVer, "etcd-version", etcdVersion, "etcd release to build when --etcd-bin is not given")
	f.StringVar(&msBin, "metastore-bin", "bin/metastore", "MetaStore binary")
	f.StringVar(&dataDir, "data-dir", "", "directory for the data dirs (default: a fresh one here, removed after)")
	f.IntSliceVar(&keys, "keys", []int{0, 100000}, "key counts to measure")
	f.IntVar(&valSize, "val-size", 256, "value size in bytes")
	f.BoolVar(&replace, "replace", false, "measure write throughput during a member replacement instead")
	f.DurationVar(&window, "window", 5*time.Second, "with --replace: how long to measure before and after")
	f.StringVar(&only, "only", "", "measure only this server (etcd or metastore)")
	f.StringArrayVar(&serverFlags, "server-flag", nil, "extra flag for every member of both servers (repeatable), e.g. --server-flag=--snapshot-count=1000")
	return cmd
}

// count prints 1000000 as 1 M and 100000 as 100 k.
func count(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return strconv.Itoa(n/1000000) + " M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + " k"
	}
	return strings.TrimSpace(strconv.Itoa(n))
}
