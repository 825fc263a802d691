// Package consensus runs a Raft node (go.etcd.io/raft/v3) with everything
// the library leaves to its user: a durable log (package wal) with one fsync
// per Ready batch, snapshots on disk and log compaction, an apply loop that
// hands committed entries to a StateMachine in order, proposals that return
// the state machine's result, batched ReadIndex for linearizable reads,
// membership changes, leader transfer and a status API.
//
// # The Ready loop
//
// For every raft.Ready the node, in this order:
//
//  1. saves an incoming snapshot (file, then WAL marker);
//  2. appends the new entries and hard state to the WAL and fsyncs once;
//  3. appends the entries to the in-memory raft.MemoryStorage;
//  4. sends the messages through the Transport — only now, so nothing is
//     promised to a peer before it is durable here (a leader sends its
//     appends while it persists them, Raft thesis §10.2.1);
//  5. queues the committed entries for the apply loop, which applies them
//     to the StateMachine in order and wakes the proposers and readers
//     waiting on them, while the Ready loop goes on persisting and
//     replicating the next batch (as etcd's apply runs beside its Raft
//     loop); membership changes and incoming snapshots wait for the queue
//     to drain and are applied in the Ready loop;
//  6. takes a snapshot and compacts the log every Config.SnapshotCount
//     entries, never past the state machine's durable index;
//  7. calls Advance.
//
// # What it does not own
//
// The network (Transport; consensustest has an in-memory one), the state
// machine and its snapshot format (StateMachine), and the meaning of
// proposal payloads. It imports no other MetaStore module.
package consensus
