package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/metastore/metastore/server"
)

// runWAL is `metastore wal export --data-dir DIR --out OUT`: the member's
// Raft log written as an etcd WAL in OUT/member/wal, for etcd's tools.
func runWAL(args []string, out io.Writer) int {
	if len(args) == 0 || args[0] != "export" {
		fmt.Fprintln(out, "usage: metastore wal export --data-dir <dir> --out <new dir>")
		return 2
	}
	fs := flag.NewFlagSet("wal export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := fs.String("data-dir", "", "Path to the member's data directory (only read)")
	dst := fs.String("out", "", "Directory to create; the etcd WAL goes to <out>/member/wal")
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Fprintln(out, "metastore wal export:", err)
		return 2
	}
	if *dataDir == "" || *dst == "" || fs.NArg() > 0 {
		fmt.Fprintln(out, "metastore wal export: --data-dir and --out are required, and nothing else")
		return 2
	}
	n, err := server.ExportWAL(*dataDir, *dst, nil)
	if err != nil {
		fmt.Fprintln(out, "metastore:", err)
		return 1
	}
	fmt.Fprintf(out, "exported %d entries to %s/member/wal\n", n, *dst)
	return 0
}
