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
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/metastore/metastore/server"
)

// usage is the hint printed after a flag error, as etcd prints its own.
const usage = `Usage:

  metastore [flags]
    Start a MetaStore server (etcd's flags; metastore -h lists them).

  metastore --version
    Show the version of MetaStore and of the etcd it emulates.

  metastore -h | --help
    Show the flags.

  metastore --config-file FILE
    Start with the flags in a YAML file; other flags and environment variables are then ignored.

  metastore snapshot restore FILE --data-dir DIR [--name ... --initial-cluster ...]
    Restore a snapshot (etcd's format) into a new data dir.

  metastore wal export --data-dir DIR --out NEWDIR
    Write the member's Raft log as an etcd WAL (NEWDIR/member/wal) for etcd's tools.

  metastore gateway start --endpoints ...
    Run etcd's stateless TCP gateway.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "gateway" {
		return runGateway(args[1:], os.Stderr)
	}
	if len(args) > 0 && args[0] == "snapshot" {
		return runSnapshot(args[1:], os.Stderr)
	}
	if len(args) > 0 && args[0] == "wal" {
		return runWAL(args[1:], os.Stderr)
	}
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("metastore", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line below
	cfg.AddFlags(fs)
	version := fs.Bool("version", false, "Print the version and exit.")
	configFile := fs.String("config-file", "", "Path to the server configuration file (YAML, flag names as keys). Note that if a configuration file is provided, other command line flags and environment variables will be ignored.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintln(os.Stderr, "metastore:", err)
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "metastore: unexpected argument %q\n", fs.Arg(0))
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	if *version {
		fmt.Printf("etcd Version: %s\nMetaStore Version: %s\nGo Version: %s\nGo OS/Arch: %s/%s\n",
			cfg.EmulatedEtcdVersion, server.MetaStoreVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	}
	var warnings []string
	if *configFile != "" {
		// As etcd: the file replaces every other flag and variable.
		path := *configFile
		cfg = server.DefaultConfig()
		fs = flag.NewFlagSet("metastore", flag.ContinueOnError)
		cfg.AddFlags(fs)
		var err error
		if warnings, err = server.LoadConfigFile(fs, path); err != nil {
			fmt.Fprintln(os.Stderr, "metastore:", err)
			return 2
		}
	} else if err := server.ApplyEnv(fs); err != nil {
		fmt.Fprintln(os.Stderr, "metastore:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "metastore:", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 2
	}
	lg, err := newLogger(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "metastore:", err)
		return 2
	}
	defer lg.Sync()
	for _, w := range append(warnings, cfg.Warnings()...) {
		lg.Warn(w)
	}
	s, err := server.New(cfg, lg)
	if err != nil {
		// One line, no stack trace: the error says what is wrong.
		lg.WithOptions(zap.AddStacktrace(zapcore.FatalLevel)).Error("failed to start", zap.Error(err))
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case <-sig:
		lg.Info("received signal; shutting down")
	case <-s.Done():
	}
	s.Stop()
	if err := s.Err(); err != nil {
		// The member could not apply or persist a committed entry: it
		// stopped before applying anything after it, and replays it on
		// restart.
		lg.Error("member stopped; restart it to replay from its durable state", zap.Error(err))
		return 1
	}
	return 0
}

// newLogger builds etcd's zap logger: --log-level, --log-format and
// --log-outputs ("default" is stderr, as etcd outside systemd).
func newLogger(c server.Config) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Encoding = c.LogFormat
	var outs []string
	for _, o := range strings.Split(c.LogOutputs, ",") {
		switch o = strings.TrimSpace(o); o {
		case "default", "":
			o = "stderr"
		}
		outs = append(outs, o)
	}
	cfg.OutputPaths, cfg.ErrorOutputPaths = outs, outs
	cfg.Sampling = nil
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	lg, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("--log-outputs: %w", err)
	}
	return lg, nil
}
