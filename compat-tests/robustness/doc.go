// Package robustness drives etcd's own robustness traffic against a fresh
// cluster and checks the recorded history with etcd's porcupine model.
//
// The traffic generator, recording client and model are etcd's published
// packages (go.etcd.io/etcd/tests/v3/robustness/{traffic,client,model,
// validate,identity,report}); nothing of them is copied here. The test
// starts its own cluster for every run, because the model needs an empty
// key space: real bin/metastore processes (METASTORE_BIN, or bin/metastore
// found above the working directory) and, as the reference, an embedded
// etcd 3.7.3 cluster of the same size. No fault is injected: the runs
// prove that the answers of a healthy cluster are linearizable, revisions
// and lease operations included.
//
// It imports no MetaStore module; it only talks gRPC through etcd's
// client. The runs skip under -short.
package robustness
