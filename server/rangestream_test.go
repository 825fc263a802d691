package server_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// rangeStream collects a RangeStream: the chunks and their proto.Merge.
func rangeStream(t *testing.T, kvc pb.KVClient, r *pb.RangeRequest) ([]*pb.RangeResponse, *pb.RangeResponse, error) {
	t.Helper()
	st, err := kvc.RangeStream(ctx(t), r)
	require.NoError(t, err)
	var chunks []*pb.RangeResponse
	merged := &pb.RangeResponse{}
	for {
		resp, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return chunks, merged, nil
		}
		if err != nil {
			return nil, nil, err
		}
		chunks = append(chunks, resp.RangeResponse)
		proto.Merge(merged, resp.RangeResponse)
	}
}

func TestRangeStream(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	kvc := pb.NewKVClient(c.ActiveConnection())
	val := strings.Repeat("v", 4<<10)
	for i := range 600 {
		_, err := c.Put(ctx(t), fmt.Sprintf("s/%04d", i), val)
		require.NoError(t, err)
	}
	_, err := c.Put(ctx(t), "t", "after the range")
	require.NoError(t, err)

	end := []byte("s0")
	for name, r := range map[string]*pb.RangeRequest{
		"all":          {Key: []byte("s/"), RangeEnd: end},
		"limit":        {Key: []byte("s/"), RangeEnd: end, Limit: 25},
		"limit=size":   {Key: []byte("s/"), RangeEnd: end, Limit: 600},
		"keys only":    {Key: []byte("s/"), RangeEnd: end, KeysOnly: true},
		"count only":   {Key: []byte("s/"), RangeEnd: end, CountOnly: true},
		"old revision": {Key: []byte("s/"), RangeEnd: end, Revision: 300},
		"serializable": {Key: []byte("s/"), RangeEnd: end, Serializable: true, Limit: 100},
		"one key":      {Key: []byte("s/0007")},
		"nothing":      {Key: []byte("x")},
	} {
		want, err := kvc.Range(ctx(t), r)
		require.NoError(t, err, name)
		chunks, got, err := rangeStream(t, kvc, r)
		require.NoError(t, err, name)
		require.True(t, proto.Equal(want, got), "%s: merged chunks equal Range:\n%v\n%v", name, want.Header, got.Header)
		for i, ch := range chunks[:len(chunks)-1] {
			require.Nil(t, ch.Header, "%s: chunk %d: the header travels on the last chunk only", name, i)
			require.Zero(t, ch.Count)
		}
		if name == "all" {
			require.Greater(t, len(chunks), 3, "2.4 MiB come in several chunks")
			require.Greater(t, len(chunks[1].Kvs), len(chunks[0].Kvs), "chunks grow while under the target size")
		}
	}

	for _, tc := range []struct {
		r    *pb.RangeRequest
		code codes.Code
		msg  string
	}{
		{&pb.RangeRequest{Key: []byte("s/"), RangeEnd: end, SortOrder: pb.RangeRequest_DESCEND}, codes.Unimplemented, "RangeStream does not support custom sort orders"},
		{&pb.RangeRequest{Key: []byte("s/"), RangeEnd: end, MinModRevision: 3}, codes.Unimplemented, "RangeStream does not support revision filters"},
		{&pb.RangeRequest{}, codes.InvalidArgument, "etcdserver: key is not provided"},
		{&pb.RangeRequest{Key: []byte("s/"), Revision: 1 << 40}, codes.OutOfRange, "etcdserver: mvcc: required revision is a future revision"},
	} {
		_, _, err := rangeStream(t, kvc, tc.r)
		require.Equal(t, tc.code, status.Code(err), "%v", tc.r)
		require.Equal(t, tc.msg, status.Convert(err).Message())
	}
	_, err = c.Compact(ctx(t), 100)
	require.NoError(t, err)
	_, _, err = rangeStream(t, kvc, &pb.RangeRequest{Key: []byte("s/"), Revision: 50})
	require.Equal(t, rpctypes.ErrGRPCCompacted.Error(), err.Error())
}
