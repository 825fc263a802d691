package conformance

import (
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestStatusAndMembers(t *testing.T) {
	c := newClient(t)
	for _, ep := range endpoints {
		st, err := c.Status(ctx(t), ep)
		require.NoError(t, err)
		require.Regexp(t, `^3\.\d+\.\d+$`, st.Version)
		require.NotZero(t, st.Leader)
		require.NotZero(t, st.RaftTerm)
		require.NotZero(t, st.RaftIndex)
		require.GreaterOrEqual(t, st.RaftIndex, st.RaftAppliedIndex-1)
		require.Positive(t, st.DbSize)
		require.Positive(t, st.DbSizeQuota)
		require.NotZero(t, st.Header.MemberId)
		require.NotZero(t, st.Header.ClusterId)
	}
	ml, err := c.MemberList(ctx(t))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(ml.Members), len(endpoints))
	ids := map[uint64]bool{}
	for _, m := range ml.Members {
		require.NotEmpty(t, m.PeerURLs)
		require.NotEmpty(t, m.ClientURLs, "started members publish their client URLs")
		ids[m.ID] = true
	}
	st, err := c.Status(ctx(t), endpoints[0])
	require.NoError(t, err)
	require.True(t, ids[st.Header.MemberId], "the answering member is listed")
	ser, err := c.MemberList(ctx(t), clientv3.WithSerializable())
	require.NoError(t, err)
	require.Len(t, ser.Members, len(ml.Members))
}

// Guarantee: revisions are monotonic, and every header reports the
// member's cluster and member IDs.
func TestHeadersAndMonotonicRevisions(t *testing.T) {
	c, p := newClient(t), prefix(t)
	var last int64
	var cluster uint64
	for i := range 20 {
		r, err := c.Put(ctx(t), p+"k", "v")
		require.NoError(t, err)
		require.Greater(t, r.Header.Revision, last, "write %d", i)
		last = r.Header.Revision
		if cluster == 0 {
			cluster = r.Header.ClusterId
		}
		require.Equal(t, cluster, r.Header.ClusterId)
		require.NotZero(t, r.Header.MemberId)
		require.NotZero(t, r.Header.RaftTerm)
		get, err := c.Get(ctx(t), p+"k")
		require.NoError(t, err)
		require.GreaterOrEqual(t, get.Header.Revision, last, "a linearizable read sees every acknowledged write")
	}
}
