package rpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/consensus"
	"github.com/metastore/metastore/services/rpcerr"
	"github.com/metastore/metastore/storage"
)

func TestToGRPC(t *testing.T) {
	wrapped := fmt.Errorf("range at 3: %w", storage.ErrCompacted)
	for _, tc := range []struct {
		in   error
		want error
	}{
		{wrapped, rpctypes.ErrGRPCCompacted},
		{storage.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
		{consensus.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
		{consensus.ErrTimeoutLeaderFail, rpctypes.ErrGRPCTimeoutDueToLeaderFail},
		{rpctypes.ErrGRPCEmptyKey, rpctypes.ErrGRPCEmptyKey},
	} {
		require.Equal(t, tc.want, rpcerr.ToGRPC(nil, tc.in), "%v", tc.in)
	}
	// clientv3 recognises the mapped errors by their message.
	require.Equal(t, rpctypes.ErrCompacted, rpctypes.Error(rpcerr.ToGRPC(nil, wrapped)))
	require.Equal(t, codes.Canceled, status.Code(rpcerr.ToGRPC(nil, fmt.Errorf("x: %w", context.Canceled))))
	require.Equal(t, codes.DeadlineExceeded, status.Code(rpcerr.ToGRPC(nil, context.DeadlineExceeded)))
	require.Equal(t, codes.Unknown, status.Code(rpcerr.ToGRPC(nil, errors.New("boom"))))
	require.NoError(t, rpcerr.ToGRPC(nil, nil))
}
