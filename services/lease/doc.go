// Package lease is etcd's Lease service for MetaStore: the lessor (the
// replicated lease table and the leader's expiry clocks, lessor.go), the
// gRPC handlers (server.go) and the peer service through which followers
// forward keepalives and TimeToLive to the leader (forward.go).
//
// # Replicated state and clocks
//
// Grant, Revoke and Checkpoint are Raft requests: the server's apply loop
// calls Lessor.Grant, Lessor.Revoke and Lessor.Checkpoint with the storage
// write transaction of the entry, so the lease table (storage auxiliary
// bucket "lease": ID -> TTL, remaining TTL) and the keys a revoke deletes
// land in the same atomic batch as the entry's consistent index, and every
// member holds the same table.
//
// Expiry clocks run on the leader only ("primary" lessor). When a member
// becomes leader and has applied every entry of the previous terms, the
// server calls Promote: each lease then expires after its last
// checkpointed remaining TTL (or its whole TTL) plus an extension of one
// election timeout, so clients have time to find the new leader. Followers
// hold no clocks (Demote); keepalives and TimeToLive they receive are
// forwarded to the leader. The leader's Run loop proposes a revoke for
// every expired lease and, every checkpoint interval, a checkpoint of the
// remaining TTLs, so that a leader change does not give a long lease its
// whole TTL back. etcd keeps this behind a feature gate; MetaStore always
// does it. A keepalive clears the checkpointed remaining TTL again (one
// more Raft entry at most per lease and checkpoint interval).
package lease
