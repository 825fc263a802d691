package kv

import (
	"bytes"
	"context"
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/services/rpcerr"
)

// initialStreamChunkLimit is the first chunk's size in keys (etcd: 10).
const initialStreamChunkLimit = 10

// WithMaxChunkBytes sets the size RangeStream aims its chunks at (etcd:
// --max-request-bytes).
func (s *Server) WithMaxChunkBytes(n int) *Server {
	if n > 0 {
		s.maxChunkBytes = n
	}
	return s
}

// RangeStream implements pb.KVServer (etcd 3.7): the result of a Range in
// chunks whose key count adapts to land near the request size limit. All
// chunks come from one consistent view at one revision; the header, More
// and Count travel on the last chunk only, so proto-merging every chunk
// gives the Range response (Count counts the whole range, as Range's).
// Custom sort orders and revision filters get Unimplemented, as in etcd.
func (s *Server) RangeStream(r *pb.RangeRequest, rs pb.KV_RangeStreamServer) error {
	if err := CheckRange(r); err != nil {
		return err
	}
	if !defaultOrder(r.SortTarget, r.SortOrder) {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support custom sort orders")
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support revision filters")
	}
	ctx := rs.Context()
	if err := s.authorizeRange(ctx, r); err != nil {
		return rpcerr.ToGRPC(s.lg, err)
	}
	err := s.b.View(ctx, r.Serializable, func(rv RangeReader) error { return s.rangeStream(ctx, rv, r, rs) })
	return rpcerr.ToGRPC(s.lg, err)
}

func (s *Server) rangeStream(ctx context.Context, rv RangeReader, r *pb.RangeRequest, rs pb.KV_RangeStreamServer) error {
	send := func(out *pb.RangeResponse) error {
		if out.Header != nil {
			s.fill(out.Header)
		}
		return rs.Send(&pb.RangeStreamResponse{RangeResponse: out})
	}
	if r.CountOnly {
		resp, err := Range(rv, r, false)
		if err != nil {
			return err
		}
		return send(&pb.RangeResponse{Header: &pb.ResponseHeader{Revision: resp.Header.Revision}, Count: resp.Count})
	}
	q := proto.Clone(r).(*pb.RangeRequest)
	total := r.Limit
	if total == 0 {
		total = math.MaxInt64
	}
	q.Limit = min(int64(initialStreamChunkLimit), total)
	var count, rev int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		resp, err := Range(rv, q, false)
		if err != nil {
			return err
		}
		if rev == 0 {
			rev = resp.Header.Revision // the store's revision, as Range reports
			if q.Revision == 0 {
				q.Revision = rev // later chunks read at the same revision
			}
		}
		count += int64(len(resp.Kvs))
		var next []byte
		if resp.More {
			next = append(bytes.Clone(resp.Kvs[len(resp.Kvs)-1].Key), 0)
		}
		out := &pb.RangeResponse{Kvs: resp.Kvs}
		done := !resp.More || count == total
		if done {
			out.Header, out.More, out.Count = &pb.ResponseHeader{Revision: rev}, resp.More, count
			if resp.More {
				rest, err := Range(rv, &pb.RangeRequest{Key: next, RangeEnd: q.RangeEnd, Revision: q.Revision, CountOnly: true}, true)
				if err != nil {
					return err
				}
				out.Count += rest.Count
			}
		}
		if err := send(out); err != nil || done {
			return err
		}
		q.Key = next
		q.Limit = min(adjustChunkLimit(q.Limit, proto.Size(resp), s.maxChunkBytes), total-count)
	}
}

// adjustChunkLimit doubles or halves the next chunk's key count when the
// last chunk was under half or over twice the target size (etcd's rule);
// never below 1.
func adjustChunkLimit(last int64, lastSize, target int) int64 {
	switch {
	case lastSize < target/2:
		last *= 2
	case lastSize > target*2:
		last /= 2
	}
	return max(last, 1)
}
