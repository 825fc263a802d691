package storage

// SetHashHook makes every background compaction-time hash of s call f
// first (tests hold it there). Call it before the compaction.
func SetHashHook(s *Store, f func()) { s.hashHook = f }
