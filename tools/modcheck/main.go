// Command modcheck checks and packs the workspace's modules the way the go
// command does for consumers.
//
//	modcheck zip-check DIR...          the module zip checks of each module
//	                                   (golang.org/x/mod/zip.CheckDir: reserved
//	                                   names such as aux.go on Windows, case
//	                                   collisions, invalid paths, size limits)
//	modcheck versions DIR...           fails when modules require one
//	                                   dependency directly at different
//	                                   versions
//	modcheck funcs DIR...              function sizes (lines, tests excluded)
//	                                   of each module: median, p90, longest
//	modcheck proxy OUT VERSION DIR...  zips each module at VERSION into a
//	                                   file-system module proxy at OUT
//	                                   (GOPROXY=file://OUT), from the working
//	                                   tree, so it needs no tags
//
// make verify runs zip-check; make release-check uses proxy (see
// docs/RELEASING.md).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "modcheck:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: modcheck zip-check DIR... | modcheck versions DIR... | modcheck funcs DIR... | modcheck proxy OUT VERSION DIR...")

// run runs one subcommand; reports go to w.
func run(args []string, w io.Writer) error {
	if len(args) < 1 {
		return errUsage
	}
	switch args[0] {
	case "zip-check":
		return zipCheck(args[1:])
	case "versions":
		return versions(args[1:])
	case "funcs":
		return funcSizes(w, args[1:])
	case "proxy":
		if len(args) < 3 {
			return errUsage
		}
		return proxy(args[1], args[2], args[3:])
	}
	return errUsage
}

// zipCheck reports every file of the modules at dirs that the go command
// would refuse to put in a module zip.
func zipCheck(dirs []string) error {
	bad := 0
	for _, dir := range dirs {
		files, err := zip.CheckDir(dir)
		for _, f := range files.Invalid {
			fmt.Fprintf(os.Stderr, "modcheck: %s: %v\n", f.Path, f.Err)
			bad++
		}
		if err != nil && len(files.Invalid) == 0 {
			fmt.Fprintf(os.Stderr, "modcheck: %s: %v\n", dir, err)
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d problem(s): the go command could not zip these modules, so nobody could go get them", bad)
	}
	return nil
}

// proxy writes the modules at dirs, at version, into a file-system module
// proxy rooted at out: <path>/@v/{list,VERSION.info,VERSION.mod,VERSION.zip}.
func proxy(out, version string, dirs []string) error {
	for _, dir := range dirs {
		gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			return err
		}
		path := modfile.ModulePath(gomod)
		mv := module.Version{Path: path, Version: version}
		if err := module.Check(path, version); err != nil {
			return err
		}
		esc, err := module.EscapePath(path)
		if err != nil {
			return err
		}
		vdir := filepath.Join(out, esc, "@v")
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			return err
		}
		zf, err := os.Create(filepath.Join(vdir, version+".zip"))
		if err != nil {
			return err
		}
		if err := zip.CreateFromDir(zf, mv, dir); err != nil {
			zf.Close()
			return fmt.Errorf("zip %s: %w", path, err)
		}
		if err := zf.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(vdir, version+".mod"), gomod, 0o644); err != nil {
			return err
		}
		info, _ := json.Marshal(map[string]any{"Version": version, "Time": time.Now().UTC().Format(time.RFC3339)})
		if err := os.WriteFile(filepath.Join(vdir, version+".info"), info, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(vdir, "list"), []byte(version+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// funcSizes prints, per module directory, the median, 90th percentile and
// longest function in lines (declaration to closing brace), over the
// module's non-test Go files, nested modules and testdata excluded.
func funcSizes(w io.Writer, dirs []string) error {
	fmt.Fprintln(w, "| module | functions | median | p90 | longest |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, dir := range dirs {
		var sizes []int
		longest := ""
		maxN := 0
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != dir && (d.Name() == "testdata" || fileExists(filepath.Join(p, "go.mod"))) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
				sizes = append(sizes, n)
				if n > maxN {
					maxN, longest = n, fmt.Sprintf("%s:%s", p, fd.Name.Name)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(sizes) == 0 {
			continue
		}
		sort.Ints(sizes)
		rel := strings.TrimPrefix(filepath.ToSlash(dir), "../../")
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d (%s) |\n", rel, len(sizes), sizes[len(sizes)/2], sizes[len(sizes)*9/10], maxN, filepath.Base(longest))
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// versions reports every dependency that the modules at dirs require
// directly (not // indirect) at more than one version: shared dependencies
// move together, so every module is tested with what the others use.
func versions(dirs []string) error {
	seen := map[string]map[string][]string{} // path -> version -> modules
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			return err
		}
		f, err := modfile.ParseLax(filepath.Join(dir, "go.mod"), data, nil)
		if err != nil {
			return err
		}
		for _, r := range f.Require {
			if r.Indirect || strings.HasPrefix(r.Mod.Path, "github.com/metastore/metastore/") {
				continue
			}
			if seen[r.Mod.Path] == nil {
				seen[r.Mod.Path] = map[string][]string{}
			}
			seen[r.Mod.Path][r.Mod.Version] = append(seen[r.Mod.Path][r.Mod.Version], strings.TrimPrefix(filepath.ToSlash(dir), "../../"))
		}
	}
	var bad []string
	for path, vs := range seen {
		if len(vs) > 1 {
			var parts []string
			for v, mods := range vs {
				parts = append(parts, fmt.Sprintf("%s in %s", v, strings.Join(mods, ", ")))
			}
			sort.Strings(parts)
			bad = append(bad, fmt.Sprintf("%s: %s", path, strings.Join(parts, "; ")))
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		fmt.Fprintln(os.Stderr, "modcheck: required at different versions:", b)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d dependencies required at different versions: align them (go get DEP@VERSION in each module)", len(bad))
	}
	return nil
}
