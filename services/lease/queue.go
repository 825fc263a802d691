package lease

import (
	"container/heap"
	"time"
)

// leaseQueue is a min-heap of leases ordered by one of their clocks. Each
// lease knows its position in it, so the primary finds what is due
// without walking the table: with a million leases a round costs the
// leases that are due, not the million.
//
// The heap orders by a key frozen when the lease was placed, not by the
// clock itself, and every key is at most its lease's clock. A renewal,
// which only moves a clock later, then costs no heap move at all (the
// keepalive path): the lease stays where it is, and when it reaches the
// top its key is found behind its clock and corrected, once however many
// renewals there were. A clock that moves earlier than its key is placed
// at once (place). Since every clock is at least its key, the top's key is
// a bound on every clock: top returns the lease with the earliest clock.
type leaseQueue struct {
	ls []*lease
	// at is the clock the queue orders by; key points at the lease's key
	// for this queue and pos at its position (-1: not queued).
	at  func(*lease) time.Time
	key func(*lease) *time.Time
	pos func(*lease) *int
}

func (q *leaseQueue) Len() int           { return len(q.ls) }
func (q *leaseQueue) Less(i, j int) bool { return q.key(q.ls[i]).Before(*q.key(q.ls[j])) }
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

// place queues l by its clock as it is now, or moves it there if it is
// queued already.
func (q *leaseQueue) place(l *lease) {
	*q.key(l) = q.at(l)
	if i := *q.pos(l); i >= 0 {
		heap.Fix(q, i)
		return
	}
	heap.Push(q, l)
}

// moved is called after l's clock changed: a queued lease whose clock
// moved later keeps its place (its key is corrected when it reaches the
// top); otherwise it is placed.
func (q *leaseQueue) moved(l *lease) {
	if *q.pos(l) >= 0 && !q.at(l).Before(*q.key(l)) {
		return
	}
	q.place(l)
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
		*q.key(l) = q.at(l)
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

// top returns the lease with the earliest clock, or nil, first correcting
// the keys of the leases renewed since they were placed that it finds on
// top.
func (q *leaseQueue) top() *lease {
	for len(q.ls) > 0 {
		l := q.ls[0]
		if at := q.at(l); at.After(*q.key(l)) {
			*q.key(l) = at
			heap.Fix(q, 0)
			continue
		}
		return l
	}
	return nil
}

// fixTop places the lease top returned after its clock changed.
func (q *leaseQueue) fixTop() {
	*q.key(q.ls[0]) = q.at(q.ls[0])
	heap.Fix(q, 0)
}
