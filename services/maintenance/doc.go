// Package maintenance is etcd's Maintenance service for MetaStore. Status
// and HashKV are served from interfaces the server implements; the other
// RPCs (Alarm, Defragment, Hash, Snapshot, MoveLeader, Downgrade) are not
// built yet and return Unimplemented.
package maintenance
