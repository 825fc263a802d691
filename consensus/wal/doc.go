// Package wal is the durable Raft log of a consensus node: entries, hard
// state and snapshot markers appended to segment files and made durable with
// one fsync per Sync call (the node calls it once per Ready batch).
//
// # Format
//
// A WAL is a directory of segment files named "%016x-%016x.wal" (sequence,
// index of the first entry the segment may hold). Each segment is a run of
// records:
//
//	uint32 length | uint32 CRC-32C(type, payload) | uint8 type | payload
//
// with little-endian integers and a protobuf payload (raftpb.Entry,
// raftpb.HardState or raftpb.SnapshotMetadata). Every segment starts with
// the latest snapshot marker and hard state, so segments older than the
// latest snapshot can be deleted without losing the starting point.
//
// # Crash safety
//
// A crash can leave a torn record at the end of the last segment: replay
// detects it — a short read at the end of the file, or a damaged record
// with a sector still all zeros (segments are preallocated with zeros, so
// a sector the crash did not write reads as zeros) — and truncates the
// file there. Anything else is refused with ErrCorrupt and no file is
// changed: a bad record in an earlier segment, a record damaged without an
// unwritten sector, and a bad first record of any segment. Segments are
// created under a temporary name and renamed into place once their first
// records are synced, so a first record is never torn; a file named like a
// segment whose first record is not a valid snapshot marker was not
// written by this package (etcd's WAL uses the same file names) and is
// never rewritten. Nothing acknowledged is lost because the node only
// acknowledges what Sync made durable.
//
// The package owns files; it knows nothing about Raft's rules beyond
// replaying entries in order (a later entry at an index replaces the earlier
// tail, as Raft's log truncation requires).
package wal
