package consensus

import (
	"fmt"

	"github.com/metastore/metastore/consensus/errs"
)

// Errors returned to proposers and readers; they are the values of
// package errs (see there), so errors.Is matches either name.
var (
	// ErrStopped is errs.ErrStopped.
	ErrStopped = errs.ErrStopped
	// ErrNoLeader is errs.ErrNoLeader.
	ErrNoLeader = errs.ErrNoLeader
	// ErrTimeout is errs.ErrTimeout.
	ErrTimeout = errs.ErrTimeout
	// ErrTimeoutLeaderFail is errs.ErrTimeoutLeaderFail.
	ErrTimeoutLeaderFail = errs.ErrTimeoutLeaderFail
	// ErrLeaderChanged is errs.ErrLeaderChanged.
	ErrLeaderChanged = errs.ErrLeaderChanged
	// ErrRemoved is errs.ErrRemoved.
	ErrRemoved = errs.ErrRemoved
	// ErrNotLeader is errs.ErrNotLeader.
	ErrNotLeader = errs.ErrNotLeader
	// ErrLearnerNotReady is errs.ErrLearnerNotReady.
	ErrLearnerNotReady = errs.ErrLearnerNotReady
	// ErrMemberNotLearner is errs.ErrMemberNotLearner.
	ErrMemberNotLearner = errs.ErrMemberNotLearner
)

// ApplyError is why a node stopped on its own: the state machine could not
// apply the committed entry at Index. Nothing after Index was applied.
type ApplyError struct {
	Index uint64
	Err   error
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("consensus: cannot apply committed entry %d: %v", e.Index, e.Err)
}

// Unwrap returns the state machine's error.
func (e *ApplyError) Unwrap() error { return e.Err }
