// Package recipes provides coordination recipes on top of the concurrency
// package's sessions: RWMutex, Semaphore (N holders), Barrier and
// DoubleBarrier, and FIFO and priority Queues. Everything except Semaphore
// is etcd's client/v3/experimental/recipes, re-exported so that users of
// this SDK need no other import; Semaphore is ours.
package recipes
