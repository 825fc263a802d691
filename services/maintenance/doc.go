// Package maintenance is etcd's Maintenance service for MetaStore. Status
// and HashKV are served from interfaces the server implements; Alarm goes
// through Raft and is applied to the replicated alarm table (alarm.go),
// which the server consults to refuse writes while NOSPACE is raised.
// Defragment compacts this member's engine online; Hash hashes the whole
// store; MoveLeader hands leadership over. Snapshot and Downgrade are not
// built yet and return Unimplemented.
package maintenance
