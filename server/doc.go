// Package server composes storage, consensus and the services into the
// metastore binary. One file per concern:
//
//	server.go        Server, New (build, open state, start node, register
//	                 services, serve) and Stop
//	config.go, flags.go  etcd-compatible configuration, flags, env, file
//	datadir.go       refuses data dirs MetaStore did not write (etcd's
//	                 are imported: etcdimport.go)
//	statemachine.go  the Raft state machine: applies committed requests to
//	                 storage and the services' state in one batch; a storage
//	                 failure stops the member (it never skips an entry)
//	propose.go       puts requests through Raft and waits for their result
//	kv.go            the KV service's backend (reads after ReadIndex)
//	lease.go         the Lease service's host (proposals, forwarding, clocks)
//	maintenance.go   the Maintenance service's backend (Status, HashKV,
//	                 Alarm, Defragment, Hash, MoveLeader)
//	cluster.go       membership: the Cluster service's backend (changes
//	                 through Raft with etcd's --strict-reconfig-check,
//	                 promotion forwarding), learners' request rules,
//	                 leadership hand-over, removal, publishing attributes
//	join.go          who this member is: member/identity, joining a
//	                 running cluster (--initial-cluster-state existing)
//	quota.go         --quota-backend-bytes and the NOSPACE alarm
//	compactor.go     auto-compaction
//	leader.go        require-leader semantics, leader monitoring
//	listen.go, http.go  client/peer/metrics listeners, etcd's HTTP endpoints
//	authz.go         the single authorization check point
//	auth.go          auth: tokens and identity, checks at proposal and apply
//	tls.go, gateway.go  client and peer TLS; etcd's /v3 JSON gateway
//	backup.go        Maintenance.Snapshot: the store as an etcd backend file
//	restore.go       metastore snapshot restore: a data dir from an etcd
//	                 snapshot
//	etcdimport.go    starting on an etcd data dir (imported once)
//	corrupt.go       etcd's corruption checks and the CORRUPT alarm
//
// The Lock and Election services and Maintenance.Downgrade answer
// Unimplemented (see docs/limitations.md).
package server
