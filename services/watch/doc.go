// Package watch is etcd's Watch service for MetaStore: one gRPC stream
// multiplexes many watchers onto one storage.WatchStream. Creation,
// cancellation, progress requests, per-watcher progress notifications,
// prev_kv, filters, fragmentation and compaction cancellations follow
// etcd's v3rpc/watch.go.
package watch
