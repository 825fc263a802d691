// Command metastore-bench is a load tool with etcd benchmark's workloads
// and flag names, for any etcd v3 endpoint:
//
//	metastore-bench --endpoints 127.0.0.1:2379 --conns 10 --clients 100 \
//	    put --total 100000 --key-size 8 --val-size 256 --key-space-size 100000
//	metastore-bench range KEY --consistency s --total 100000
//	metastore-bench txn-put --total 10000 --output json
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metastore/metastore/bench"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var (
		endpoints string
		cfg       bench.Config
		output    string
		kc        bench.KeyConfig
	)
	root := &cobra.Command{
		Use:           "metastore-bench",
		Short:         "Load tool for etcd v3 endpoints (etcd benchmark's workloads and flags)",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&endpoints, "endpoints", "127.0.0.1:2379", "comma-separated gRPC endpoints")
	pf.IntVar(&cfg.Conns, "conns", 1, "total number of gRPC connections")
	pf.IntVar(&cfg.Clients, "clients", 1, "total number of gRPC clients")
	pf.IntVar(&cfg.Total, "total", 10000, "total number of requests")
	pf.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "timeout of one request")
	pf.StringVar(&output, "output", "text", "summary format: text or json")

	run := func(cmd *cobra.Command, name string, op bench.Op) error {
		if output != "text" && output != "json" {
			return fmt.Errorf("--output: %q is not text or json", output)
		}
		cfg.Endpoints = strings.Split(endpoints, ",")
		cfg.Progress = os.Stderr
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		s, err := bench.Run(ctx, cfg, name, op)
		if err != nil && s.Total == 0 {
			return err
		}
		if output == "json" {
			return s.WriteJSON(cmd.OutOrStdout())
		}
		return s.WriteText(cmd.OutOrStdout())
	}
	keyFlags := func(c *cobra.Command) {
		c.Flags().IntVar(&kc.KeySize, "key-size", 8, "key size of each request")
		c.Flags().IntVar(&kc.ValSize, "val-size", 8, "value size of each request")
		c.Flags().IntVar(&kc.KeySpaceSize, "key-space-size", 1, "maximum possible keys")
		c.Flags().BoolVar(&kc.SequentialKeys, "sequential-keys", false, "use sequential keys")
	}

	put := &cobra.Command{Use: "put", Short: "puts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, "put", bench.Put(kc)) }}
	keyFlags(put)
	txnPut := &cobra.Command{Use: "txn-put", Short: "txns of one put", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, "txn-put", bench.TxnPut(kc)) }}
	keyFlags(txnPut)

	var consistency string
	var limit int64
	rng := &cobra.Command{Use: "range KEY [END]", Short: "ranges over KEY or [KEY, END)", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			end := ""
			if len(args) == 2 {
				end = args[1]
			}
			op, err := bench.Range(args[0], end, consistency, limit)
			if err != nil {
				return err
			}
			return run(cmd, "range-"+consistency, op)
		}}
	rng.Flags().StringVar(&consistency, "consistency", "l", "linearizable (l) or serializable (s)")
	rng.Flags().Int64Var(&limit, "limit", 0, "maximum number of keys per range (0: all)")

	var ttl int64
	ka := &cobra.Command{Use: "lease-keepalive", Short: "lease keepalive round trips, one lease per connection", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, "lease-keepalive", bench.LeaseKeepAlive(ttl))
		}}
	ka.Flags().Int64Var(&ttl, "ttl", 60, "TTL of the leases")
	var lockName string
	lock := &cobra.Command{Use: "lock", Short: "mutex acquire+release under contention (etcd's concurrency.Mutex)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, "lock", bench.Lock(lockName)) }}
	lock.Flags().StringVar(&lockName, "name", "metastore-bench-lock", "the lock's key prefix")

	root.AddCommand(put, txnPut, rng, ka, lock)
	root.SetContext(context.Background())
	return root
}
