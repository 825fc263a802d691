package maintenance

import (
	"context"
	"errors"
	"testing"

	"github.com/coreos/go-semver/semver"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// auxMap is an in-memory auxiliary bucket store.
type auxMap map[string]map[string][]byte

func (m auxMap) PutAux(bucket string, key, value []byte) {
	if m[bucket] == nil {
		m[bucket] = map[string][]byte{}
	}
	m[bucket][string(key)] = value
}
func (m auxMap) DeleteAux(bucket string, key []byte) { delete(m[bucket], string(key)) }
func (m auxMap) ForEachAux(bucket string, fn func(k, v []byte) error) error {
	for k, v := range m[bucket] {
		if err := fn([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

// fakeHost applies proposals at once, as one member would.
type fakeHost struct {
	d       *Downgrades
	aux     auxMap
	readErr error
	propErr error
}

func (h *fakeHost) ClusterVersion() *semver.Version { return semver.New("3.7.0") }
func (h *fakeHost) ReadIndex(context.Context) error { return h.readErr }
func (h *fakeHost) DowngradeInfo() DowngradeInfo    { return h.d.Info() }
func (h *fakeHost) ProposeDowngrade(_ context.Context, r *membershippb.DowngradeInfoSetRequest) error {
	if h.propErr != nil {
		return h.propErr
	}
	h.d.Apply(h.aux, r)
	return nil
}

func TestDowngradeRules(t *testing.T) {
	h := &fakeHost{d: NewDowngrades(), aux: auxMap{}}
	do := func(a pb.DowngradeRequest_DowngradeAction, v string) (*pb.DowngradeResponse, error) {
		return Downgrade(context.Background(), h, &pb.DowngradeRequest{Action: a, Version: v})
	}
	r, err := do(pb.DowngradeRequest_VALIDATE, "3.6.2")
	require.NoError(t, err)
	require.Equal(t, "3.7", r.Version)
	_, err = do(pb.DowngradeRequest_VALIDATE, "3.5")
	require.ErrorIs(t, err, rpctypes.ErrGRPCInvalidDowngradeTargetVersion)
	_, err = do(pb.DowngradeRequest_ENABLE, "x.y")
	require.ErrorIs(t, err, rpctypes.ErrGRPCWrongDowngradeVersionFormat)
	_, err = do(7, "3.6")
	require.Equal(t, codes.Unknown, status.Code(err))

	_, err = do(pb.DowngradeRequest_ENABLE, "3.6")
	require.NoError(t, err)
	require.Equal(t, DowngradeInfo{Enabled: true, TargetVersion: "3.6.0"}, h.d.Info())
	_, err = do(pb.DowngradeRequest_VALIDATE, "3.6")
	require.ErrorIs(t, err, rpctypes.ErrGRPCDowngradeInProcess)

	// The state survives a restart (Recover from the store).
	again := NewDowngrades()
	require.NoError(t, again.Recover(h.aux))
	require.Equal(t, h.d.Info(), again.Info())

	_, err = do(pb.DowngradeRequest_CANCEL, "")
	require.NoError(t, err)
	require.Equal(t, DowngradeInfo{}, h.d.Info())
	_, err = do(pb.DowngradeRequest_CANCEL, "")
	require.NoError(t, err, "nothing to cancel: no error, as etcd 3.7")

	// A failed read or proposal is the answer.
	boom := errors.New("boom")
	h.readErr = boom
	_, err = do(pb.DowngradeRequest_VALIDATE, "3.6")
	require.ErrorIs(t, err, boom)
	_, err = do(pb.DowngradeRequest_CANCEL, "")
	require.ErrorIs(t, err, boom)
	h.readErr, h.propErr = nil, boom
	_, err = do(pb.DowngradeRequest_ENABLE, "3.6")
	require.ErrorIs(t, err, boom)
	h.d.Apply(h.aux, &membershippb.DowngradeInfoSetRequest{Enabled: true, Ver: "3.6.0"})
	_, err = do(pb.DowngradeRequest_CANCEL, "")
	require.ErrorIs(t, err, boom)

	// A corrupt record is refused at recovery.
	h.aux.PutAux(DowngradeBucket, DowngradeKey, []byte("{"))
	require.ErrorContains(t, NewDowngrades().Recover(h.aux), "corrupt downgrade record")
}

// The service answers Unimplemented for a backend without Downgrader.
type noDowngrade struct{ Backend }

func TestDowngradeUnimplementedWithoutDowngrader(t *testing.T) {
	s := NewServer(noDowngrade{}, nil)
	_, err := s.Downgrade(context.Background(), &pb.DowngradeRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err))
}
