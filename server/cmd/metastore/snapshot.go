package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"

	"github.com/metastore/metastore/server"
)

// runSnapshot is `metastore snapshot restore SNAPSHOT --data-dir DIR`:
// etcdutl's restore, into a MetaStore data dir. It takes etcdutl's flags;
// the membership ones are checked, and take effect when the member starts
// with the same flags (its --initial-cluster bootstraps the new cluster,
// as a restored etcd member's does).
func runSnapshot(args []string, out io.Writer) int {
	if len(args) == 0 || args[0] != "restore" {
		fmt.Fprintln(out, "usage: metastore snapshot restore <snapshot file> --data-dir <dir> [--skip-hash-check]")
		return 2
	}
	fs := flag.NewFlagSet("snapshot restore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := fs.String("data-dir", "", "Path to the data directory to create")
	skip := fs.Bool("skip-hash-check", false, "Ignore the snapshot's integrity hash (required for a db copied from a data directory)")
	name := fs.String("name", "default", "Human-readable name for this member (checked against --initial-cluster)")
	initial := fs.String("initial-cluster", "default=http://localhost:2380", "Initial cluster configuration (checked; give it to metastore when it starts)")
	fs.String("initial-cluster-token", "etcd-cluster", "Initial cluster token (give it to metastore when it starts)")
	fs.String("initial-advertise-peer-urls", "http://localhost:2380", "This member's peer URLs (give them to metastore when it starts)")
	for _, f := range []string{"wal-dir", "bump-revision", "mark-compacted"} {
		fs.String(f, "", "not supported by MetaStore")
	}
	// Flags may come before or after the snapshot path, as with etcdutl.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			fmt.Fprintln(out, "metastore snapshot restore:", err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintln(out, "metastore snapshot restore: one snapshot file path is required")
		return 2
	}
	for _, f := range []string{"wal-dir", "bump-revision", "mark-compacted"} {
		if v := fs.Lookup(f).Value.String(); v != "" {
			fmt.Fprintf(out, "metastore snapshot restore: --%s is not supported\n", f)
			return 2
		}
	}
	if !clusterHasName(*initial, *name) {
		fmt.Fprintf(out, "metastore snapshot restore: couldn't find local name %q in the initial cluster configuration\n", *name)
		return 2
	}
	if *dataDir == "" {
		*dataDir = *name + ".etcd"
	}
	lg, _ := zap.NewProduction()
	defer lg.Sync()
	if err := server.RestoreSnapshot(server.RestoreConfig{SnapshotPath: pos[0], DataDir: *dataDir, SkipHashCheck: *skip, Logger: lg}); err != nil {
		fmt.Fprintln(out, "metastore:", err)
		return 1
	}
	return 0
}

func clusterHasName(initial, name string) bool {
	for _, p := range strings.Split(initial, ",") {
		if n, _, ok := strings.Cut(strings.TrimSpace(p), "="); ok && n == name {
			return true
		}
	}
	return false
}
