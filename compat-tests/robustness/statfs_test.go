package robustness

import "syscall"

// fsStat is a file system's statfs(2).
type fsStat struct{ s syscall.Statfs_t }

func (f *fsStat) of(dir string) error { return syscall.Statfs(dir, &f.s) }

// free is the bytes an unprivileged writer may still use.
func (f *fsStat) free() int64 { return int64(f.s.Bavail) * f.s.Bsize }
