package recipes

import (
	v3 "go.etcd.io/etcd/client/v3"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"

	"github.com/metastore/metastore/clientsdk/concurrency"
)

// Barrier blocks waiters until the barrier is released.
type Barrier = recipe.Barrier

// NewBarrier returns a barrier on key.
func NewBarrier(client *v3.Client, key string) *Barrier { return recipe.NewBarrier(client, key) }

// DoubleBarrier blocks until count processes have entered, then until all
// have left.
type DoubleBarrier = recipe.DoubleBarrier

// NewDoubleBarrier returns a double barrier for count participants.
func NewDoubleBarrier(s *concurrency.Session, key string, count int) *DoubleBarrier {
	return recipe.NewDoubleBarrier(s, key, count)
}

// Queue is a multi-producer, multi-consumer FIFO queue.
type Queue = recipe.Queue

// NewQueue returns a queue under keyPrefix.
func NewQueue(client *v3.Client, keyPrefix string) *Queue { return recipe.NewQueue(client, keyPrefix) }

// PriorityQueue is a queue served by priority, then FIFO.
type PriorityQueue = recipe.PriorityQueue

// NewPriorityQueue returns a priority queue under key.
func NewPriorityQueue(client *v3.Client, key string) *PriorityQueue {
	return recipe.NewPriorityQueue(client, key)
}

// RWMutex is a readers-writer lock: many readers or one writer.
type RWMutex = recipe.RWMutex

// NewRWMutex returns a readers-writer lock under prefix.
func NewRWMutex(s *concurrency.Session, prefix string) *RWMutex { return recipe.NewRWMutex(s, prefix) }
