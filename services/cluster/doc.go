// Package cluster is etcd's Cluster service for MetaStore. MemberList is
// served from a MemberSource the server implements; membership changes
// (MemberAdd, MemberRemove, MemberUpdate, MemberPromote) are not built yet
// and return Unimplemented.
package cluster
