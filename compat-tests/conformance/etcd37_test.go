package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Answers etcd 3.7 gives that follow from how it serves them rather than
// from the API's documentation; clients observe them.

// A keys-only Range not sorted by value is answered from etcd 3.7's
// in-memory index, which keeps no lease: each kv comes without its lease
// (also inside a txn). Sorted by value it reads the values, with leases.
func TestKeysOnlyRangeHasNoLease(t *testing.T) {
	c, p := newClient(t), prefix(t)
	l, err := c.Grant(ctx(t), 60)
	require.NoError(t, err)
	put, err := c.Put(ctx(t), p+"k", "v", clientv3.WithLease(l.ID))
	require.NoError(t, err)
	full, err := c.Get(ctx(t), p+"k")
	require.NoError(t, err)
	require.Equal(t, int64(l.ID), full.Kvs[0].Lease)

	ko, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	require.NoError(t, err)
	require.Len(t, ko.Kvs, 1)
	require.Zero(t, ko.Kvs[0].Lease, "keys_only: no lease")
	require.Nil(t, ko.Kvs[0].Value)
	require.Equal(t, put.Header.Revision, ko.Kvs[0].ModRevision)
	require.Equal(t, put.Header.Revision, ko.Kvs[0].CreateRevision)
	require.Equal(t, int64(1), ko.Kvs[0].Version)

	byValue, err := c.Get(ctx(t), p, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend))
	require.NoError(t, err)
	require.Equal(t, int64(l.ID), byValue.Kvs[0].Lease, "keys_only sorted by value: read with its lease")
	require.Nil(t, byValue.Kvs[0].Value)

	tr, err := c.Txn(ctx(t)).Then(clientv3.OpGet(p+"k", clientv3.WithKeysOnly()), clientv3.OpGet(p+"k")).Commit()
	require.NoError(t, err)
	require.Zero(t, tr.Responses[0].GetResponseRange().Kvs[0].Lease, "keys_only in a txn: no lease")
	require.Equal(t, int64(l.ID), tr.Responses[1].GetResponseRange().Kvs[0].Lease)
}

// rawWatch opens a watch stream on the first endpoint's connection.
func rawWatch(t *testing.T, c *clientv3.Client) pb.Watch_WatchClient {
	t.Helper()
	ws, err := pb.NewWatchClient(c.ActiveConnection()).Watch(ctx(t))
	require.NoError(t, err)
	return ws
}

// recv receives one response or fails after a while.
func recv(t *testing.T, ws pb.Watch_WatchClient) *pb.WatchResponse {
	t.Helper()
	ch := make(chan *pb.WatchResponse, 1)
	go func() {
		r, err := ws.Recv()
		if err != nil {
			t.Errorf("watch recv: %v", err)
		}
		ch <- r
	}()
	select {
	case r := <-ch:
		require.NotNil(t, r)
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response")
	}
	return nil
}

// nothing requires that no response arrives for a while (the response, if
// any, is read by the next recv).
func nothing(t *testing.T, ws pb.Watch_WatchClient, what string) <-chan *pb.WatchResponse {
	t.Helper()
	ch := make(chan *pb.WatchResponse, 1)
	go func() {
		r, err := ws.Recv()
		if err == nil {
			ch <- r
		}
	}()
	select {
	case r := <-ch:
		t.Fatalf("%s: got %v", what, r)
	case <-time.After(500 * time.Millisecond):
	}
	return ch
}

// A watch created at a compacted revision: a created response, then a
// cancel with the compaction revision and an empty header.
func TestWatchCompactedStartResponses(t *testing.T) {
	c, p := newClient(t, endpoints[0]), prefix(t)
	r1, err := c.Put(ctx(t), p+"k", "1")
	require.NoError(t, err)
	r2, err := c.Put(ctx(t), p+"k", "2")
	require.NoError(t, err)
	_, err = c.Compact(ctx(t), r2.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	ws := rawWatch(t, c)
	require.NoError(t, ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
		CreateRequest: &pb.WatchCreateRequest{Key: []byte(p + "k"), StartRevision: r1.Header.Revision}}}))
	created := recv(t, ws)
	require.True(t, created.Created)
	require.False(t, created.Canceled)
	require.NotZero(t, created.Header.Revision)
	canceled := recv(t, ws)
	require.True(t, canceled.Canceled)
	require.Equal(t, created.WatchId, canceled.WatchId)
	require.GreaterOrEqual(t, canceled.CompactRevision, r2.Header.Revision)
	require.Zero(t, canceled.GetHeader().GetRevision(), "the cancel's header is empty")
	require.Empty(t, canceled.CancelReason)
}

// A watch created with a negative start revision is refused in one
// response, created and canceled, watch id -1; it is not a watch.
func TestWatchNegativeStartRevision(t *testing.T) {
	c, p := newClient(t, endpoints[0]), prefix(t)
	ws := rawWatch(t, c)
	require.NoError(t, ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
		CreateRequest: &pb.WatchCreateRequest{Key: []byte(p + "k"), StartRevision: -1}}}))
	r := recv(t, ws)
	require.True(t, r.Created)
	require.True(t, r.Canceled)
	require.Equal(t, int64(-1), r.WatchId)
	require.Equal(t, rpctypes.ErrCompacted.Error(), r.CancelReason)
	nothing(t, ws, "nothing after the refusal")
}

// A progress request on a stream with no watchers gets no response.
func TestWatchProgressWithoutWatchers(t *testing.T) {
	c, p := newClient(t, endpoints[0]), prefix(t)
	ws := rawWatch(t, c)
	require.NoError(t, ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}))
	pending := nothing(t, ws, "progress with no watchers")
	require.NoError(t, ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
		CreateRequest: &pb.WatchCreateRequest{Key: []byte(p + "k")}}}))
	select {
	case r := <-pending:
		require.True(t, r.Created, "the next response is the watch's creation: %v", r)
	case <-time.After(10 * time.Second):
		t.Fatal("no created response")
	}
}
