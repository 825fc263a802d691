package kv

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/services/rpcerr"
)

// Backend serves validated KV requests. The server implements it: reads
// from the local store (after ReadIndex for linearizable ones), writes
// through consensus. Responses carry the revision in their header; the
// rest of the header is filled by the Server.
type Backend interface {
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error)
	// View runs f on one consistent view of the store, after a ReadIndex
	// round unless serializable (RangeStream reads every chunk from it).
	View(ctx context.Context, serializable bool, f func(RangeReader) error) error
}

// HeaderFiller fills the cluster ID, member ID and Raft term of a response
// header.
type HeaderFiller interface {
	FillHeader(h *pb.ResponseHeader)
}

// Server is the gRPC KV service.
type Server struct {
	pb.UnimplementedKVServer
	b         Backend
	hdr       HeaderFiller
	maxTxnOps int
	lg        *zap.Logger
	auth      Authorizer
	leaseKeys LeaseKeyLister
	// maxChunkBytes is the size RangeStream aims its chunks at.
	maxChunkBytes int
}

var _ pb.KVServer = (*Server)(nil)

// NewServer returns the KV service over b. maxTxnOps <= 0 means
// DefaultMaxTxnOps; lg may be nil.
func NewServer(b Backend, hdr HeaderFiller, maxTxnOps int, lg *zap.Logger) *Server {
	if maxTxnOps <= 0 {
		maxTxnOps = DefaultMaxTxnOps
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Server{b: b, hdr: hdr, maxTxnOps: maxTxnOps, lg: lg, auth: allowAll{}, maxChunkBytes: DefaultMaxRequestBytes}
}

func (s *Server) fill(h *pb.ResponseHeader) {
	if h != nil && s.hdr != nil {
		s.hdr.FillHeader(h)
	}
}

// Range implements pb.KVServer.
func (s *Server) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := CheckRange(r); err != nil {
		return nil, err
	}
	if err := s.authorizeRange(ctx, r); err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	resp, err := s.b.Range(ctx, r)
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	s.fill(resp.Header)
	return resp, nil
}

// Put implements pb.KVServer.
func (s *Server) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := CheckPut(r); err != nil {
		return nil, err
	}
	if err := s.authorizePut(ctx, r); err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	resp, err := s.b.Put(ctx, r)
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	s.fill(resp.Header)
	return resp, nil
}

// DeleteRange implements pb.KVServer.
func (s *Server) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := CheckDeleteRange(r); err != nil {
		return nil, err
	}
	if err := s.authorizeDeleteRange(ctx, r); err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	resp, err := s.b.DeleteRange(ctx, r)
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	s.fill(resp.Header)
	return resp, nil
}

// Txn implements pb.KVServer.
func (s *Server) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := CheckTxn(r, s.maxTxnOps); err != nil {
		return nil, err
	}
	if err := s.authorizeTxn(ctx, r); err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	resp, err := s.b.Txn(ctx, r)
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	s.fill(resp.Header) // the top header only, as etcd
	return resp, nil
}

// Compact implements pb.KVServer.
func (s *Server) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.b.Compact(ctx, r)
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	s.fill(resp.Header)
	return resp, nil
}
