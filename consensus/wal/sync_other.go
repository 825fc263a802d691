//go:build !linux

package wal

import "os"

func preallocate(*os.File, int64) {}

func datasync(f *os.File) error { return f.Sync() }
