package cluster

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// fakeBackend records what the service asks and answers with err.
type fakeBackend struct {
	added   *pb.Member
	removed uint64
	updated []string
	err     error
}

var members = []*pb.Member{{ID: 1, Name: "a"}}

func (f *fakeBackend) Members(context.Context, bool) ([]*pb.Member, error) { return members, f.err }
func (f *fakeBackend) AddMember(_ context.Context, m *pb.Member) ([]*pb.Member, error) {
	f.added = m
	return members, f.err
}
func (f *fakeBackend) RemoveMember(_ context.Context, id uint64) ([]*pb.Member, error) {
	f.removed = id
	return members, f.err
}
func (f *fakeBackend) UpdateMember(_ context.Context, _ uint64, urls []string) ([]*pb.Member, error) {
	f.updated = urls
	return members, f.err
}
func (f *fakeBackend) PromoteMember(context.Context, uint64) ([]*pb.Member, error) {
	return members, f.err
}
func (f *fakeBackend) ClusterMembers(context.Context) (*pb.MemberListResponse, error) {
	return &pb.MemberListResponse{Header: &pb.ResponseHeader{ClusterId: 42}, Members: members}, f.err
}
func (f *fakeBackend) PromoteLocal(context.Context, uint64) ([]*pb.Member, error) {
	return members, f.err
}

func (f *fakeBackend) PeerHashKV(_ context.Context, rev int64) (*pb.HashKVResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &pb.HashKVResponse{Header: &pb.ResponseHeader{ClusterId: 42, Revision: 9}, Hash: 77, HashRevision: rev}, nil
}

type header struct{}

func (header) FillHeader(h *pb.ResponseHeader) { h.ClusterId, h.MemberId = 42, 7 }

func TestServer(t *testing.T) {
	be := &fakeBackend{}
	s := NewServer(be, header{})
	s.now = func() time.Time { return time.Unix(1700000000, 0) }
	ctx := context.Background()

	resp, err := s.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"http://b:2380", "http://a:2380"}, IsLearner: true})
	require.NoError(t, err)
	require.Equal(t, uint64(42), resp.Header.ClusterId)
	require.Equal(t, []string{"http://a:2380", "http://b:2380"}, be.added.PeerURLs, "sorted, as etcd's types.NewURLs")
	require.True(t, be.added.IsLearner)
	require.Equal(t, MemberID(be.added.PeerURLs, s.now()), resp.Member.ID)
	require.Equal(t, members, resp.Members)
	for _, bad := range [][]string{{"not a url"}, {"http://a:2380/path"}, {"ftp://a:21"}, {}} {
		_, err = s.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: bad})
		require.ErrorIs(t, err, rpctypes.ErrGRPCMemberBadURLs, "%v", bad)
	}
	_, err = s.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: 9})
	require.NoError(t, err)
	require.Equal(t, uint64(9), be.removed)
	_, err = s.MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: 9, PeerURLs: []string{"http://c:2380"}})
	require.NoError(t, err)
	require.Equal(t, []string{"http://c:2380"}, be.updated)
	pr, err := s.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: 9})
	require.NoError(t, err)
	require.Equal(t, uint64(7), pr.Header.MemberId)
	lr, err := s.MemberList(ctx, &pb.MemberListRequest{Linearizable: true})
	require.NoError(t, err)
	require.Equal(t, members, lr.Members)

	// Errors pass through unchanged.
	be.err = rpctypes.ErrGRPCMemberNotFound
	for _, call := range []func() error{
		func() error {
			_, err := s.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"http://a:1"}})
			return err
		},
		func() error { _, err := s.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: 1}); return err },
		func() error { _, err := s.MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: 1}); return err },
		func() error { _, err := s.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: 1}); return err },
		func() error { _, err := s.MemberList(ctx, &pb.MemberListRequest{}); return err },
	} {
		require.ErrorIs(t, call(), rpctypes.ErrGRPCMemberNotFound)
	}
}

func TestPeerService(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	be := &fakeBackend{}
	RegisterPeer(g, be)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	cc, err := grpc.NewClient("passthrough:///peer", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	require.NoError(t, err)
	defer cc.Close()
	ctx := context.Background()
	r, err := FetchMembers(ctx, cc)
	require.NoError(t, err)
	require.Equal(t, uint64(42), r.Header.ClusterId)
	require.Len(t, r.Members, 1)
	ms, err := ForwardPromote(ctx, cc, 5)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	h, err := FetchHashKV(ctx, cc, 6)
	require.NoError(t, err)
	require.Equal(t, uint32(77), h.Hash)
	require.Equal(t, int64(6), h.HashRevision)
	be.err = rpctypes.ErrGRPCLearnerNotReady
	_, err = ForwardPromote(ctx, cc, 5)
	require.ErrorIs(t, err, rpctypes.ErrGRPCLearnerNotReady, "the leader's answer reaches the follower as is")
	_, err = FetchMembers(ctx, cc)
	require.True(t, errors.Is(err, rpctypes.ErrGRPCLearnerNotReady))
	_, err = FetchHashKV(ctx, cc, 6)
	require.ErrorIs(t, err, rpctypes.ErrGRPCLearnerNotReady)
}
