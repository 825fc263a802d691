package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeModule writes a module at a new directory: go.mod with requires, and
// the given files.
func writeModule(t *testing.T, path, requires string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module " + path + "\n\ngo 1.26\n" + requires
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestZipCheckRefusesWhatTheGoCommandRefuses(t *testing.T) {
	ok := writeModule(t, "example.com/ok", "", map[string]string{"a.go": "package a\n"})
	if err := zipCheck([]string{ok}); err != nil {
		t.Fatalf("a clean module: %v", err)
	}
	bad := writeModule(t, "example.com/bad", "", map[string]string{"aux.go": "package bad\n"})
	if err := zipCheck([]string{ok, bad}); err == nil {
		t.Fatal("aux.go (reserved on Windows) was accepted")
	}
}

func TestVersionsRefusesDriftingDirectRequirements(t *testing.T) {
	a := writeModule(t, "example.com/a", "require example.com/dep v1.2.0\nrequire example.com/ind v1.0.0 // indirect\n", map[string]string{})
	b := writeModule(t, "example.com/b", "require example.com/dep v1.2.0\nrequire example.com/ind v1.1.0 // indirect\n", map[string]string{})
	if err := versions([]string{a, b}); err != nil {
		t.Fatalf("aligned direct requirements (indirect ones may differ): %v", err)
	}
	c := writeModule(t, "example.com/c", "require example.com/dep v1.3.0\n", map[string]string{})
	err := versions([]string{a, b, c})
	if err == nil || !strings.Contains(err.Error(), "1 dependencies") {
		t.Fatalf("drift not reported: %v", err)
	}
}

func TestProxyWritesAModuleProxyLayout(t *testing.T) {
	dir := writeModule(t, "example.com/Lib", "", map[string]string{"lib.go": "package lib\n", "sub/x.go": "package sub\n"})
	out := t.TempDir()
	if err := proxy(out, "v0.1.0", []string{dir}); err != nil {
		t.Fatal(err)
	}
	vdir := filepath.Join(out, "example.com", "!lib", "@v") // upper case is escaped
	for _, f := range []string{"list", "v0.1.0.info", "v0.1.0.mod", "v0.1.0.zip"} {
		if _, err := os.Stat(filepath.Join(vdir, f)); err != nil {
			t.Fatalf("missing %s: %v", f, err)
		}
	}
	zr, err := zip.OpenReader(filepath.Join(vdir, "v0.1.0.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	want := "example.com/Lib@v0.1.0/sub/x.go" // file paths in a zip are not escaped
	if !strings.Contains(strings.Join(names, " "), want) {
		t.Fatalf("zip holds %v, want %s", names, want)
	}
	if err := proxy(out, "not-a-version", []string{dir}); err == nil {
		t.Fatal("an invalid version was accepted")
	}
}

func TestFuncSizes(t *testing.T) {
	dir := writeModule(t, "example.com/f", "", map[string]string{
		"f.go":      "package f\n\nfunc a() {}\n\nfunc b() {\n\t_ = 1\n\t_ = 2\n}\n",
		"f_test.go": "package f\n\nfunc c() {\n\n\n\n\n\n}\n",
	})
	var buf bytes.Buffer
	if err := funcSizes(&buf, []string{dir}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "| 2 | 4 | 4 | 4 (f.go:b) |") {
		t.Fatalf("tests must be left out and sizes counted in lines:\n%s", buf.String())
	}
}

func TestRunDispatches(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"proxy", "out"}} {
		if err := run(args, &bytes.Buffer{}); err != errUsage {
			t.Errorf("run(%q) = %v, want the usage", args, err)
		}
	}
	dir := writeModule(t, "example.com/r", "", map[string]string{"r.go": "package r\n\nfunc r() {}\n"})
	var buf bytes.Buffer
	for _, args := range [][]string{{"zip-check", dir}, {"versions", dir}, {"funcs", dir}, {"proxy", t.TempDir(), "v1.0.0", dir}} {
		if err := run(args, &buf); err != nil {
			t.Errorf("run(%q): %v", args, err)
		}
	}
	if !strings.Contains(buf.String(), "| 1 | 1 | 1 | 1 (r.go:r) |") {
		t.Errorf("funcs printed:\n%s", buf.String())
	}
}

func TestBadInputIsAnError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	broken := writeModule(t, "example.com/broken", "", map[string]string{"x.go": "package x\nfunc {"})
	for name, err := range map[string]error{
		"zip-check of a missing dir": zipCheck([]string{missing}),
		"versions without go.mod":    versions([]string{missing}),
		"proxy without go.mod":       proxy(t.TempDir(), "v1.0.0", []string{missing}),
		"funcs of unparsable Go":     funcSizes(&bytes.Buffer{}, []string{broken}),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
