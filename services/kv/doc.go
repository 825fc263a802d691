// Package kv is etcd's KV service for MetaStore: request validation with
// etcd's errors (validate.go), the gRPC handlers (kv.go), and the domain
// logic that applies Put, DeleteRange, Txn and Compaction to the storage
// module and executes Range with etcd 3.7's semantics (apply.go, range.go).
//
// The handlers do not know about Raft: they call a Backend, which the
// server implements by proposing writes through consensus and applying
// them with this package's Apply functions.
package kv
