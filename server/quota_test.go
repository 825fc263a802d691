package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/metastore/metastore/server/internal/testcluster"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/server"
)

func TestQuotaNoSpaceAlarm(t *testing.T) {
	ms := testcluster.Start(t, 1, func(c *server.Config) { c.QuotaBackendBytes = 4 << 20 })
	c := testcluster.Client(t, ms[0])
	ep := ms[0].Srv.ClientAddrs()[0]
	st, err := c.Status(ctx(t), ep)
	require.NoError(t, err)
	require.EqualValues(t, 4<<20, st.DbSizeQuota)
	require.Empty(t, st.Errors)

	val := strings.Repeat("x", 64<<10)
	var i int
	for i = 0; i < 1000; i++ {
		if _, err = c.Put(ctx(t), fmt.Sprint("big/", i), val); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, rpctypes.ErrNoSpace, "after %d puts", i)
	require.Greater(t, i, 10)

	alarms, err := c.AlarmList(ctx(t))
	require.NoError(t, err)
	require.Equal(t, []*pb.AlarmMember{{MemberID: ms[0].Srv.ID(), Alarm: pb.AlarmType_NOSPACE}}, alarms.Alarms)
	st, err = c.Status(ctx(t), ep)
	require.NoError(t, err)
	require.Len(t, st.Errors, 1)
	require.Regexp(t, fmt.Sprintf(`^memberID:%d +alarm:NOSPACE *$`, ms[0].Srv.ID()), st.Errors[0])

	code, body := httpGet(t, "http://"+ep+"/health")
	require.Equal(t, 503, code)
	require.Equal(t, `{"health":"false","reason":"ALARM NOSPACE"}`+"\n", body)
	code, _ = httpGet(t, "http://"+ep+"/health?exclude=NOSPACE")
	require.Equal(t, 200, code)

	// Read-only now: even a tiny put, a txn with a put and a lease grant
	// are refused; reads, deletes and compaction pass.
	_, err = c.Put(ctx(t), "small", "v")
	require.ErrorIs(t, err, rpctypes.ErrNoSpace)
	_, err = c.Txn(ctx(t)).Then(clientv3.OpPut("small", "v")).Commit()
	require.ErrorIs(t, err, rpctypes.ErrNoSpace)
	_, err = c.Grant(ctx(t), 60)
	require.ErrorIs(t, err, rpctypes.ErrNoSpace)
	_, err = c.Get(ctx(t), "big/0")
	require.NoError(t, err)
	del, err := c.Delete(ctx(t), "big/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.EqualValues(t, i, del.Deleted)
	_, err = c.Compact(ctx(t), del.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	_, err = c.Defragment(ctx(t), ep)
	require.NoError(t, err)
	st, err = c.Status(ctx(t), ep)
	require.NoError(t, err)
	require.Less(t, st.DbSize, int64(4<<20), "compaction and defrag gave the space back")
	_, err = c.Put(ctx(t), "small", "v")
	require.ErrorIs(t, err, rpctypes.ErrNoSpace, "still read-only until the alarm is disarmed")

	dis, err := c.AlarmDisarm(ctx(t), &clientv3.AlarmMember{MemberID: ms[0].Srv.ID(), Alarm: pb.AlarmType_NOSPACE})
	require.NoError(t, err)
	require.Len(t, dis.Alarms, 1)
	_, err = c.Put(ctx(t), "small", "v")
	require.NoError(t, err)
	alarms, err = c.AlarmList(ctx(t))
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms)
}
