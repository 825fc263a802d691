// Package concurrency implements distributed locks and leader elections on
// any etcd v3 endpoint, with the API of go.etcd.io/etcd/client/v3/concurrency
// — switching is an import-path change — and three additions that make the
// safe path the easy one:
//
//   - Fencing tokens. Mutex.FencingToken and Election.FencingToken return the
//     create revision of the owner's key: it only grows from one owner to the
//     next, so a storage system that remembers the highest token it has seen
//     can refuse a stale owner.
//   - Guarded writes. Mutex.Txn and Election.Txn build transactions that only
//     apply while the caller still owns the lock (the ownership compare is
//     added for you); a caller that lost it gets ErrLockLost (or
//     ErrElectionNotLeader) instead of a silent write.
//   - Loss notification. Mutex.Lost and Election.Lost close the moment the
//     session's lease is gone or the owner key is deleted.
//
// # The failure mode
//
// A client takes a lock, pauses (GC, swap, a stopped VM) for longer than its
// session TTL, and resumes believing it still owns the lock: meanwhile the
// lease expired and another client took the lock. With etcd's concurrency
// package the paused client's next write goes through. Writing through
// Mutex.Txn makes that write fail, because the ownership compare runs in the
// same transaction as the write, on the server.
//
// Keys use etcd's layout (prefix + "/" + lease ID in hex), so clients of
// this package and of etcd's can share locks and elections.
package concurrency
