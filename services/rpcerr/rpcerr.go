package rpcerr

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/consensus/errs"
	"github.com/metastore/metastore/storage"
)

// table maps sentinels to etcd's gRPC errors, checked with errors.Is.
var table = []struct {
	err  error
	grpc error
}{
	{storage.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{storage.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{storage.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
	{storage.ErrKeyTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{storage.ErrValueTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{storage.ErrClosed, rpctypes.ErrGRPCStopped},
	{errs.ErrStopped, rpctypes.ErrGRPCStopped},
	{errs.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{errs.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{errs.ErrTimeoutLeaderFail, rpctypes.ErrGRPCTimeoutDueToLeaderFail},
	{errs.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged},
	{errs.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{errs.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{errs.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{errs.ErrRemoved, rpctypes.ErrGRPCStopped},
}

// ToGRPC returns the gRPC error a client of etcd would get for err. Errors
// that already carry a gRPC status (such as rpctypes values) pass through;
// context errors become Canceled or DeadlineExceeded; anything unknown
// becomes codes.Unknown and is logged at Warn on lg (which may be nil).
func ToGRPC(lg *zap.Logger, err error) error {
	if err == nil {
		return nil
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			return e.grpc
		}
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, context.Canceled.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
	}
	if lg != nil {
		lg.Warn("unexpected error mapped to Unknown", zap.Error(err))
	}
	return status.Error(codes.Unknown, err.Error())
}

// ErrGRPCTimeoutLeaderTransfer is what etcd answers when MoveLeader does
// not finish in time: its server error (etcdserver/errors) has no rpctypes
// counterpart, so etcd's togRPCError sends it as codes.Unknown with the
// server's message.
var ErrGRPCTimeoutLeaderTransfer = status.Error(codes.Unknown, "etcdserver: request timed out, leader transfer took too long")
