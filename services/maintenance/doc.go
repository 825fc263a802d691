// Package maintenance is etcd's Maintenance service for MetaStore. Status
// and HashKV are served from interfaces the server implements; Alarm goes
// through Raft and is applied to the replicated alarm table (alarm.go),
// which the server consults to refuse writes while NOSPACE is raised.
// Defragment compacts this member's engine online; Hash hashes the whole
// store; MoveLeader hands leadership over. Snapshot streams a file in
// etcd's backend format (built by the server with package etcddb) in
// etcd's chunks with the SHA-256 trailer. Downgrade runs etcd's rules
// (Downgrade) over the replicated downgrade state (Downgrades).
package maintenance
