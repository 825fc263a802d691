// Package compattests is MetaStore's black-box compatibility suite for
// etcd's v3 API: package conformance holds the tests (run them against
// any endpoint with -endpoints or ETCD_ENDPOINTS; without, they start an
// embedded etcd 3.7.3), package linearizability records concurrent
// histories against an endpoint and checks them with porcupine, and
// package robustness runs etcd's own robustness traffic and model against
// fresh clusters it starts (bin/metastore and an embedded etcd). It talks
// gRPC through etcd's client only and imports no MetaStore module.
package compattests
