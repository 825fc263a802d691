// Package cluster is etcd's Cluster service for MetaStore: MemberAdd,
// MemberRemove, MemberUpdate, MemberPromote and MemberList with etcd
// v3.7's semantics and errors (cluster.go), over a Backend the server
// implements through Raft.
//
// The replicated member table (members.go) holds the members — seeded
// from --initial-cluster, or from the running cluster for a member that
// joins, then confirmed and changed by the log — with the name and client
// URLs each member publishes (etcd's ClusterMemberAttrSet), the IDs
// removed for good, and the membership changes it refused. Validate is
// etcd's ValidateConfigurationChange: the server's state machine calls it
// when a change applies, on every member alike. Everything is stored in
// auxiliary buckets beside the key space, in the apply batch.
//
// The peer service (peer.go) runs on the peer listener: a joining member
// reads the cluster's ID and members from it, and followers forward
// MemberPromote to the leader.
package cluster
