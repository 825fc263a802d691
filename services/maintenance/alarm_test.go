package maintenance

import (
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// aux is an in-memory auxiliary bucket store.
type aux map[string][]byte

func (a aux) PutAux(bucket string, k, v []byte) { a[bucket+"/"+string(k)] = v }
func (a aux) DeleteAux(bucket string, k []byte) { delete(a, bucket+"/"+string(k)) }
func (a aux) ForEachAux(bucket string, fn func(k, v []byte) error) error {
	for k, v := range a {
		if len(k) > len(bucket) && k[:len(bucket)+1] == bucket+"/" {
			if err := fn([]byte(k[len(bucket)+1:]), v); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestAlarms(t *testing.T) {
	a, store := NewAlarms(), aux{}
	act := func(m uint64, typ pb.AlarmType) *pb.AlarmResponse {
		return a.Apply(store, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: m, Alarm: typ})
	}
	require.Empty(t, act(1, pb.AlarmType_NONE).Alarms, "activating NONE does nothing")
	require.Len(t, act(2, pb.AlarmType_NOSPACE).Alarms, 1)
	act(1, pb.AlarmType_NOSPACE)
	act(1, pb.AlarmType_CORRUPT)
	require.True(t, a.Active(pb.AlarmType_NOSPACE))
	require.Equal(t, []*pb.AlarmMember{
		{MemberID: 1, Alarm: pb.AlarmType_NOSPACE}, {MemberID: 1, Alarm: pb.AlarmType_CORRUPT}, {MemberID: 2, Alarm: pb.AlarmType_NOSPACE},
	}, a.Apply(store, &pb.AlarmRequest{Action: pb.AlarmRequest_GET}).Alarms, "GET NONE lists all, by member")
	require.Len(t, a.Get(pb.AlarmType_CORRUPT), 1)

	// The table is recovered from what Apply stored.
	b := NewAlarms()
	require.NoError(t, b.Recover(store))
	require.Equal(t, a.Get(pb.AlarmType_NONE), b.Get(pb.AlarmType_NONE))

	deact := func(m uint64, typ pb.AlarmType) *pb.AlarmResponse {
		return a.Apply(store, &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: m, Alarm: typ})
	}
	require.Len(t, deact(1, pb.AlarmType_NOSPACE).Alarms, 1)
	require.True(t, a.Active(pb.AlarmType_NOSPACE), "member 2 still has it")
	require.Empty(t, deact(1, pb.AlarmType_NOSPACE).Alarms, "deactivating twice changes nothing")
	deact(2, pb.AlarmType_NOSPACE)
	require.False(t, a.Active(pb.AlarmType_NOSPACE))
	require.NoError(t, b.Recover(store))
	require.Equal(t, []*pb.AlarmMember{{MemberID: 1, Alarm: pb.AlarmType_CORRUPT}}, b.Get(pb.AlarmType_NONE))
	require.Nil(t, a.Apply(store, &pb.AlarmRequest{Action: 9}), "unknown action")
}
