//go:build !failpoints

package failpoint

// Register does nothing without the failpoints build tag.
func Register(...string) {}

// Eval does nothing without the failpoints build tag.
func Eval(string) {}

// Armed is false without the failpoints build tag.
func Armed(string) bool { return false }
