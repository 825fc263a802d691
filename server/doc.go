// Package server composes storage, consensus and the services into the
// metastore binary: etcd-compatible configuration, the Raft apply loop, the
// client and peer listeners.
//
// Today it serves the KV service (and grpc.health.v1) on one node or a
// static cluster; every other etcd service returns Unimplemented (see
// docs/limitations.md).
package server
