// Package storage is an MVCC key-value store with etcd v3's semantics
// exactly, over a pluggable ordered-key engine (storage/backend): RocksDB
// (storage/rocksdb) for real data, an in-memory B-tree (storage/memory) for
// tests and ephemeral use.
//
// # Semantics
//
// One global revision counts write transactions. Every change inside a
// transaction gets the revision (main, sub): main is the transaction's
// revision, sub counts its changes from 0. Each key carries create_revision,
// mod_revision, version and lease; deleting a key writes a tombstone and ends
// its generation, so re-creating it starts again at version 1 with a new
// create_revision:
//
//	rev 2  put a=1   a: create 2, mod 2, version 1
//	rev 3  put a=2   a: create 2, mod 3, version 2
//	rev 4  del a     a: tombstone at 4 (generation ends)
//	rev 5  put a=3   a: create 5, mod 5, version 1
//
// A store starts at revision 1, so the first write is revision 2, as in etcd.
// Reads may ask for any revision between the compaction point and the
// current revision; below it they get ErrCompacted, above it ErrFutureRev.
// Compact(rev) keeps, for every key, its latest version at or below rev
// (unless that is a tombstone) and removes older history, incrementally and
// without stalling writers.
//
// # Layout on the engine
//
// Nothing about the key space is held in memory, so opening a store is
// O(1) and the data set is bounded by disk, not RAM. The engine holds six
// key spaces distinguished by a one-byte prefix:
//
//	'k' key                                -> main sub record   (latest version of each key)
//	'v' escaped(key) 0x00 0x01 ^main ^sub   -> record            (older versions, newest first)
//	'h' main sub                           -> flags key         (revision order: watch, HashKV, compaction)
//	'l' lease key                          -> ""                (keys attached to a lease)
//	'm' name                               -> meta              (revision, consistent index, compaction)
//	'a' bucket 0x00 key                    -> value             (service state: leases, members; see WriteTxn.PutAux)
//
// A record is flags, create_revision, version, lease and value. A read at
// the current revision is one point Get (or one 'k' entry per key of a
// range); a read in the past seeks the 'v' space once per key changed
// since. Superseding a version moves it from 'k' to 'v' in the same atomic
// batch. See docs/design/001-storage-layout.md.
//
// # Concurrency and durability
//
// Readers work on an engine snapshot taken together with the revision, so
// reads never block writes and always see whole transactions. Writers are
// serialized. A write transaction is acknowledged (WriteTxn.End returns)
// only after its batch is durable, unless Config.NoSync is set, which the
// Raft apply loop uses because the Raft log is its durability point; the
// consistent index written with WriteTxn.SetConsistentIndex lands in the
// same atomic batch as the data it covers. Concurrent writers share fsyncs
// (group commit).
//
// # Watch
//
// WatchStream multiplexes many watchers on one channel. Synced watchers get
// each transaction's events as it commits; watchers that start in the past,
// or fall behind because their consumer is slow, catch up from the history
// key space in the background. A slow consumer never blocks writers.
package storage
