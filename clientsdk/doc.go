// Package clientsdk is the root of MetaStore's client SDK: distributed
// locks, elections and coordination recipes on top of
// go.etcd.io/etcd/client/v3, for any etcd v3 endpoint (etcd or MetaStore).
//
// The work is in the subpackages: concurrency (Session, Mutex, Election,
// STM — the API of etcd's concurrency package plus fencing tokens, guarded
// writes and loss notification) and recipes (RWMutex, Semaphore, Barrier,
// DoubleBarrier, Queue). See docs/CONCURRENCY_USAGE.md.
package clientsdk
