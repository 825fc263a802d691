// Package rbac is the authorization matrix: every kind of request (KV,
// transactions, Watch, Lease, Maintenance, Cluster, Auth) sent by every
// kind of principal (root, a prefix reader, a prefix writer, a read-write
// user, a user without roles, no token, a malformed token, a deleted
// user's token) to a fresh server with auth enabled. Each answer — allowed,
// or the exact gRPC code and message — must equal testdata/matrix.txt,
// which is written from etcd 3.7.3 (go test -run TestMatrix/etcd -update)
// and checked against etcd and against bin/metastore in every run.
package rbac
