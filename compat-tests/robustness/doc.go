// Package robustness is MetaStore's fault-injection suite: etcd's own
// robustness traffic, recorded by etcd's client, against fresh clusters of
// real bin/metastore processes — and etcd 3.7.3 processes started with the
// same flags, as the reference — while one fault of the table in
// faults_test.go is injected (SIGKILL of a random member, of the leader,
// of every member, four in a row; SIGSTOP of the leader; a crash at a
// failpoint; a partitioned, slow or lossy peer network through the
// test's own proxies on the peer links, internal/procs.Net).
//
// The traffic generator, recording client, model and validators are
// etcd's published packages (go.etcd.io/etcd/tests/v3/robustness/{traffic,
// client,model,validate,identity,report}); nothing of them is copied here.
// Watches and serializable reads are validated against the requests the
// members persisted: etcd's WAL for etcd, and for MetaStore its Raft log
// exported as an etcd WAL by `metastore wal export`. The suite adds its
// own checks on the cluster that survived: every member at one revision
// no lower than any answer, every acknowledged put present, and equal
// HashKV. Results are in docs/robustness.md.
//
// It imports no MetaStore module: it starts processes (internal/procs) and
// talks gRPC through etcd's client. The runs skip under -short.
package robustness
