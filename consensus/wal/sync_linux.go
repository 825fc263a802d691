package wal

import (
	"os"
	"syscall"
)

// preallocate reserves size bytes for f (reading as zeros), so appends
// within them change no file size and fdatasync flushes data only — about
// 30% cheaper than fsync of a growing file (design 003). A file system
// without fallocate just grows the file as before.
func preallocate(f *os.File, size int64) {
	_ = syscall.Fallocate(int(f.Fd()), 0, 0, size)
}

// datasync flushes f's data (and the metadata needed to read it back).
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
