package watch_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/services/watch"
	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type header struct{}

func (header) FillHeader(h *pb.ResponseHeader) { h.ClusterId, h.MemberId, h.RaftTerm = 1, 2, 3 }

type denyAll struct{}

func (denyAll) Authorize(context.Context, bool, []byte, []byte) error {
	return errors.New("not allowed")
}

// env is a Watch service over a memory store, served on loopback.
type env struct {
	st  *storage.Store
	cli pb.WatchClient
	srv *watch.Server
}

func newEnv(t *testing.T, cfg watch.Config) *env {
	t.Helper()
	st, err := storage.Open(memory.New(), storage.Config{})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	ws := watch.NewServer(func() watch.Store { return st }, header{}, cfg)
	pb.RegisterWatchServer(srv, ws)
	go srv.Serve(l)
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		cc.Close()
		srv.Stop()
		st.Close()
	})
	return &env{st: st, cli: pb.NewWatchClient(cc), srv: ws}
}

func (e *env) stream(t *testing.T) pb.Watch_WatchClient {
	t.Helper()
	ws, _ := e.streamCancel(t)
	return ws
}

// streamCancel is stream with the function that ends it.
func (e *env) streamCancel(t *testing.T) (pb.Watch_WatchClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	ws, err := e.cli.Watch(ctx)
	require.NoError(t, err)
	return ws, cancel
}

func (e *env) put(t *testing.T, key, val string) int64 {
	t.Helper()
	rev, err := e.st.Put([]byte(key), []byte(val), 0)
	require.NoError(t, err)
	return rev
}

func create(t *testing.T, ws pb.Watch_WatchClient, c *pb.WatchCreateRequest) *pb.WatchResponse {
	t.Helper()
	require.NoError(t, ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: c}}))
	r, err := ws.Recv()
	require.NoError(t, err)
	require.True(t, r.Created, "the created response comes first")
	return r
}

func recv(t *testing.T, ws pb.Watch_WatchClient) *pb.WatchResponse {
	t.Helper()
	r, err := ws.Recv()
	require.NoError(t, err)
	return r
}

func TestCreateEventsFiltersCancel(t *testing.T) {
	e := newEnv(t, watch.Config{})
	e.put(t, "a", "0")
	ws, end := e.streamCancel(t)
	r := create(t, ws, &pb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte("b"), PrevKv: true})
	require.Equal(t, &pb.ResponseHeader{ClusterId: 1, MemberId: 2, RaftTerm: 3, Revision: 2}, r.Header)
	id := r.WatchId
	nodel := create(t, ws, &pb.WatchCreateRequest{Key: []byte("a"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}})
	require.NotEqual(t, id, nodel.WatchId)

	rev := e.put(t, "a", "1")
	got := recv(t, ws)
	require.Equal(t, id, got.WatchId, "the NOPUT watcher gets no put")
	require.Equal(t, rev, got.Header.Revision)
	require.Len(t, got.Events, 1)
	require.Equal(t, mvccpb.Event_PUT, got.Events[0].Type)
	require.Equal(t, "0", string(got.Events[0].PrevKv.Value), "prev_kv")

	_, rev, err := e.st.DeleteRange([]byte("a"), nil)
	require.NoError(t, err)
	seen := map[int64]mvccpb.Event_EventType{}
	for range 2 {
		got = recv(t, ws)
		require.Equal(t, rev, got.Header.Revision)
		seen[got.WatchId] = got.Events[0].Type
	}
	require.Equal(t, map[int64]mvccpb.Event_EventType{id: mvccpb.Event_DELETE, nodel.WatchId: mvccpb.Event_DELETE}, seen)

	require.Equal(t, watch.Stats{Streams: 1, Watchers: 2, Events: 3}, e.srv.Stats())
	require.NoError(t, ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}}))
	got = recv(t, ws)
	require.True(t, got.Canceled)
	require.Equal(t, id, got.WatchId)
	require.EqualValues(t, 1, e.srv.Stats().Watchers, "the canceled watcher is gone")
	end()
	require.Eventually(t, func() bool { return e.srv.Stats() == watch.Stats{Events: 3} }, 5*time.Second, 10*time.Millisecond,
		"a closed stream takes its watchers with it")
}

// A fragmenting watcher gets a response over MaxResponseBytes in parts,
// each but the last marked Fragment; others get it whole.
func TestFragment(t *testing.T) {
	e := newEnv(t, watch.Config{MaxResponseBytes: 1 << 10})
	val := strings.Repeat("v", 600)
	for _, k := range []string{"f1", "f2", "f3", "f4"} {
		e.put(t, k, val)
	}
	ws := e.stream(t)
	create(t, ws, &pb.WatchCreateRequest{Key: []byte("f"), RangeEnd: []byte("g"), StartRevision: 1, Fragment: true})
	var events, parts int
	for {
		r := recv(t, ws)
		parts++
		events += len(r.Events)
		if !r.Fragment {
			break
		}
		require.NotEmpty(t, r.Events)
	}
	require.Equal(t, 4, events)
	require.Greater(t, parts, 1, "the history did not fit one response")

	whole := e.stream(t)
	create(t, whole, &pb.WatchCreateRequest{Key: []byte("f"), RangeEnd: []byte("g"), StartRevision: 1})
	r := recv(t, whole)
	require.False(t, r.Fragment)
	require.Len(t, r.Events, 4)
}

func TestCompactedStartAndBadRanges(t *testing.T) {
	e := newEnv(t, watch.Config{})
	e.put(t, "k", "1")
	rev := e.put(t, "k", "2")
	done, err := e.st.Compact(rev)
	require.NoError(t, err)
	<-done
	ws := e.stream(t)
	r := create(t, ws, &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 1})
	if !r.Canceled { // as etcd: created, then canceled with the compact revision
		r = recv(t, ws)
	}
	require.True(t, r.Canceled)
	require.Equal(t, rev, r.CompactRevision)

	r = create(t, ws, &pb.WatchCreateRequest{Key: []byte("z"), RangeEnd: []byte("a")})
	require.True(t, r.Canceled)
	require.Equal(t, storage.ErrEmptyWatcherRange.Error(), r.CancelReason)
}

func TestUnauthorizedWatchIsCanceledWithoutData(t *testing.T) {
	e := newEnv(t, watch.Config{Authorizer: denyAll{}})
	e.put(t, "secret", "v")
	ws := e.stream(t)
	r := create(t, ws, &pb.WatchCreateRequest{Key: []byte("secret"), StartRevision: 1})
	require.True(t, r.Canceled)
	require.EqualValues(t, -1, r.WatchId)
	require.Equal(t, rpctypes.ErrGRPCPermissionDenied.Error(), r.CancelReason)
	require.Empty(t, r.Events)
}

func TestProgress(t *testing.T) {
	e := newEnv(t, watch.Config{ProgressNotifyInterval: 50 * time.Millisecond})
	ws := e.stream(t)
	w := create(t, ws, &pb.WatchCreateRequest{Key: []byte("p"), ProgressNotify: true})
	rev := e.put(t, "other", "v")
	var r *pb.WatchResponse
	for { // a tick may come before the put: wait for one after it
		r = recv(t, ws)
		require.Equal(t, w.WatchId, r.WatchId, "a periodic progress notification")
		require.Empty(t, r.Events)
		if r.Header.Revision == rev {
			break
		}
	}

	require.NoError(t, ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}))
	for {
		r = recv(t, ws)
		if r.WatchId == -1 { // the answer to the request, not a periodic one
			break
		}
	}
	require.Empty(t, r.Events)
	require.Equal(t, rev, r.Header.Revision)
}

// When the store closes under a stream (member stopping, snapshot
// restore), the stream ends with Unavailable so clients resume.
func TestStoreClosedEndsStreamUnavailable(t *testing.T) {
	e := newEnv(t, watch.Config{})
	ws := e.stream(t)
	create(t, ws, &pb.WatchCreateRequest{Key: []byte("k")})
	require.NoError(t, e.st.Close())
	_, err := ws.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err))
}
