package conformance

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// RangeStream (etcd 3.7): the chunks proto-merge into the Range response.
func TestRangeStream(t *testing.T) {
	c, p := newClient(t), prefix(t)
	val := strings.Repeat("v", 1024)
	for i := range 50 {
		_, err := c.Put(ctx(t), fmt.Sprintf("%s%03d", p, i), val)
		require.NoError(t, err)
	}
	kvc := pb.NewKVClient(c.ActiveConnection())
	end := []byte(clientv3.GetPrefixRangeEnd(p))
	for _, r := range []*pb.RangeRequest{
		{Key: []byte(p), RangeEnd: end},
		{Key: []byte(p), RangeEnd: end, Limit: 15},
		{Key: []byte(p), RangeEnd: end, CountOnly: true},
		{Key: []byte(p), RangeEnd: end, KeysOnly: true, Serializable: true},
	} {
		want, err := kvc.Range(ctx(t), r)
		require.NoError(t, err)
		r = proto.Clone(r).(*pb.RangeRequest)
		r.Revision = want.Header.Revision // same data on both sides
		want, err = kvc.Range(ctx(t), r)
		require.NoError(t, err)
		st, err := kvc.RangeStream(ctx(t), r)
		require.NoError(t, err)
		got := &pb.RangeResponse{}
		for {
			resp, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			skipIfUnimplemented(t, err)
			require.NoError(t, err)
			proto.Merge(got, resp.RangeResponse)
		}
		got.Header.MemberId, want.Header.MemberId = 0, 0 // may differ on a cluster
		got.Header.RaftTerm, want.Header.RaftTerm = 0, 0
		// Both headers carry the store's latest revision when served (the
		// stream's from its start, as etcd): other clients may have
		// written in between.
		require.GreaterOrEqual(t, got.Header.Revision, want.Header.Revision)
		got.Header.Revision, want.Header.Revision = 0, 0
		require.True(t, proto.Equal(want, got), "%v:\n%v\n%v", r, want, got)
	}
	st, err := kvc.RangeStream(ctx(t), &pb.RangeRequest{Key: []byte(p), RangeEnd: end, SortOrder: pb.RangeRequest_DESCEND})
	require.NoError(t, err)
	_, err = st.Recv()
	require.Equal(t, codes.Unimplemented, status.Code(err), "etcd's answer to a sorted stream")
	require.Equal(t, "RangeStream does not support custom sort orders", status.Convert(err).Message())
}

// A fragmenting watcher replaying more history than the server's response
// limit gets it in pieces that reassemble into every event.
func TestWatchFragment(t *testing.T) {
	c, p := newClient(t), prefix(t)
	from := nextRev(t, c)
	val := strings.Repeat("x", 400<<10)
	for i := range 5 { // 2 MiB of history, over the 1.5 MiB default limit
		_, err := c.Put(ctx(t), fmt.Sprint(p, i), val)
		require.NoError(t, err)
	}
	w := c.Watch(ctx(t), p, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithFragment())
	evs := events(t, w, 5)
	require.Len(t, evs, 5)
	for i, ev := range evs {
		require.Equal(t, fmt.Sprint(p, i), string(ev.Kv.Key))
		require.Len(t, ev.Kv.Value, len(val))
	}
}

func TestHashKVAgreesAcrossMembers(t *testing.T) {
	c, p := newClient(t), prefix(t)
	r, err := c.Put(ctx(t), p+"k", "v")
	require.NoError(t, err)
	var first uint32
	for i, ep := range endpoints {
		var h *clientv3.HashKVResponse
		require.Eventually(t, func() bool { // a member may not have applied rev yet
			h, err = c.HashKV(ctx(t), ep, r.Header.Revision)
			return !errors.Is(err, rpctypes.ErrFutureRev)
		}, 10*time.Second, 10*time.Millisecond)
		require.NoError(t, err)
		require.Equal(t, r.Header.Revision, h.HashRevision)
		if i == 0 {
			first = h.Hash
		}
		require.Equal(t, first, h.Hash, "member %s", ep)
	}
	_, err = c.HashKV(ctx(t), endpoints[0], r.Header.Revision+1_000_000)
	require.ErrorIs(t, err, rpctypes.ErrFutureRev)
}

func TestLeaseKeepAliveStream(t *testing.T) {
	c := newClient(t)
	g, err := c.Grant(ctx(t), 10)
	skipIfUnimplemented(t, err)
	require.NoError(t, err)
	ch, err := c.KeepAlive(ctx(t), g.ID)
	require.NoError(t, err)
	for range 2 {
		ka := <-ch
		require.NotNil(t, ka)
		require.Equal(t, g.ID, ka.ID)
		require.EqualValues(t, 10, ka.TTL)
	}
	_, err = c.Revoke(ctx(t), g.ID)
	require.NoError(t, err)
}
