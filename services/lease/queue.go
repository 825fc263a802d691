package lease

import (
	"container/heap"
	"time"
)

// leaseQueue is a min-heap of leases ordered by one of their clocks. Each
// lease knows its position in it, so a renewal moves it in O(log n) and
// the primary finds what is due without walking the table: with a million
// leases a round costs the leases that are due, not the million.
type leaseQueue struct {
	ls []*lease
	// at is the clock the queue orders by; pos points at the lease's
	// position field for this queue (-1: not queued).
	at  func(*lease) time.Time
	pos func(*lease) *int
}

func (q *leaseQueue) Len() int           { return len(q.ls) }
func (q *leaseQueue) Less(i, j int) bool { return q.at(q.ls[i]).Before(q.at(q.ls[j])) }
func (q *leaseQueue) Swap(i, j int) {
	q.ls[i], q.ls[j] = q.ls[j], q.ls[i]
	*q.pos(q.ls[i]), *q.pos(q.ls[j]) = i, j
}

// Push and Pop are for container/heap only.
func (q *leaseQueue) Push(x any) {
	l := x.(*lease)
	*q.pos(l) = len(q.ls)
	q.ls = append(q.ls, l)
}

func (q *leaseQueue) Pop() any {
	n := len(q.ls) - 1
	l := q.ls[n]
	q.ls[n] = nil
	q.ls = q.ls[:n]
	*q.pos(l) = -1
	return l
}

// add queues l, or moves it if it is queued already.
func (q *leaseQueue) add(l *lease) {
	if i := *q.pos(l); i >= 0 {
		heap.Fix(q, i)
		return
	}
	heap.Push(q, l)
}

// remove takes l out of the queue if it is in it.
func (q *leaseQueue) remove(l *lease) {
	if i := *q.pos(l); i >= 0 {
		heap.Remove(q, i)
	}
}

// reset makes the queue hold exactly ls.
func (q *leaseQueue) reset(ls map[int64]*lease) {
	for _, l := range q.ls {
		*q.pos(l) = -1
	}
	q.ls = q.ls[:0]
	for _, l := range ls {
		*q.pos(l) = len(q.ls)
		q.ls = append(q.ls, l)
	}
	heap.Init(q)
}

// clear empties the queue.
func (q *leaseQueue) clear() {
	for _, l := range q.ls {
		*q.pos(l) = -1
	}
	clear(q.ls)
	q.ls = nil
}

// peek returns the lease with the earliest clock, or nil.
func (q *leaseQueue) peek() *lease {
	if len(q.ls) == 0 {
		return nil
	}
	return q.ls[0]
}

// fixTop restores the order after the earliest lease's clock changed.
func (q *leaseQueue) fixTop() { heap.Fix(q, 0) }
