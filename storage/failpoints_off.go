//go:build !failpoints

package storage

// failpoint does nothing without the failpoints build tag.
func failpoint(string) {}
