// Package etcdoracle checks the storage module against etcd's own MVCC
// package (go.etcd.io/etcd/server/v3/storage/mvcc over bbolt) as the
// oracle: the same random operations run on both, and every outcome —
// revisions, key-values, counts, errors, watch events — must match.
//
// It is a separate, test-only module so that users of the storage module
// never inherit the etcd server dependency.
package etcdoracle
