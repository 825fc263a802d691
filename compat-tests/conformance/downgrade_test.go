package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Maintenance.Downgrade: VALIDATE and ENABLE take only the minor version
// below the cluster's (3.6 for 3.7, patch ignored); ENABLE is replicated
// and shown by every member's Status; CANCEL ends it and, as etcd 3.7,
// answers without an error when no downgrade is enabled.
func TestDowngradeValidateEnableCancel(t *testing.T) {
	c := newClient(t)
	mc := pb.NewMaintenanceClient(c.ActiveConnection())
	down := func(action pb.DowngradeRequest_DowngradeAction, v string) (*pb.DowngradeResponse, error) {
		return mc.Downgrade(ctx(t), &pb.DowngradeRequest{Action: action, Version: v})
	}
	r, err := down(pb.DowngradeRequest_VALIDATE, "3.6")
	skipIfUnimplemented(t, err)
	require.NoError(t, err)
	require.Equal(t, "3.7", r.Version)
	require.NotZero(t, r.Header.MemberId)
	_, err = down(pb.DowngradeRequest_VALIDATE, "3.6.9")
	require.NoError(t, err, "the patch version is ignored")
	for _, v := range []string{"3.5", "3.7", "3.8", "4.6", "3.0"} {
		_, err = down(pb.DowngradeRequest_VALIDATE, v)
		require.ErrorIs(t, err, rpctypes.ErrGRPCInvalidDowngradeTargetVersion, v)
	}
	for _, v := range []string{"abc", "", "3"} {
		_, err = down(pb.DowngradeRequest_VALIDATE, v)
		require.ErrorIs(t, err, rpctypes.ErrGRPCWrongDowngradeVersionFormat, "%q", v)
		_, err = down(pb.DowngradeRequest_ENABLE, v)
		require.ErrorIs(t, err, rpctypes.ErrGRPCWrongDowngradeVersionFormat, "%q", v)
	}
	_, err = down(pb.DowngradeRequest_ENABLE, "3.5")
	require.ErrorIs(t, err, rpctypes.ErrGRPCInvalidDowngradeTargetVersion)
	_, err = mc.Downgrade(ctx(t), &pb.DowngradeRequest{Action: 7, Version: "3.6"})
	require.Equal(t, codes.Unknown, status.Code(err))
	require.ErrorContains(t, err, "etcdserver: unknown method")

	r, err = down(pb.DowngradeRequest_CANCEL, "")
	require.NoError(t, err, "no downgrade in flight: etcd 3.7 answers without an error")
	require.Equal(t, "3.7", r.Version)

	t.Cleanup(func() { _, _ = down(pb.DowngradeRequest_CANCEL, "") })
	_, err = down(pb.DowngradeRequest_ENABLE, "3.6")
	require.NoError(t, err)
	for _, ep := range endpoints {
		mcl := newClient(t, ep)
		require.Eventually(t, func() bool {
			st, err := mcl.Status(ctx(t), ep)
			return err == nil && st.DowngradeInfo.GetEnabled() && st.DowngradeInfo.GetTargetVersion() == "3.6.0"
		}, 10*time.Second, 20*time.Millisecond, "member %s shows the downgrade", ep)
	}
	// Enabled: a second ENABLE or VALIDATE is refused (etcd may have
	// lowered its cluster version to 3.6 already, then 3.6 is no longer
	// the allowed target).
	for _, action := range []pb.DowngradeRequest_DowngradeAction{pb.DowngradeRequest_VALIDATE, pb.DowngradeRequest_ENABLE} {
		_, err = down(action, "3.6")
		require.True(t, errors.Is(err, rpctypes.ErrGRPCDowngradeInProcess) || errors.Is(err, rpctypes.ErrGRPCInvalidDowngradeTargetVersion), "%v", err)
	}
	_, err = down(pb.DowngradeRequest_CANCEL, "")
	require.NoError(t, err)
	// The cancel is applied on the member that answered; the others
	// apply it a moment later.
	for _, ep := range endpoints {
		mcl := newClient(t, ep)
		require.Eventually(t, func() bool {
			st, err := mcl.Status(ctx(t), ep)
			return err == nil && !st.DowngradeInfo.GetEnabled() && st.DowngradeInfo.GetTargetVersion() == ""
		}, 10*time.Second, 20*time.Millisecond, "member %s shows the downgrade cancelled", ep)
	}
}
