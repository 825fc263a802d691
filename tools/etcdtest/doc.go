// Package etcdtest starts real etcd (go.etcd.io/etcd/server/v3/embed, the
// version MetaStore emulates) in-process on loopback ports, for tests that
// run the same calls against etcd and MetaStore: the conformance suite, the
// client SDK's end-to-end tests, the benchmark tool's tests, the robustness
// suite and the data-dir tests. It is the one place those tests start etcd.
package etcdtest
