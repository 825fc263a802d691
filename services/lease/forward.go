package lease

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// The forwarding service runs on the peer listener. A follower that gets
// a keepalive or TimeToLive forwards it to the leader's, as etcd does over
// its peer HTTP handler (/leases and /leases/internal).
const (
	forwardService    = "metastore.lease.Forward"
	forwardRenew      = "/" + forwardService + "/Renew"
	forwardTimeToLive = "/" + forwardService + "/TimeToLive"
)

// forwardServer is what the forwarding service calls on the leader.
type forwardServer interface {
	renewLocal(ctx context.Context, id int64) (int64, error)
	timeToLiveLocal(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
}

var forwardDesc = grpc.ServiceDesc{
	ServiceName: forwardService,
	HandlerType: (*forwardServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Renew", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var r pb.LeaseKeepAliveRequest
			if err := dec(&r); err != nil {
				return nil, err
			}
			ttl, err := srv.(forwardServer).renewLocal(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			return &pb.LeaseKeepAliveResponse{ID: r.ID, TTL: ttl}, nil
		}},
		{MethodName: "TimeToLive", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var r pb.LeaseTimeToLiveRequest
			if err := dec(&r); err != nil {
				return nil, err
			}
			return srv.(forwardServer).timeToLiveLocal(ctx, &r)
		}},
	},
	Streams: []grpc.StreamDesc{},
}

// RegisterForwarding registers the peer service through which followers
// reach this member's lessor.
func (s *Server) RegisterForwarding(g grpc.ServiceRegistrar) {
	g.RegisterService(&forwardDesc, forwardServer(s))
}

func forwardRenewTo(ctx context.Context, cc grpc.ClientConnInterface, id int64) (int64, error) {
	var resp pb.LeaseKeepAliveResponse
	if err := cc.Invoke(ctx, forwardRenew, &pb.LeaseKeepAliveRequest{ID: id}, &resp); err != nil {
		return -1, err
	}
	return resp.TTL, nil
}

func forwardTimeToLiveTo(ctx context.Context, cc grpc.ClientConnInterface, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	var resp pb.LeaseTimeToLiveResponse
	if err := cc.Invoke(ctx, forwardTimeToLive, r, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
