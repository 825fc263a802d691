// Package maintenance is etcd's Maintenance service for MetaStore. Status
// is served from a StatusSource the server implements; the other RPCs
// (Alarm, Defragment, Hash, HashKV, Snapshot, MoveLeader, Downgrade) are
// not built yet and return Unimplemented.
package maintenance
