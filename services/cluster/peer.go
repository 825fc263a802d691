package cluster

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// The peer service runs on the peer listener, as etcd's peer HTTP
// handler's /members and /members/promote/:id: a member joining with
// --initial-cluster-state existing reads the cluster's ID and members
// from it, and a follower forwards MemberPromote to the leader (only the
// leader knows whether a learner caught up).
const (
	peerService = "metastore.cluster.Peer"
	peerMembers = "/" + peerService + "/Members"
	peerPromote = "/" + peerService + "/Promote"
	peerHashKV  = "/" + peerService + "/HashKV"
)

// PeerBackend is what the peer service calls.
type PeerBackend interface {
	// ClusterMembers returns the cluster's ID and members (the response
	// header's ClusterId).
	ClusterMembers(ctx context.Context) (*pb.MemberListResponse, error)
	// PromoteLocal promotes a learner if this member leads, else fails
	// with etcd's ErrGRPCNotLeader.
	PromoteLocal(ctx context.Context, id uint64) ([]*pb.Member, error)
	// PeerHashKV hashes the member's history up to rev for a peer's
	// corruption check (etcd's /members/hashkv); the header carries the
	// cluster and member IDs and the member's revision.
	PeerHashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error)
}

var peerDesc = grpc.ServiceDesc{
	ServiceName: peerService,
	HandlerType: (*PeerBackend)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Members", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var r pb.MemberListRequest
			if err := dec(&r); err != nil {
				return nil, err
			}
			return srv.(PeerBackend).ClusterMembers(ctx)
		}},
		{MethodName: "Promote", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var r pb.MemberPromoteRequest
			if err := dec(&r); err != nil {
				return nil, err
			}
			ms, err := srv.(PeerBackend).PromoteLocal(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			return &pb.MemberPromoteResponse{Header: &pb.ResponseHeader{}, Members: ms}, nil
		}},
		{MethodName: "HashKV", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var r pb.HashKVRequest
			if err := dec(&r); err != nil {
				return nil, err
			}
			return srv.(PeerBackend).PeerHashKV(ctx, r.Revision)
		}},
	},
}

// RegisterPeer registers the peer service on g.
func RegisterPeer(g grpc.ServiceRegistrar, be PeerBackend) { g.RegisterService(&peerDesc, be) }

// FetchMembers asks a peer for its cluster's ID and members.
func FetchMembers(ctx context.Context, cc grpc.ClientConnInterface) (*pb.MemberListResponse, error) {
	var resp pb.MemberListResponse
	if err := cc.Invoke(ctx, peerMembers, &pb.MemberListRequest{}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// ForwardPromote asks the leader's peer service to promote learner id.
func ForwardPromote(ctx context.Context, cc grpc.ClientConnInterface, id uint64) ([]*pb.Member, error) {
	var resp pb.MemberPromoteResponse
	if err := cc.Invoke(ctx, peerPromote, &pb.MemberPromoteRequest{ID: id}, &resp); err != nil {
		return nil, err
	}
	return resp.Members, nil
}

// FetchHashKV asks a peer for its HashKV at rev.
func FetchHashKV(ctx context.Context, cc grpc.ClientConnInterface, rev int64) (*pb.HashKVResponse, error) {
	var resp pb.HashKVResponse
	if err := cc.Invoke(ctx, peerHashKV, &pb.HashKVRequest{Revision: rev}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
