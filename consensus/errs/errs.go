package errs

import "errors"

// Errors returned to proposers and readers. The server maps them to etcd's
// rpctypes errors (no leader, leader changed, request timed out, …).
var (
	// ErrStopped is returned after Stop.
	ErrStopped = errors.New("consensus: node stopped")
	// ErrNoLeader is returned when the node knows no leader to serve the
	// request.
	ErrNoLeader = errors.New("consensus: no leader")
	// ErrTimeout is returned when the request did not complete in time.
	ErrTimeout = errors.New("consensus: request timed out")
	// ErrTimeoutLeaderFail is returned when the request timed out after the
	// leader changed or was lost while it waited.
	ErrTimeoutLeaderFail = errors.New("consensus: request timed out, possibly due to previous leader failure")
	// ErrLeaderChanged is returned by ReadIndex when leadership changed
	// during the read round.
	ErrLeaderChanged = errors.New("consensus: leader changed")
	// ErrRemoved is returned once this node was removed from the cluster.
	ErrRemoved = errors.New("consensus: node removed from the cluster")
	// ErrNotLeader is returned by calls only the leader can serve.
	ErrNotLeader = errors.New("consensus: not the leader")
	// ErrLearnerNotReady is returned when promoting a learner that has not
	// caught up with the leader's log (etcd's rule: 90% of its match).
	ErrLearnerNotReady = errors.New("consensus: can only promote a learner member which is in sync with leader")
	// ErrMemberNotLearner is returned when promoting a member that is not a
	// learner.
	ErrMemberNotLearner = errors.New("consensus: can only promote a learner member")
)
