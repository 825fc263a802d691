package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSingleNodeKV(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	resp, err := c.Put(ctx(t), "a", "1")
	require.NoError(t, err)
	require.EqualValues(t, 2, resp.Header.Revision, "the first write is revision 2, as in etcd")
	require.NotZero(t, resp.Header.ClusterId)
	require.Equal(t, ms[0].Srv.ID(), resp.Header.MemberId)
	require.NotZero(t, resp.Header.RaftTerm)

	_, err = c.Put(ctx(t), "b", "2")
	require.NoError(t, err)
	get, err := c.Get(ctx(t), "", clientv3.WithPrefix())
	require.NoError(t, err)
	require.EqualValues(t, 2, get.Count)
	require.Equal(t, "1", string(get.Kvs[0].Value))
	ser, err := c.Get(ctx(t), "a", clientv3.WithSerializable())
	require.NoError(t, err)
	require.Equal(t, "1", string(ser.Kvs[0].Value))

	prev, err := c.Put(ctx(t), "a", "3", clientv3.WithPrevKV())
	require.NoError(t, err)
	require.Equal(t, "1", string(prev.PrevKv.Value))

	txn, err := c.Txn(ctx(t)).
		If(clientv3.Compare(clientv3.Value("a"), "=", "3")).
		Then(clientv3.OpPut("c", "x"), clientv3.OpGet("c")).
		Else(clientv3.OpPut("c", "y")).Commit()
	require.NoError(t, err)
	require.True(t, txn.Succeeded)
	require.Equal(t, "x", string(txn.Responses[1].GetResponseRange().Kvs[0].Value))

	del, err := c.Delete(ctx(t), "b", clientv3.WithPrevKV())
	require.NoError(t, err)
	require.EqualValues(t, 1, del.Deleted)
	require.Equal(t, "2", string(del.PrevKvs[0].Value))

	old, err := c.Get(ctx(t), "a", clientv3.WithRev(2))
	require.NoError(t, err)
	require.Equal(t, "1", string(old.Kvs[0].Value))

	_, err = c.Compact(ctx(t), 4, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	_, err = c.Get(ctx(t), "a", clientv3.WithRev(2))
	require.ErrorIs(t, err, rpctypes.ErrCompacted)
	_, err = c.Compact(ctx(t), 100)
	require.ErrorIs(t, err, rpctypes.ErrFutureRev)
}

func TestKVErrorsAreEtcds(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	_, err := c.Put(ctx(t), "", "v")
	require.ErrorIs(t, err, rpctypes.ErrEmptyKey)
	_, err = c.Put(ctx(t), "k", "v", clientv3.WithLease(123))
	require.ErrorIs(t, err, rpctypes.ErrLeaseNotFound)
	_, err = c.Put(ctx(t), "missing", "", clientv3.WithIgnoreValue())
	require.ErrorIs(t, err, rpctypes.ErrKeyNotFound)
	_, err = c.Txn(ctx(t)).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
	require.ErrorIs(t, err, rpctypes.ErrDuplicateKey)
	ops := make([]clientv3.Op, 129)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprint("k", i), "v")
	}
	_, err = c.Txn(ctx(t)).Then(ops...).Commit()
	require.ErrorIs(t, err, rpctypes.ErrTooManyOps)
	// Limits as etcd sets them: a Raft request over --max-request-bytes is
	// refused by the server; a message over it plus 512 KiB by gRPC.
	big := strings.Repeat("x", 800<<10)
	_, err = c.Txn(ctx(t)).Then(clientv3.OpPut("b1", big), clientv3.OpPut("b2", big)).Commit()
	require.ErrorIs(t, err, rpctypes.ErrRequestTooLarge)
	bc, err := clientv3.New(clientv3.Config{Endpoints: ms[0].Srv.ClientAddrs(), MaxCallSendMsgSize: 8 << 20, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer bc.Close()
	_, err = bc.Put(ctx(t), "huge", strings.Repeat("x", 5<<19))
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "2.5 MiB is over 1.5 MiB + 512 KiB")
}

func TestRestartKeepsData(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	for i := range 50 {
		_, err := c.Put(ctx(t), fmt.Sprint("k", i), fmt.Sprint(i))
		require.NoError(t, err)
	}
	ms[0].Srv.Stop()
	ms[0].Start()
	select {
	case <-ms[0].Srv.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("restarted member not ready")
	}
	// A restart may say --initial-cluster-state existing, as etcd allows.
	ms[0].Srv.Stop()
	ms[0].Cfg.InitialClusterState = "existing"
	ms[0].Start()
	<-ms[0].Srv.Ready()
	c2 := testcluster.Client(t, ms[0])
	get, err := c2.Get(ctx(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.EqualValues(t, 50, get.Count)
	require.EqualValues(t, 51, get.Header.Revision, "revisions survive the restart")
}

func TestThreeNodes(t *testing.T) {
	ms := testcluster.Start(t, 3)
	for i, m := range ms {
		_, err := testcluster.Client(t, m).Put(ctx(t), fmt.Sprint("from", i), "v")
		require.NoError(t, err, "member %d accepts writes (followers forward)", i)
	}
	var rev int64
	for i, m := range ms {
		get, err := testcluster.Client(t, m).Get(ctx(t), "from", clientv3.WithPrefix())
		require.NoError(t, err)
		require.EqualValues(t, 3, get.Count, "linearizable read on member %d sees every write", i)
		rev = get.Header.Revision
	}
	var hashes []uint32
	for _, m := range ms {
		h, err := testcluster.Client(t, m).HashKV(ctx(t), m.Srv.ClientAddrs()[0], rev)
		require.NoError(t, err)
		require.Equal(t, rev, h.HashRevision)
		hashes = append(hashes, h.Hash)
	}
	require.Equal(t, hashes[0], hashes[1], "HashKV agrees across members")
	require.Equal(t, hashes[0], hashes[2])
}

func TestWatch(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	_, err := c.Put(ctx(t), "w/a", "0") // rev 2
	require.NoError(t, err)

	live := c.Watch(ctx(t), "w/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	past := c.Watch(ctx(t), "w/a", clientv3.WithRev(2))
	noPut := c.Watch(ctx(t), "w/a", clientv3.WithFilterPut())
	require.Eventually(t, func() bool { // watchers registered
		_, err := c.Put(ctx(t), "w/sync", "x")
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	_, err = c.Put(ctx(t), "w/a", "1")
	require.NoError(t, err)
	_, err = c.Delete(ctx(t), "w/a")
	require.NoError(t, err)

	var got []string
	for len(got) < 3 {
		wr := <-live
		require.NoError(t, wr.Err())
		for _, ev := range wr.Events {
			s := fmt.Sprintf("%s %s=%s", ev.Type, ev.Kv.Key, ev.Kv.Value)
			if ev.PrevKv != nil {
				s += " prev=" + string(ev.PrevKv.Value)
			}
			got = append(got, s)
		}
	}
	require.Equal(t, []string{"PUT w/sync=x", "PUT w/a=1 prev=0", "DELETE w/a= prev=1"}, got)

	wr := <-past
	require.NoError(t, wr.Err())
	require.NotEmpty(t, wr.Events, "%+v canceled=%v created=%v progress=%v", wr.Header, wr.Canceled, wr.Created, wr.IsProgressNotify())
	require.Equal(t, "0", string(wr.Events[0].Kv.Value), "a watch from revision 2 replays history")
	wr = <-noPut
	require.Len(t, wr.Events, 1)
	require.Equal(t, clientv3.EventTypeDelete, wr.Events[0].Type)

	// A watch from a compacted revision is cancelled with the compact revision.
	_, err = c.Compact(ctx(t), 4, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	wr = <-c.Watch(ctx(t), "w/a", clientv3.WithRev(2))
	require.True(t, wr.Canceled)
	require.EqualValues(t, 4, wr.CompactRevision)
	require.ErrorIs(t, wr.Err(), rpctypes.ErrCompacted)

	// Progress requests answer with the current revision.
	wch := c.Watch(ctx(t), "w/none", clientv3.WithProgressNotify())
	require.NoError(t, c.RequestProgress(ctx(t)))
	wr = <-wch
	require.True(t, wr.IsProgressNotify())
	require.EqualValues(t, 5, wr.Header.Revision)
}

func TestMemberListFromReplicatedTable(t *testing.T) {
	ms := testcluster.Start(t, 3)
	c := testcluster.Client(t, ms[0])
	want := map[uint64]*testcluster.Member{}
	for _, m := range ms {
		want[m.Srv.ID()] = m
	}
	for _, opts := range [][]clientv3.OpOption{nil, {clientv3.WithSerializable()}} {
		var list *clientv3.MemberListResponse
		require.Eventually(t, func() bool {
			var err error
			list, err = c.MemberList(ctx(t), opts...)
			if err != nil {
				return false
			}
			for _, m := range list.Members {
				if len(m.ClientURLs) == 0 {
					return false // not published yet
				}
			}
			return true
		}, 10*time.Second, 20*time.Millisecond, "every member publishes its client URLs through Raft")
		require.Len(t, list.Members, 3)
		for i, m := range list.Members {
			if i > 0 {
				require.Less(t, list.Members[i-1].ID, m.ID, "listed by ID, as etcd")
			}
			w := want[m.ID]
			require.NotNil(t, w)
			require.Equal(t, w.Cfg.Name, m.Name)
			require.Equal(t, []string{w.Cfg.InitialAdvertisePeerURLs}, m.PeerURLs)
			require.Equal(t, []string{w.Cfg.AdvertiseClientURLs}, m.ClientURLs)
			require.False(t, m.IsLearner)
		}
	}
	// The table survives a restart (it is stored with the data).
	ms[1].Srv.Stop()
	ms[1].Start()
	<-ms[1].Srv.Ready()
	list, err := testcluster.Client(t, ms[1]).MemberList(ctx(t), clientv3.WithSerializable())
	require.NoError(t, err)
	for _, m := range list.Members {
		require.NotEmpty(t, m.ClientURLs)
	}
}

// A watcher's created response comes before any of its events, as in
// etcd: clientv3 cancels a watch whose events arrive before its creation
// (its channel then closes with no event). Watchers from a past revision
// have events ready at once; clientv3 creates them one at a time.
func TestWatchCreatedBeforeEvents(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	_, err := c.Put(ctx(t), "cb", "v")
	require.NoError(t, err)
	stream, err := pb.NewWatchClient(c.ActiveConnection()).Watch(ctx(t))
	require.NoError(t, err)
	for i := range 500 {
		req := &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
			Key: []byte("cb"), StartRevision: 1}}}
		require.NoError(t, stream.Send(req))
		resp, err := stream.Recv()
		require.NoError(t, err)
		require.True(t, resp.Created, "watch %d: events before its created response", i)
		resp, err = stream.Recv()
		require.NoError(t, err)
		require.Len(t, resp.Events, 1)
	}
}
