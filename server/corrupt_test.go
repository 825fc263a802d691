package server_test

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/server/internal/testcluster"
	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/rocksdb"
)

// --feature-gates is etcd's: its gates, its parser, its messages.
func TestFeatureGatesFlag(t *testing.T) {
	parse := func(args ...string) (server.Config, error) {
		cfg := server.DefaultConfig()
		fs := flag.NewFlagSet("metastore", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.AddFlags(fs)
		return cfg, fs.Parse(args)
	}
	_, err := parse("--feature-gates=NoSuchGate=true")
	require.ErrorContains(t, err, "unrecognized feature gate: NoSuchGate")
	_, err = parse("--feature-gates=InitialCorruptCheck=maybe")
	require.ErrorContains(t, err, "invalid value of InitialCorruptCheck=maybe")
	cfg, err := parse("--feature-gates=InitialCorruptCheck=true,CompactHashCheck=true", "--compact-hash-check-time=0s")
	require.NoError(t, err)
	require.ErrorContains(t, cfg.Validate(), "--compact-hash-check-time must be >0 (set to 0s)")
	cfg, err = parse("--feature-gates=LeaseCheckpoint=true")
	require.NoError(t, err)
	require.Contains(t, cfg.Warnings(), "--feature-gates=LeaseCheckpoint=true has no effect in MetaStore")
}

func putN(t *testing.T, c *clientv3.Client, prefix string, n int) {
	for i := range n {
		_, err := c.Put(ctx(t), fmt.Sprintf("%s/%03d", prefix, i), "v")
		require.NoError(t, err)
	}
}

// A member whose data differs from its peers' refuses to start with
// InitialCorruptCheck, with etcd's message; untouched members start.
func TestInitialCorruptCheckRefusesDivergedMember(t *testing.T) {
	gate := func(c *server.Config) { require.NoError(t, c.SetFeatureGates("InitialCorruptCheck=true")) }
	ms := testcluster.Start(t, 3, gate)
	c := testcluster.Client(t, ms...)
	putN(t, c, "a", 10)
	ms[1].Restart() // a healthy member passes the check
	ms[2].Stop()
	// Change m2's store behind Raft's back: one write no one else has.
	eng, err := rocksdb.Open(filepath.Join(ms[2].Cfg.DataDir, "member", "kv"), rocksdb.DefaultConfig())
	require.NoError(t, err)
	st, err := storage.Open(eng, storage.Config{})
	require.NoError(t, err)
	_, err = st.Put([]byte("a/000"), []byte("rogue"), 0)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	ms[:2].WaitSameLeader(t)
	putN(t, testcluster.Client(t, ms[0], ms[1]), "b", 50)

	_, err = server.New(ms[2].Cfg, zap.NewNop())
	require.ErrorContains(t, err, "found data inconsistency with peers")
}

func alarms(t *testing.T, c *clientv3.Client) []*pb.AlarmMember {
	r, err := c.AlarmList(ctx(t))
	require.NoError(t, err)
	return r.Alarms
}

func requireCorruptAlarm(t *testing.T, c *clientv3.Client, id uint64) {
	require.Eventually(t, func() bool {
		for _, a := range alarms(t, c) {
			if a.Alarm == pb.AlarmType_CORRUPT && a.MemberID == id {
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "CORRUPT alarm for %x", id)
	// etcd's corrupt applier: writes refused, reads served.
	_, err := c.Put(ctx(t), "after", "v")
	require.ErrorIs(t, err, rpctypes.ErrCorrupt)
	_, err = c.Delete(ctx(t), "a/001")
	require.ErrorIs(t, err, rpctypes.ErrCorrupt)
	_, err = c.Grant(ctx(t), 10)
	require.ErrorIs(t, err, rpctypes.ErrCorrupt)
	_, err = c.Get(ctx(t), "a/001")
	require.NoError(t, err)
}

// The leader's periodic check (--corrupt-check-time) raises CORRUPT for a
// follower that is ahead of it.
func TestPeriodicCorruptCheckRaisesAlarm(t *testing.T) {
	ms := testcluster.Start(t, 3, func(c *server.Config) { c.CorruptCheckTime = 100 * time.Millisecond })
	c := testcluster.Client(t, ms...)
	putN(t, c, "a", 5)
	var follower *testcluster.Member
	for _, m := range ms {
		if m.Srv.RaftStatus().RaftState != "StateLeader" {
			follower = m
		}
	}
	require.Empty(t, alarms(t, c), "no alarm while the members agree")
	_, err := follower.Srv.StoreForTest().Put([]byte("a/000"), []byte("rogue"), 0)
	require.NoError(t, err)
	requireCorruptAlarm(t, c, follower.Srv.ID())
}

// The leader's compaction hash check (CompactHashCheck) raises CORRUPT for
// the member whose hash at a compaction differs from the quorum's.
func TestCompactHashCheckRaisesAlarm(t *testing.T) {
	ms := testcluster.Start(t, 3, func(c *server.Config) {
		require.NoError(t, c.SetFeatureGates("CompactHashCheck=true"))
		c.CompactHashCheckTime = 100 * time.Millisecond
	})
	c := testcluster.Client(t, ms...)
	putN(t, c, "a", 5)
	var follower, leader *testcluster.Member
	for _, m := range ms {
		if m.Srv.RaftStatus().RaftState != "StateLeader" {
			follower = m
		} else {
			leader = m
		}
	}
	_, err := c.Compact(ctx(t), 4)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	require.Empty(t, alarms(t, c), "no alarm while the members agree")
	// The follower's value of a/004 changes at the same revision: only a
	// hash can tell.
	_, err = follower.Srv.StoreForTest().Put([]byte("a/004"), []byte("rogue"), 0)
	require.NoError(t, err)
	putN(t, c, "b", 3)
	// At the leader's revision (the follower's is one ahead).
	_, err = c.Compact(ctx(t), leader.Srv.StoreForTest().Rev())
	require.NoError(t, err)
	requireCorruptAlarm(t, c, follower.Srv.ID())
}
