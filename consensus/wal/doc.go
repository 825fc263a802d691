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
// detects it (short read, bad length, bad checksum) and truncates the file
// there. A bad record anywhere else is corruption and Open fails with
// ErrCorrupt rather than dropping data. Nothing acknowledged is lost because
// the node only acknowledges what Sync made durable.
//
// The package owns files; it knows nothing about Raft's rules beyond
// replaying entries in order (a later entry at an index replaces the earlier
// tail, as Raft's log truncation requires).
package wal
