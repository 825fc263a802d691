//go:build !failpoints

package consensus

// failpoint does nothing without the failpoints build tag.
func failpoint(string) {}
