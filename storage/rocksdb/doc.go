// Package rocksdb is the persistent storage/backend engine, on RocksDB
// through github.com/linxGnu/grocksdb (linked against the system
// librocksdb, 7.8.3 on Debian bookworm).
//
// Everything tied to grocksdb — option objects, slices that must be freed,
// snapshot and iterator lifetimes — stays inside this package. The engine uses
// RocksDB's default column family only: the MVCC layer separates its key
// spaces by a one-byte prefix, which keeps batches, snapshots and iterators
// trivially consistent across them (see docs/design/001-storage-layout.md).
//
// Debian's RocksDB is built with assertions on; this package destroys
// iterators and releases snapshots before it closes the DB, and Close waits
// for open snapshots to be released.
package rocksdb
