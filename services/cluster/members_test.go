package cluster

import (
	"testing"

	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

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

func TestMembers(t *testing.T) {
	initial := []*pb.Member{{ID: 9, Name: "b", PeerURLs: []string{"http://b:2380"}}, {ID: 3, Name: "a", PeerURLs: []string{"http://a:2380"}}}
	tb, store := NewMembers(initial, 1), aux{}
	require.Equal(t, []uint64{3, 9}, ids(tb.List()), "by ID")
	require.False(t, tb.Published(3, []string{"http://a:2379"}))
	_ = tb.ApplyAttrSet(store, &membershippb.ClusterMemberAttrSetRequest{Member_ID: 3, MemberAttributes: &membershippb.Attributes{Name: "a", ClientUrls: []string{"http://a:2379"}}})
	_ = tb.ApplyAttrSet(store, &membershippb.ClusterMemberAttrSetRequest{Member_ID: 77, MemberAttributes: &membershippb.Attributes{Name: "ghost"}})
	require.True(t, tb.Published(3, []string{"http://a:2379"}))
	require.Len(t, tb.List(), 2, "unknown members are ignored")
	initial[0].Name = "changed" // the table holds its own copies
	require.Equal(t, "b", tb.List()[1].Name)

	again := NewMembers([]*pb.Member{{ID: 9, Name: "b"}, {ID: 3, Name: "a"}}, 1)
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

// TestMembershipChanges walks the table through etcd's membership rules:
// seeds confirmed by the log, adds, learners, promotion, updates and
// removals, each refusal with etcd's error, and a recovery that keeps
// removed IDs and refusals.
func TestMembershipChanges(t *testing.T) {
	tb, store := NewMembers([]*pb.Member{{ID: 1, Name: "a", PeerURLs: []string{"http://a:2380"}}}, 1), aux{}
	apply := func(c Change) error {
		if err := tb.Validate(c); err != nil {
			return err
		}
		return tb.Apply(store, c)
	}
	// A joining member replays history its seeds are not part of: an
	// earlier member on a seed's URL is accepted, as it was then.
	joiner := NewMembers([]*pb.Member{{ID: 7, PeerURLs: []string{"http://a:2380"}}}, 1)
	require.NoError(t, joiner.Validate(Change{Type: AddMember, ID: 6, PeerURLs: []string{"http://a:2380"}}))
	require.ErrorIs(t, joiner.Validate(Change{Type: Remove, ID: 7}), rpctypes.ErrGRPCMemberNotFound, "not confirmed yet")
	joiner.ConfirmSeeds()
	require.ErrorIs(t, joiner.Validate(Change{Type: AddMember, ID: 6, PeerURLs: []string{"http://a:2380"}}), rpctypes.ErrGRPCPeerURLExist)

	// The bootstrap entry confirms the seed, even with other URLs.
	require.NoError(t, apply(Change{Type: AddMember, ID: 1, Name: "a", PeerURLs: []string{"http://old:2380"}}))
	require.Equal(t, []string{"http://old:2380"}, tb.Member(1).PeerURLs)
	require.ErrorIs(t, apply(Change{Type: AddMember, ID: 1, PeerURLs: []string{"http://x:2380"}}), rpctypes.ErrGRPCMemberExist, "a confirmed seed is a member")
	require.ErrorIs(t, apply(Change{Type: AddMember, ID: 2, PeerURLs: []string{"http://old:2380"}}), rpctypes.ErrGRPCPeerURLExist)
	require.NoError(t, apply(Change{Type: AddLearner, ID: 2, PeerURLs: []string{"http://b:2380"}}))
	require.True(t, tb.IsLearner(2))
	require.ErrorIs(t, apply(Change{Type: AddLearner, ID: 3, PeerURLs: []string{"http://c:2380"}}), rpctypes.ErrGRPCTooManyLearners, "--max-learners 1")
	require.ErrorIs(t, apply(Change{Type: Promote, ID: 1}), rpctypes.ErrGRPCMemberNotLearner)
	require.ErrorIs(t, apply(Change{Type: Promote, ID: 9}), rpctypes.ErrGRPCMemberNotFound)
	require.NoError(t, apply(Change{Type: Promote, ID: 2}))
	require.False(t, tb.IsLearner(2))
	require.ErrorIs(t, apply(Change{Type: Update, ID: 2, PeerURLs: []string{"http://old:2380"}}), rpctypes.ErrGRPCPeerURLExist)
	require.ErrorIs(t, apply(Change{Type: Update, ID: 9, PeerURLs: []string{"http://z:2380"}}), rpctypes.ErrGRPCMemberNotFound)
	require.NoError(t, apply(Change{Type: Update, ID: 2, PeerURLs: []string{"http://b2:2380"}}))
	require.NoError(t, apply(Change{Type: Update, ID: 2, PeerURLs: []string{"http://b2:2380"}}), "a member may keep its own URLs")
	require.ErrorIs(t, apply(Change{Type: Remove, ID: 9}), rpctypes.ErrGRPCMemberNotFound)
	require.NoError(t, apply(Change{Type: Remove, ID: 2}))
	require.True(t, tb.IsRemoved(2))
	for _, c := range []Change{{Type: AddMember, ID: 2, PeerURLs: []string{"http://n:2380"}}, {Type: Remove, ID: 2}, {Type: Promote, ID: 2}} {
		require.ErrorIs(t, apply(c), rpctypes.ErrGRPCMemberNotFound, "a removed ID never comes back (%v)", c.Type)
	}
	tb.RecordRefused(store, 42)
	require.True(t, tb.Refused(42))

	// A restart (or a snapshot) recovers all of it; a removed seed stays gone.
	again := NewMembers([]*pb.Member{{ID: 1, Name: "a"}, {ID: 2, Name: "b"}}, 1)
	require.NoError(t, again.Recover(store))
	require.Equal(t, []uint64{1}, ids(again.List()))
	require.Equal(t, []uint64{2}, again.Removed())
	require.True(t, again.Refused(42))
	require.False(t, again.Refused(43))
	require.NoError(t, again.Validate(Change{Type: AddMember, ID: 5, PeerURLs: []string{"http://b:2380"}}), "a removed member's URLs are free")

	bad := aux{MembersBucket + "/x": []byte("junk")}
	require.Error(t, NewMembers(nil, 1).Recover(bad))
	bad = aux{RemovedBucket + "/x": []byte{1}}
	require.Error(t, NewMembers(nil, 1).Recover(bad))
}

func TestMemberID(t *testing.T) {
	// etcd 3.7's membership.NewMember("", urls, "", &now) for these inputs.
	now := time.Unix(1700000000, 0)
	a := MemberID([]string{"http://b:2380", "http://a:2380"}, now)
	require.Equal(t, a, MemberID([]string{"http://a:2380", "http://b:2380"}, now), "URL order does not matter")
	require.NotEqual(t, a, MemberID([]string{"http://a:2380", "http://b:2380"}, now.Add(time.Second)))
}
