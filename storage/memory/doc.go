// Package memory is an in-memory storage/backend engine built on a
// copy-on-write B-tree (github.com/tidwall/btree). It behaves exactly like the
// RocksDB engine as far as the backend contract goes, and is meant for tests
// and ephemeral stores: nothing survives Close, and Sync is a no-op.
//
// Snapshots and iterators are O(1) shadow copies of the tree, so readers
// never block writers and see a consistent view.
package memory
