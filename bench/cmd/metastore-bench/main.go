// Command metastore-bench is a load tool with etcd benchmark's workloads
// and flag names, for any etcd v3 endpoint, and a side-by-side comparison
// of MetaStore with etcd:
//
//	metastore-bench --endpoints 127.0.0.1:2379 --conns 10 --clients 100 \
//	    put --total 100000 --key-size 8 --val-size 256 --key-space-size 100000
//	metastore-bench range KEY --consistency s --total 100000 --plot lat.png
//	metastore-bench txn-mixed KEY --rw-ratio 4 --output json
//	metastore-bench watch --streams 10 --watch-per-stream 100 --put-total 1000
//	metastore-bench compare --metastore-bin bin/metastore --rounds 3
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/metastore/metastore/bench"
	"github.com/metastore/metastore/bench/plot"
	"github.com/metastore/metastore/bench/report"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		os.Exit(1)
	}
}

// globals are the root command's flags.
type globals struct {
	endpoints []string
	cfg       bench.Config
	user      string
	output    string
	plot      string
}

func newRoot() *cobra.Command {
	var g globals
	root := &cobra.Command{
		Use:          "metastore-bench",
		Short:        "Load tool for etcd v3 endpoints (etcd benchmark's workloads and flags) and side-by-side comparison with etcd",
		SilenceUsage: true,
	}
	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.endpoints, "endpoints", []string{"127.0.0.1:2379"}, "gRPC endpoints")
	pf.IntVar(&g.cfg.Conns, "conns", 1, "total number of gRPC connections")
	pf.IntVar(&g.cfg.Clients, "clients", 1, "total number of gRPC clients")
	pf.IntVar(&g.cfg.Total, "total", 10000, "total number of requests")
	pf.DurationVar(&g.cfg.Timeout, "timeout", 10*time.Second, "timeout of one request")
	pf.DurationVar(&g.cfg.DialTimeout, "dial-timeout", 5*time.Second, "dial timeout for client connections")
	pf.BoolVar(&g.cfg.TargetLeader, "target-leader", false, "connect only to the leader node")
	pf.StringVar(&g.cfg.CertFile, "cert", "", "identify HTTPS client using this SSL certificate file")
	pf.StringVar(&g.cfg.KeyFile, "key", "", "identify HTTPS client using this SSL key file")
	pf.StringVar(&g.cfg.TrustedCAFile, "cacert", "", "verify certificates of HTTPS-enabled servers using this CA bundle")
	pf.BoolVar(&g.cfg.InsecureSkipTLSVerify, "insecure-skip-tls-verify", false, "skip server certificate verification (TLS without verification)")
	pf.StringVar(&g.user, "user", "", "username[:password] for authentication (prompt if password is not supplied)")
	pf.StringVar(&g.cfg.Password, "password", "", "password for authentication (if this option is used, --user option shouldn't include password)")
	pf.StringVar(&g.output, "output", "text", "summary format: text or json")
	pf.BoolVar(&g.cfg.Sample, "sample", false, "add a per-second timeline (requests finished, slowest) to the summary")
	pf.IntVar(&g.cfg.SampleEvery, "sample-every", 0, "add the throughput and p99 of every N requests, in the order they finished (is a long run flat?)")
	pf.StringVar(&g.plot, "plot", "", "also draw the latency distribution (compare: the ratios) into this file (.png, .svg, .pdf)")

	root.AddCommand(workloadCommands(&g)...)
	root.AddCommand(newCompare(&g), newJoin(&g), newBuildEtcd())
	root.SetContext(context.Background())
	return root
}

// prepare checks the global flags and completes g.cfg.
func (g *globals) prepare(cmd *cobra.Command) error {
	if g.output != "text" && g.output != "json" {
		return fmt.Errorf("--output: %q is not text or json", g.output)
	}
	g.cfg.Endpoints = g.endpoints
	g.cfg.Progress = os.Stderr
	g.cfg.Errors = os.Stderr
	if g.user != "" {
		name, pass, hasPass := strings.Cut(g.user, ":")
		switch {
		case hasPass && g.cfg.Password != "":
			return errors.New("--user: password given both in --user and --password")
		case hasPass:
			g.cfg.Password = pass
		case g.cfg.Password == "":
			p, err := promptPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			g.cfg.Password = p
		}
		g.cfg.Username = name
	} else if g.cfg.Password != "" {
		return errors.New("--password: needs --user")
	}
	return nil
}

// promptPassword reads a password from the terminal, as etcd's tools do.
func promptPassword(in io.Reader, out io.Writer) (string, error) {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("--user: no password (use --user name:password or --password)")
	}
	fmt.Fprint(out, "Password: ")
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(out)
	return string(p), err
}

// emit writes the summaries in the chosen format and draws the plot.
func (g *globals) emit(cmd *cobra.Command, title string, sums []report.Summary) error {
	if g.plot != "" {
		if err := plot.Latency(g.plot, title, sums); err != nil {
			return err
		}
	}
	if g.output == "json" {
		return report.WriteJSON(cmd.OutOrStdout(), sums)
	}
	for _, s := range sums {
		if err := s.WriteText(cmd.OutOrStdout()); err != nil {
			return err
		}
	}
	return nil
}

// workloadCommands are etcd benchmark's workloads.
func workloadCommands(g *globals) []*cobra.Command {
	var kc bench.KeyConfig
	run := func(cmd *cobra.Command, name string, op bench.Op, opErr error) error {
		if opErr != nil {
			return opErr
		}
		if err := g.prepare(cmd); err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		sums, err := bench.Run(ctx, g.cfg, name, op)
		if len(sums) == 0 || sums[0].Total == 0 {
			if err == nil {
				err = errors.New("no request finished")
			}
			return err
		}
		if err := g.emit(cmd, name, sums); err != nil {
			return err
		}
		if errors.Is(err, bench.ErrGaveUp) {
			return err // after the partial summary
		}
		return allFailed(sums[0])
	}
	keyFlags := func(c *cobra.Command) {
		c.Flags().IntVar(&kc.KeySize, "key-size", 8, "key size of each request")
		c.Flags().IntVar(&kc.ValSize, "val-size", 8, "value size of each request")
		c.Flags().IntVar(&kc.KeySpaceSize, "key-space-size", 1, "maximum possible keys")
		c.Flags().BoolVar(&kc.SequentialKeys, "sequential-keys", false, "use sequential keys")
	}
	rateFlag := func(c *cobra.Command) {
		c.Flags().IntVar(&g.cfg.Rate, "rate", 0, "maximum requests per second (0 is no limit)")
	}

	put := &cobra.Command{Use: "put", Short: "Benchmark put", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, "put", bench.Put(kc), nil) }}
	keyFlags(put)
	rateFlag(put)
	txnPut := &cobra.Command{Use: "txn-put", Short: "Benchmark txn-put (a txn of one put)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, "txn-put", bench.TxnPut(kc), nil) }}
	keyFlags(txnPut)
	rateFlag(txnPut)

	var consistency string
	var limit int64
	rng := &cobra.Command{Use: "range KEY [END]", Short: "Benchmark range over KEY or [KEY, END)", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := bench.Range(args[0], arg(args, 1), consistency, limit)
			return run(cmd, "range-"+consistency, op, err)
		}}
	rng.Flags().StringVar(&consistency, "consistency", "l", "linearizable (l) or serializable (s)")
	rng.Flags().Int64Var(&limit, "limit", 0, "maximum number of keys per range (0: all)")
	rateFlag(rng)

	var rwRatio float64
	var mixedLimit int64
	var mixedConsistency string
	mixed := &cobra.Command{Use: "txn-mixed KEY [END]", Short: "Benchmark a mixed load of txn-put & txn-range", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := bench.TxnMixed(kc, rwRatio, args[0], arg(args, 1), mixedConsistency, mixedLimit)
			return run(cmd, "txn-mixed", op, err)
		}}
	keyFlags(mixed)
	rateFlag(mixed)
	mixed.Flags().Float64Var(&rwRatio, "rw-ratio", 1, "read/write ops ratio")
	mixed.Flags().Int64Var(&mixedLimit, "limit", 1000, "read operation range result limit")
	mixed.Flags().StringVar(&mixedConsistency, "consistency", "l", "read consistency: linearizable (l) or serializable (s)")

	var ttl int64
	ka := &cobra.Command{Use: "lease-keepalive", Short: "Benchmark lease keepalive round trips, one lease per connection", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, "lease-keepalive", bench.LeaseKeepAlive(ttl), nil)
		}}
	ka.Flags().Int64Var(&ttl, "ttl", 60, "TTL of the leases")
	var expTTL int64
	var expPoll, expTimeout time.Duration
	exp := &cobra.Command{Use: "lease-expiry", Short: "Grant --total leases, then measure how fast the server revokes them once they expire", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.prepare(cmd); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			conns, err := bench.Dial(ctx, g.cfg)
			if err != nil {
				return err
			}
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			sums, err := bench.RunOn(ctx, conns, g.cfg, "lease-grant", bench.LeaseGrant(expTTL))
			if err != nil {
				return err
			}
			if err := allFailed(sums[0]); err != nil {
				return err
			}
			due := time.Now().Add(time.Duration(expTTL) * time.Second)
			e, err := bench.WaitExpiry(ctx, conns[0], due, expPoll, expTimeout)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
					Grant  report.Summary `json:"grant"`
					Expiry bench.Expiry   `json:"expiry"`
				}{sums[0], e})
			}
			if err := sums[0].WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			return e.WriteText(cmd.OutOrStdout())
		}}
	exp.Flags().Int64Var(&expTTL, "ttl", 5, "TTL of the leases")
	exp.Flags().DurationVar(&expPoll, "poll", 200*time.Millisecond, "how often to list the leases while they expire")
	exp.Flags().DurationVar(&expTimeout, "expiry-timeout", 30*time.Minute, "give up when leases are still alive this long after the last was due")
	var lockName string
	var serverSide bool
	lock := &cobra.Command{Use: "lock", Short: "Benchmark mutex acquire+release under contention (etcd's concurrency.Mutex, or with --server-side the server's Lock service)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if serverSide {
				return run(cmd, "lock", bench.ServerLock(lockName), nil)
			}
			return run(cmd, "lock", bench.Lock(lockName), nil)
		}}
	lock.Flags().StringVar(&lockName, "name", "metastore-bench-lock", "the lock's key prefix")
	lock.Flags().BoolVar(&serverSide, "server-side", false, "lock through the server's Lock service (v3lockpb Lock/Unlock) instead of client-side")

	return append([]*cobra.Command{put, txnPut, rng, mixed, ka, exp, lock}, watchCommands(g)...)
}

func watchCommands(g *globals) []*cobra.Command {
	runWatch := func(cmd *cobra.Command, name string, wc bench.WatchConfig) error {
		if err := g.prepare(cmd); err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		sums, err := bench.Watch(ctx, g.cfg, name, wc)
		if len(sums) > 0 {
			if eerr := g.emit(cmd, name, sums); eerr != nil {
				return eerr
			}
		}
		if err != nil {
			return err
		}
		return allFailed(sums[len(sums)-1])
	}
	var wc bench.WatchConfig
	watch := &cobra.Command{Use: "watch", Short: "Benchmark watch: creation, then event delivery under puts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWatch(cmd, "watch", wc) }}
	f := watch.Flags()
	f.IntVar(&wc.Streams, "streams", 10, "total watch streams")
	f.IntVar(&wc.WatchersPerStream, "watch-per-stream", 100, "total watchers per stream")
	f.IntVar(&wc.WatchedKeys, "watched-key-total", 1, "total number of keys to be watched")
	f.IntVar(&wc.PutRate, "put-rate", 0, "number of keys to put per second (0 is no limit)")
	f.IntVar(&wc.PutTotal, "put-total", 1000, "number of put requests")
	f.IntVar(&wc.KeySize, "key-size", 32, "key size of watch request")
	f.IntVar(&wc.ValSize, "val-size", 16, "value size of put request (at least 16)")
	f.BoolVar(&wc.PrevKV, "prevkv", false, "watchers ask for the previous key-value")

	var wl bench.WatchConfig
	wl.WaitEach = true
	latency := &cobra.Command{Use: "watch-latency", Short: "Benchmark watch latency: every put waits until each watcher got it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWatch(cmd, "watch-latency", wl) }}
	f = latency.Flags()
	f.IntVar(&wl.PutTotal, "put-total", 1000, "total number of put requests")
	f.IntVar(&wl.PutRate, "put-rate", 100, "number of keys to put per second")
	f.IntVar(&wl.Streams, "streams", 10, "total watch streams")
	f.IntVar(&wl.WatchersPerStream, "watchers-per-stream", 10, "total watchers per stream")
	f.IntVar(&wl.KeySize, "key-size", 32, "key size of watch request")
	f.IntVar(&wl.ValSize, "val-size", 32, "value size of put request (at least 16)")
	f.BoolVar(&wl.PrevKV, "prevkv", false, "watchers ask for the previous key-value")
	return []*cobra.Command{watch, latency}
}

// allFailed is an error when no request of s succeeded: the tool exits
// non-zero after printing the summary (with the errors' distribution).
func allFailed(s report.Summary) error {
	if s.Total > 0 && s.Errors == s.Total {
		return fmt.Errorf("all %d requests failed", s.Total)
	}
	return nil
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}
