package server

import "time"

// SetRevisionCompactInterval shortens revision-mode auto-compaction for
// tests and returns a function restoring it.
func SetRevisionCompactInterval(d time.Duration) func() {
	old := revisionCompactInterval
	revisionCompactInterval = d
	return func() { revisionCompactInterval = old }
}
