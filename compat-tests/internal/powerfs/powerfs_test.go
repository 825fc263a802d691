package powerfs

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func mountT(t *testing.T) (*FS, string) {
	t.Helper()
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	backing, mnt := t.TempDir(), t.TempDir()
	f, err := Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return f, mnt
}

func write(t *testing.T, path string, off int64, data string, sync bool) {
	t.Helper()
	fd, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if _, err := fd.WriteAt([]byte(data), off); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := syscall.Fdatasync(int(fd.Fd())); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCutKeepsOnlySyncedData is the file system's contract: after Cut a
// file holds what it held at its last fsync, whatever was written,
// overwritten, preallocated or truncated after it.
func TestCutKeepsOnlySyncedData(t *testing.T) {
	f, mnt := mountT(t)
	a, b, c, d := filepath.Join(mnt, "a"), filepath.Join(mnt, "b"), filepath.Join(mnt, "c"), filepath.Join(mnt, "d")
	write(t, a, 0, "durable", true)
	write(t, a, 7, "-appended", false)
	write(t, a, 0, "DUR", false) // overwrites durable bytes
	write(t, b, 0, "never synced", false)
	write(t, c, 0, "synced twice", true)
	write(t, c, 0, "SYNCED", true)
	// d: preallocated and synced, then written inside the reservation
	// (as the WAL does) and truncated, none of it synced.
	fd, err := os.OpenFile(d, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fallocate(int(fd.Fd()), 0, 0, 64); err != nil {
		t.Fatal(err)
	}
	if _, err := fd.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fd.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := fd.WriteAt([]byte("lost"), 4); err != nil {
		t.Fatal(err)
	}
	if err := fd.Truncate(6); err != nil {
		t.Fatal(err)
	}
	fd.Close()
	if got := read(t, a); got != "DURable-appended" {
		t.Fatalf("before the cut a = %q: writes must be visible", got)
	}

	lost, err := f.Cut()
	if err != nil {
		t.Fatal(err)
	}
	if lost != 3 {
		t.Errorf("Cut reverted %d files, want 3 (a, b, d)", lost)
	}
	if got := read(t, a); got != "durable" {
		t.Errorf("a = %q after the cut, want %q", got, "durable")
	}
	if got := read(t, b); got != "" {
		t.Errorf("b = %q after the cut, want it empty", got)
	}
	if got := read(t, c); got != "SYNCED twice" {
		t.Errorf("c = %q after the cut, want %q", got, "SYNCED twice")
	}
	want := append([]byte("head"), make([]byte, 60)...)
	if got := read(t, d); !bytes.Equal([]byte(got), want) {
		t.Errorf("d = %q after the cut, want %q", got, want)
	}
	// The mount works on after the cut, and a rename is durable at once.
	write(t, b, 0, "again", true)
	if err := os.Rename(b, filepath.Join(mnt, "e")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Cut(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(mnt, "e")); got != "again" {
		t.Errorf("e = %q after a second cut, want %q", got, "again")
	}
}
