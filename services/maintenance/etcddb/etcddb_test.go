package etcddb

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
)

// What the writer writes, the reader reads back in etcd's encodings.
func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	w, err := Create(path)
	require.NoError(t, err)
	_, err = Create(path)
	require.Error(t, err, "an existing file is not overwritten")
	k := append([]byte{0, 0, 0, 0, 0, 0, 0, 2, '_'}, make([]byte, 8)...)
	require.NoError(t, w.PutKV(k, []byte("v")))
	require.NoError(t, w.PutLease(7, 60, 30))
	require.NoError(t, w.PutMember(&pb.Member{ID: 0xa, Name: "m", PeerURLs: []string{"http://p"}, ClientURLs: []string{"http://c"}}))
	require.NoError(t, w.PutRemoved(0xb))
	require.NoError(t, w.PutAlarm(&pb.AlarmMember{MemberID: 0xa, Alarm: pb.AlarmType_NOSPACE}))
	require.NoError(t, w.PutUser(&authpb.User{Name: []byte("u"), Roles: []string{"r"}}))
	require.NoError(t, w.PutRole(&authpb.Role{Name: []byte("r")}))
	require.NoError(t, w.SetAuth(true, 5))
	require.NoError(t, w.SetMeta(Meta{ConsistentIndex: 9, Term: 2, ConfState: &raftpb.ConfState{Voters: []uint64{0xa}},
		CompactRev: 2, ClusterVersion: "3.7.0", StorageVersion: "3.7.0"}))
	require.Error(t, w.SetMeta(Meta{StorageVersion: "nope"}), "a bad version is refused")
	require.Error(t, w.Close(), "the first error is returned")

	w, err = Create(filepath.Join(t.TempDir(), "db"))
	require.NoError(t, err)
	require.NoError(t, w.PutKV(k, []byte("v")))
	require.NoError(t, w.PutLease(7, 60, 30))
	require.NoError(t, w.PutMember(&pb.Member{ID: 0xa, Name: "m", PeerURLs: []string{"http://p"}}))
	require.NoError(t, w.PutRemoved(0xb))
	require.NoError(t, w.PutAlarm(&pb.AlarmMember{MemberID: 0xa, Alarm: pb.AlarmType_NOSPACE}))
	require.NoError(t, w.PutUser(&authpb.User{Name: []byte("u")}))
	require.NoError(t, w.PutRole(&authpb.Role{Name: []byte("r")}))
	require.NoError(t, w.SetAuth(true, 5))
	require.NoError(t, w.SetMeta(Meta{ConsistentIndex: 9, Term: 2, ConfState: &raftpb.ConfState{Voters: []uint64{0xa}},
		CompactRev: 2, ClusterVersion: "3.7.0", StorageVersion: "3.7.0"}))
	path = w.db.Path()
	require.NoError(t, w.Close())

	r, err := Open(path)
	require.NoError(t, err)
	defer r.Close()
	n := 0
	require.NoError(t, r.ForEachKV(func(_, _ []byte) error { n++; return nil }))
	require.Equal(t, 1, n)
	m, err := r.Meta()
	require.NoError(t, err)
	require.EqualValues(t, 9, m.ConsistentIndex)
	require.EqualValues(t, 2, m.Term)
	require.EqualValues(t, 2, m.CompactRev)
	require.Equal(t, "3.7.0", m.StorageVersion)
	require.Equal(t, []uint64{0xa}, m.ConfState.Voters)
	ls, err := r.Leases()
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.EqualValues(t, 30, ls[0].RemainingTTL)
	users, roles, on, rev, err := r.Auth()
	require.NoError(t, err)
	require.Len(t, users, 1)
	require.Len(t, roles, 1)
	require.True(t, on)
	require.EqualValues(t, 5, rev)
	as, err := r.Alarms()
	require.NoError(t, err)
	require.Equal(t, pb.AlarmType_NOSPACE, as[0].Alarm)
	ms, removed, err := r.Members()
	require.NoError(t, err)
	require.Equal(t, "m", ms[0].Name)
	require.Equal(t, []uint64{0xb}, removed)
}

func TestOpenRefusesOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x")
	require.NoError(t, os.WriteFile(p, []byte("not bolt"), 0o600))
	_, err := Open(p)
	require.Error(t, err)
	_, err = Open(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}
