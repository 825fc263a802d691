package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
)

type aux map[string][]byte

func (a aux) PutAux(bucket string, k, v []byte) { a[bucket+"/"+string(k)] = v }
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

func TestMembers(t *testing.T) {
	initial := []*pb.Member{{ID: 9, Name: "b", PeerURLs: []string{"http://b:2380"}}, {ID: 3, Name: "a", PeerURLs: []string{"http://a:2380"}}}
	tb, store := NewMembers(initial), aux{}
	require.Equal(t, []uint64{3, 9}, ids(tb.List()), "by ID")
	require.False(t, tb.Published(3, []string{"http://a:2379"}))
	tb.ApplyAttrSet(store, &membershippb.ClusterMemberAttrSetRequest{Member_ID: 3, MemberAttributes: &membershippb.Attributes{Name: "a", ClientUrls: []string{"http://a:2379"}}})
	tb.ApplyAttrSet(store, &membershippb.ClusterMemberAttrSetRequest{Member_ID: 77, MemberAttributes: &membershippb.Attributes{Name: "ghost"}})
	require.True(t, tb.Published(3, []string{"http://a:2379"}))
	require.Len(t, tb.List(), 2, "unknown members are ignored")
	initial[0].Name = "changed" // the table holds its own copies
	require.Equal(t, "b", tb.List()[1].Name)

	again := NewMembers([]*pb.Member{{ID: 9, Name: "b"}, {ID: 3, Name: "a"}})
	require.NoError(t, again.Recover(store))
	require.Equal(t, []string{"http://a:2379"}, again.List()[0].ClientURLs)
	require.Empty(t, again.List()[1].ClientURLs)
}

func ids(ms []*pb.Member) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}
