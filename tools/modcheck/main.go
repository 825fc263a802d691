// Command modcheck runs the go command's module zip checks
// (golang.org/x/mod/zip.CheckDir: reserved file names such as aux.go on
// Windows, case-folding collisions, invalid paths, size limits) over each
// module directory given, so that a module nobody can `go get` fails
// `make verify` instead of its consumers. Usage: modcheck DIR...
package main

import (
	"fmt"
	"os"

	"golang.org/x/mod/zip"
)

func main() {
	bad := false
	for _, dir := range os.Args[1:] {
		files, err := zip.CheckDir(dir)
		if err != nil && len(files.Invalid) == 0 && len(files.Omitted) == 0 {
			fmt.Fprintf(os.Stderr, "modcheck: %s: %v\n", dir, err)
			bad = true
			continue
		}
		for _, f := range files.Invalid {
			fmt.Fprintf(os.Stderr, "modcheck: %s: %v\n", f.Path, f.Err)
			bad = true
		}
	}
	if bad {
		os.Exit(1)
	}
}
