package server_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	utlsnap "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/server/internal/testcluster"
	"github.com/metastore/metastore/services/maintenance/etcddb"
	"github.com/metastore/metastore/tools/etcdtest"
)

// backupWorkload writes a history with every kind of change: puts with
// and without leases, overwrites, range deletes, multi-op transactions,
// revoked leases, a compaction in the middle; then users and roles with
// auth on. It returns the compaction revision.
func backupWorkload(t *testing.T, c *clientv3.Client) int64 {
	rng := rand.New(rand.NewPCG(7, 7))
	var leases []clientv3.LeaseID
	for range 4 {
		g, err := c.Grant(ctx(t), 600)
		require.NoError(t, err)
		leases = append(leases, g.ID)
	}
	key := func() string { return fmt.Sprintf("k/%02d", rng.IntN(40)) }
	var compactRev int64
	for i := range 400 {
		var err error
		switch r := rng.IntN(100); {
		case r < 50:
			_, err = c.Put(ctx(t), key(), fmt.Sprint("v", i))
		case r < 60:
			_, err = c.Put(ctx(t), key(), fmt.Sprint("leased", i), clientv3.WithLease(leases[rng.IntN(len(leases))]))
			if i > 300 && errors.Is(err, rpctypes.ErrLeaseNotFound) {
				err = nil // the revoked one
			}
		case r < 70:
			k := key()
			_, err = c.Delete(ctx(t), k, clientv3.WithRange(k+"5"))
		case r < 80:
			_, err = c.Delete(ctx(t), key())
		default:
			k := key()
			_, err = c.Txn(ctx(t)).Then(clientv3.OpPut(k, "t1"), clientv3.OpPut(k+"/x", "t2"), clientv3.OpDelete(k+"/y")).Commit()
		}
		require.NoError(t, err)
		if i == 200 {
			r, err := c.Get(ctx(t), "k/")
			require.NoError(t, err)
			compactRev = r.Header.Revision - 20
			_, err = c.Compact(ctx(t), compactRev, clientv3.WithCompactPhysical())
			require.NoError(t, err)
		}
		if i == 300 {
			_, err = c.Revoke(ctx(t), leases[0])
			require.NoError(t, err)
		}
	}
	return compactRev
}

// A snapshot MetaStore streams is an etcd v3.7 backend file: etcd's own
// client saves it, etcdutl reports and restores it, and etcd 3.7.3 serves
// the restored data dir with the same keys at every revision, the same
// HashKV at every revision, the same compaction revision, leases and
// users, roles and passwords.
func TestSnapshotRestoresIntoEtcd(t *testing.T) {
	ms := testcluster.Start(t, 1, func(c *server.Config) { c.BcryptCost = 4 })
	c := testcluster.Client(t, ms[0])
	compactRev := backupWorkload(t, c)
	enableAuth(t, ms[0])
	root := userClient(t, "root", "rootpw", ms[0])
	alice := userClient(t, "alice", "alicepw", ms[0])
	_, err := alice.Put(ctx(t), "app/a", "by alice")
	require.NoError(t, err)

	// 100k more keys, in transactions of 100 puts.
	bulk := 100_000
	if testing.Short() { // 100k without -short (make test-long)
		bulk = 10_000
	}
	for i := 0; i < bulk; i += 100 {
		ops := make([]clientv3.Op, 100)
		for j := range ops {
			ops[j] = clientv3.OpPut(fmt.Sprintf("bulk/%07d", i+j), fmt.Sprintf("%0256d", i+j))
		}
		_, err := root.Txn(ctx(t)).Then(ops...).Commit()
		require.NoError(t, err)
	}

	// The client etcdctl snapshot save runs, while writes go on.
	stopLoad := make(chan struct{})
	loadDone := make(chan int)
	go func() {
		n := 0
		defer func() { loadDone <- n }()
		for {
			select {
			case <-stopLoad:
				return
			default:
			}
			if _, err := root.Put(ctx(t), fmt.Sprintf("load/%d", n%50), "during the save"); err == nil {
				n++
			}
		}
	}()
	db := filepath.Join(t.TempDir(), "backup.db")
	version, err := snapshot.SaveWithVersion(ctx(t), zap.NewNop(), clientv3.Config{
		Endpoints: ms.Endpoints(), Username: "root", Password: "rootpw", DialTimeout: 5 * time.Second,
	}, db)
	close(stopLoad)
	require.Positive(t, <-loadDone, "writes went on during the save")
	require.NoError(t, err)
	require.Equal(t, "3.7.0", version)
	// Only root may take one.
	_, err = alice.Snapshot(ctx(t))
	if err == nil {
		rc, _ := alice.Snapshot(ctx(t))
		_, err = rc.Read(make([]byte, 1))
	}
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	entries, _ := os.ReadDir(filepath.Join(ms[0].Cfg.DataDir, "member", "tmp"))
	require.Empty(t, entries, "the temporary file is removed once sent")

	st, err := utlsnap.NewV3(zap.NewNop()).Status(db)
	require.NoError(t, err)
	require.Equal(t, "3.7.0", st.Version)
	require.Greater(t, st.TotalKey, bulk, "etcdutl snapshot status counts the keys")
	rev := st.Revision // the point in time the snapshot holds

	// etcdutl snapshot restore, then etcd 3.7.3 on the restored dir.
	ec := etcdtest.StartT(t, etcdtest.Config{Dir: t.TempDir(), Configure: func(_ int, cfg *embed.Config) {
		var peers []string
		for _, u := range cfg.AdvertisePeerUrls {
			peers = append(peers, u.String())
		}
		require.NoError(t, utlsnap.NewV3(zap.NewNop()).Restore(utlsnap.RestoreConfig{
			SnapshotPath: db, Name: cfg.Name, OutputDataDir: cfg.Dir, PeerURLs: peers,
			InitialCluster: cfg.InitialCluster, InitialClusterToken: cfg.InitialClusterToken,
		}))
	}})
	etcd, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints, Username: "root", Password: "rootpw", DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer etcd.Close()

	requireSameContent(t, root, ms.Endpoints()[0], etcd, ec.Endpoints[0], compactRev, rev)
	gl, err := etcd.Leases(ctx(t))
	require.NoError(t, err)
	require.Len(t, gl.Leases, 3, "the revoked lease is gone")
	// alice's password works on etcd, and her permissions hold.
	ea, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints, Username: "alice", Password: "alicepw", DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer ea.Close()
	g, err := ea.Get(ctx(t), "app/a")
	require.NoError(t, err)
	require.Equal(t, "by alice", string(g.Kvs[0].Value))
	_, err = ea.Get(ctx(t), "k/")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
}

// requireSameContent requires a and b (clients of the members at aEP and
// bEP) to serve the same keys at every revision from compactRev to rev,
// the same HashKV after compactRev, the same compaction revision, the
// same leases with the same keys, users and roles.
func requireSameContent(t *testing.T, a *clientv3.Client, aEP string, b *clientv3.Client, bEP string, compactRev, rev int64) {
	t.Helper()
	root, etcd := a, b
	step := max((rev-compactRev)/60, 1) // every revision of short histories, 60 of long ones
	for r := compactRev; r <= rev; r += step {
		if r+step > rev {
			r = rev
		}
		// Everything but the bulk keys (HashKV covers those) at every
		// revision sampled, everything at the last.
		ranges := [][]clientv3.OpOption{{clientv3.WithRange("bulk/")}, {clientv3.WithFromKey()}}
		keys := []string{"\x00", "bulk0"}
		if r == rev {
			ranges, keys = [][]clientv3.OpOption{{clientv3.WithFromKey()}}, []string{"\x00"}
		}
		for i, opts := range ranges {
			want, err := root.Get(ctx(t), keys[i], append(opts, clientv3.WithRev(r))...)
			require.NoError(t, err)
			got, err := etcd.Get(ctx(t), keys[i], append(opts, clientv3.WithRev(r))...)
			require.NoError(t, err, "etcd at revision %d", r)
			require.Equal(t, rev, got.Header.Revision)
			requireSameKVs(t, want.Kvs, got.Kvs, fmt.Sprint("revision ", r))
		}
		if r == compactRev {
			// At the compaction revision a running member answers the hash
			// it took while compacting (etcd and MetaStore alike); a member
			// started on a restored file has none and hashes what it has.
			continue
		}
		wh, err := root.HashKV(ctx(t), aEP, r)
		require.NoError(t, err)
		gh, err := etcd.HashKV(ctx(t), bEP, r)
		require.NoError(t, err)
		require.Equal(t, wh.Hash, gh.Hash, "HashKV at %d", r)
		require.Equal(t, wh.CompactRevision, gh.CompactRevision, "HashKV at %d", r)
	}
	for _, cl := range []*clientv3.Client{root, etcd} {
		_, err := cl.Get(ctx(t), "k/", clientv3.WithRev(compactRev-1))
		require.ErrorIs(t, err, rpctypes.ErrCompacted)
	}

	wl, err := root.Leases(ctx(t))
	require.NoError(t, err)
	gl, err := etcd.Leases(ctx(t))
	require.NoError(t, err)
	require.ElementsMatch(t, wl.Leases, gl.Leases)
	for _, l := range wl.Leases {
		w, err := root.TimeToLive(ctx(t), l.ID, clientv3.WithAttachedKeys())
		require.NoError(t, err)
		g, err := etcd.TimeToLive(ctx(t), l.ID, clientv3.WithAttachedKeys())
		require.NoError(t, err)
		require.Equal(t, w.GrantedTTL, g.GrantedTTL)
		slices.SortFunc(w.Keys, func(a, b []byte) int { return slices.Compare(a, b) })
		slices.SortFunc(g.Keys, func(a, b []byte) int { return slices.Compare(a, b) })
		require.Equal(t, w.Keys, g.Keys, "keys of lease %x", l.ID)
	}

	wu, err := root.UserList(ctx(t))
	require.NoError(t, err)
	gu, err := etcd.UserList(ctx(t))
	require.NoError(t, err)
	require.Equal(t, wu.Users, gu.Users)
	wr, err := root.RoleGet(ctx(t), "app")
	require.NoError(t, err)
	gr, err := etcd.RoleGet(ctx(t), "app")
	require.NoError(t, err)
	require.Equal(t, len(wr.Perm), len(gr.Perm))
	for i := range wr.Perm {
		require.True(t, proto.Equal(wr.Perm[i], gr.Perm[i]), "permission %d", i)
	}
}

func requireSameKVs(t *testing.T, want, got []*mvccpb.KeyValue, what string) {
	t.Helper()
	require.Equal(t, len(want), len(got), what)
	for i := range want {
		require.True(t, proto.Equal(want[i], got[i]), "%s: kv %d: want %v, got %v", what, i, want[i], got[i])
	}
}

// Migration from etcd: a snapshot etcd 3.7.3 takes, restored with
// `metastore snapshot restore`, is served by MetaStore with the same keys
// at every revision, the same HashKV, compaction revision, leases and
// auth (alice's etcd password works), and MetaStore goes on from there.
func TestSnapshotFromEtcdRestoresIntoMetaStore(t *testing.T) {
	ec := etcdtest.StartT(t, etcdtest.Config{Dir: t.TempDir(), Configure: func(_ int, cfg *embed.Config) {}})
	ep := ec.Endpoints[0]
	c, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c.Close()
	compactRev := backupWorkload(t, c)
	enableAuthWith(t, c)
	etcd, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints, Username: "root", Password: "rootpw", DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer etcd.Close()
	cur, err := etcd.Get(ctx(t), "k/")
	require.NoError(t, err)
	rev := cur.Header.Revision

	db := filepath.Join(t.TempDir(), "etcd.db")
	_, err = snapshot.SaveWithVersion(ctx(t), zap.NewNop(), clientv3.Config{
		Endpoints: []string{ep}, Username: "root", Password: "rootpw", DialTimeout: 5 * time.Second,
	}, db)
	require.NoError(t, err)

	ms := testcluster.Configs(t, 1, func(c *server.Config) { c.BcryptCost = 4 })
	require.NoError(t, server.RestoreSnapshot(server.RestoreConfig{SnapshotPath: db, DataDir: ms[0].Cfg.DataDir}))
	ms.Start()
	root := userClient(t, "root", "rootpw", ms[0])
	requireSameContent(t, etcd, ep, root, ms.Endpoints()[0], compactRev, rev)
	alice := userClient(t, "alice", "alicepw", ms[0])
	_, err = alice.Put(ctx(t), "app/b", "after the move")
	require.NoError(t, err)
	_, err = alice.Get(ctx(t), "k/")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	r, err := root.Put(ctx(t), "k/new", "v")
	require.NoError(t, err)
	require.Equal(t, rev+2, r.Header.Revision, "revisions go on from etcd's")

	// A restored data dir is not restored into again; a corrupt file is refused.
	err = server.RestoreSnapshot(server.RestoreConfig{SnapshotPath: db, DataDir: ms[0].Cfg.DataDir})
	require.ErrorContains(t, err, "not empty")
	bad := filepath.Join(t.TempDir(), "bad.db")
	b, err := os.ReadFile(db)
	require.NoError(t, err)
	b[len(b)/2] ^= 0xff
	require.NoError(t, os.WriteFile(bad, b, 0o600))
	err = server.RestoreSnapshot(server.RestoreConfig{SnapshotPath: bad, DataDir: filepath.Join(t.TempDir(), "x")})
	require.ErrorContains(t, err, "expected sha256")
	err = server.RestoreSnapshot(server.RestoreConfig{SnapshotPath: bad[:len(bad)-3], DataDir: filepath.Join(t.TempDir(), "y")})
	require.Error(t, err)
}

// copyTree copies the files under src to dst (a member's data dir taken
// while it runs, as a crash would leave it).
func copyTree(t *testing.T, src, dst string) {
	require.NoError(t, filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	}))
}

// An etcd data dir whose WAL holds committed entries its db had not
// applied (etcd's backend commits every --backend-batch-interval; the dir
// is copied before it did): MetaStore started on it applies them, so every
// write etcd acknowledged is there, at etcd's revisions.
func TestAdoptEtcdDataDirAppliesItsWAL(t *testing.T) {
	ec := etcdtest.StartT(t, etcdtest.Config{Dir: t.TempDir(), Configure: func(_ int, cfg *embed.Config) {
		cfg.BackendBatchInterval = time.Hour
		cfg.BackendBatchLimit = 1 << 30
	}})
	c, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c.Close()
	g, err := c.Grant(ctx(t), 600)
	require.NoError(t, err)
	var last *clientv3.PutResponse
	for i := range 20 {
		last, err = c.Put(ctx(t), fmt.Sprintf("wal/%02d", i), fmt.Sprint("v", i), clientv3.WithLease(g.ID))
		require.NoError(t, err)
	}
	_, err = c.Delete(ctx(t), "wal/00")
	require.NoError(t, err)
	want, err := c.Get(ctx(t), "wal/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Greater(t, want.Header.Revision, last.Header.Revision)

	ms := testcluster.Configs(t, 1)
	copyTree(t, ec.DataDirs[0], ms[0].Cfg.DataDir)
	ec.Close()
	r, err := etcddb.Open(filepath.Join(ms[0].Cfg.DataDir, "member", "snap", "db"))
	require.NoError(t, err)
	inDB := 0
	require.NoError(t, r.ForEachKV(func(k, v []byte) error { inDB++; return nil }))
	r.Close()
	require.Less(t, inDB, 21, "the copied db lacks writes only the WAL has")
	ms.Start()
	mc := testcluster.Client(t, ms[0])
	got, err := mc.Get(ctx(t), "wal/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Equal(t, want.Header.Revision, got.Header.Revision, "etcd's revision")
	requireSameKVs(t, want.Kvs, got.Kvs, "every acknowledged write")
	ttl, err := mc.TimeToLive(ctx(t), g.ID, clientv3.WithAttachedKeys())
	require.NoError(t, err)
	require.Len(t, ttl.Keys, 19, "the lease and its keys")
}
