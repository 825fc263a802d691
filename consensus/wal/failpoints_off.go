//go:build !failpoints

package wal

// skipSync is false without the failpoints build tag.
func skipSync() bool { return false }
