package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// appliedHost is a Host whose proposals answer as the apply step would —
// with the revision right after the write — while other writes applied
// after it have already moved the store to a later revision by the time
// the handler reads it.
type appliedHost struct {
	appliedRev int64 // the revision the apply step put in the response
	currentRev int64 // the store's revision when the handler returns
}

var _ Host = (*appliedHost)(nil)

func (h *appliedHost) ProposeGrant(_ context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	return &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: h.appliedRev}, ID: r.ID, TTL: r.TTL}, nil
}

func (h *appliedHost) ProposeRevoke(context.Context, int64) (*pb.LeaseRevokeResponse, error) {
	return &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: h.appliedRev}}, nil
}

func (h *appliedHost) ProposeCheckpoint(context.Context, []*pb.LeaseCheckpoint) error { return nil }
func (h *appliedHost) ID() uint64                                                     { return 1 }
func (h *appliedHost) Leader() uint64                                                 { return 1 }
func (h *appliedHost) FillHeader(hdr *pb.ResponseHeader) {
	hdr.ClusterId, hdr.MemberId, hdr.RaftTerm = 7, 1, 3
}
func (h *appliedHost) Rev() int64                        { return h.currentRev }
func (h *appliedHost) LeaseKeys(int64) ([][]byte, error) { return nil, nil }
func (h *appliedHost) PeerConn(uint64) (grpc.ClientConnInterface, error) {
	return nil, errors.New("no peers")
}

// The ordering the robustness traffic caught on three members: a revoke
// deleted its lease's key at revision 298, two more writes were applied
// (299, 300) before its handler ran, and the handler answered 300 — the
// revision of another write, while no answer named 298. Writes keep the
// revision their apply step produced; reads report the current one.
func TestLeaseWriteHeadersKeepAppliedRevision(t *testing.T) {
	h := &appliedHost{appliedRev: 298, currentRev: 300}
	s := NewServer(New(Config{MinTTL: 1}), h, nil, time.Second, nil)
	ctx := t.Context()

	rv, err := s.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: 5})
	require.NoError(t, err)
	require.Equal(t, int64(298), rv.Header.Revision, "revoke reports the revision of its own deletions")
	require.Equal(t, &pb.ResponseHeader{ClusterId: 7, MemberId: 1, RaftTerm: 3, Revision: 298}, rv.Header)

	gr, err := s.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 9, TTL: 60})
	require.NoError(t, err)
	require.Equal(t, int64(298), gr.Header.Revision, "grant reports the revision it was applied at")
	require.Equal(t, uint64(7), gr.Header.ClusterId)

	ls, err := s.LeaseLeases(ctx, &pb.LeaseLeasesRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(300), ls.Header.Revision, "a read reports the current revision")
}
