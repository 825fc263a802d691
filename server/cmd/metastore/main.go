// Command metastore is the MetaStore server: a drop-in for the etcd binary
// with etcd's flags and ETCD_* environment variables.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/metastore/metastore/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("metastore", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line below
	cfg.AddFlags(fs)
	version := fs.Bool("version", false, "Print the version and exit.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintln(os.Stderr, "metastore:", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "metastore: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *version {
		fmt.Printf("etcd Version: %s\nMetaStore Version: %s\nGo Version: %s\nGo OS/Arch: %s/%s\n",
			server.EtcdVersion, server.MetaStoreVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	}
	if err := server.ApplyEnv(fs); err != nil {
		fmt.Fprintln(os.Stderr, "metastore:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "metastore:", err)
		return 2
	}
	lg, err := newLogger(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "metastore: --log-level:", err)
		return 2
	}
	defer lg.Sync()
	s, err := server.New(cfg, lg)
	if err != nil {
		lg.Error("failed to start", zap.Error(err))
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	lg.Info("received signal; shutting down")
	s.Stop()
	return 0
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	return cfg.Build()
}
