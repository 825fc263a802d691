package server

import (
	"time"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/backend"
)

// SetRevisionCompactInterval shortens revision-mode auto-compaction for
// tests and returns a function restoring it.
func SetRevisionCompactInterval(d time.Duration) func() {
	old := revisionCompactInterval
	revisionCompactInterval = d
	return func() { revisionCompactInterval = old }
}

// WithEngineWrapper wraps every engine the server opens (fault injection).
func WithEngineWrapper(w func(backend.Backend) backend.Backend) Option {
	return func(s *Server) { s.wrapEngine = w }
}

// SetHealthInterval shortens how long a peer link must be up to count for
// --strict-reconfig-check, and returns a function restoring it.
func SetHealthInterval(d time.Duration) func() {
	old := healthInterval
	healthInterval = d
	return func() { healthInterval = old }
}

// StoreForTest returns the member's store: tests write to it directly to
// make a member diverge (corruption checks).
func (s *Server) StoreForTest() *storage.Store { return s.store.Load() }

// CheckEtcdStorageVersion is checkEtcdStorageVersion.
var CheckEtcdStorageVersion = checkEtcdStorageVersion
