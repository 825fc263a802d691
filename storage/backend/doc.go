// Package backend defines the engine contract the MVCC store is built on: an
// ordered byte-key store with point reads, bounded forward and reverse
// iteration, atomic write batches, consistent snapshots, range deletion,
// manual compaction of a key range and size statistics.
//
// The package owns only the contract and its sentinel errors. Implementations
// live in sibling packages (storage/memory, storage/rocksdb) and are checked
// by the conformance suite in storage/backend/backendtest. Nothing here knows
// about revisions or MVCC; see the storage package for that.
package backend
