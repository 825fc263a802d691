// Package cluster is etcd's Cluster service for MetaStore. MemberList is
// served from the replicated member table (members.go): the bootstrap
// members from --initial-cluster, with the name and client URLs each
// member publishes through Raft once it runs (etcd's
// ClusterMemberAttrSet), stored beside the key space. Membership changes
// (MemberAdd, MemberRemove, MemberUpdate, MemberPromote) are not built yet
// and return Unimplemented.
package cluster
