package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/services/maintenance/etcddb"
)

// adoptedDirName is where MetaStore keeps its own state inside an etcd
// data dir it started on: <data-dir>/metastore is a MetaStore data dir,
// made once from etcd's member/snap/db. etcd's files are left exactly as
// they were (they go stale as MetaStore serves writes).
const adoptedDirName = "metastore"

// adoptEtcdDataDir lets the member start on an etcd data dir — one
// `etcdutl snapshot restore` made, or a stopped etcd member's — as etcd
// would: the first start imports etcd's db into <data-dir>/metastore
// (never changing etcd's files) and bootstraps a new cluster from the
// flags, as a restored etcd member does; later starts serve that dir. It
// returns the data dir MetaStore uses. A data dir that is not etcd's is
// returned as is.
func adoptEtcdDataDir(dataDir string, lg *zap.Logger) (string, error) {
	db := filepath.Join(dataDir, "member", "snap", "db")
	if _, err := os.Stat(db); err != nil {
		return dataDir, nil // not etcd's
	}
	if _, err := os.Stat(filepath.Join(dataDir, "member", dataDirMarker)); err == nil {
		return dataDir, nil // MetaStore's with a stray db: checkDataDir refuses it
	}
	inner := filepath.Join(dataDir, adoptedDirName)
	if _, err := os.Stat(filepath.Join(inner, "member", dataDirMarker)); err == nil {
		lg.Info("serving the MetaStore data dir made from an etcd data dir", zap.String("data-dir", inner))
		return inner, nil
	}
	if _, err := os.Stat(inner); !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("--data-dir %q is an etcd data dir holding %s, which is not MetaStore's: changed nothing", dataDir, inner)
	}
	if err := checkEtcdApplied(dataDir, db, lg); err != nil {
		return "", err
	}
	lg.Info("importing an etcd data dir", zap.String("db", db), zap.String("into", inner))
	revs, err := restoreInto(db, inner, lg)
	if err != nil {
		return "", fmt.Errorf("--data-dir %q: import of etcd's db: %w", dataDir, err)
	}
	lg.Info("imported an etcd data dir; etcd's files are left as they were", zap.String("data-dir", inner),
		zap.Int64("revision", revs.rev), zap.Int64("compact-revision", revs.compact))
	return inner, nil
}

// checkEtcdApplied refuses an etcd data dir whose WAL holds committed
// entries its db has not applied (etcd stopped mid-apply): MetaStore
// imports the db only, so they would be lost. etcd replays them; starting
// etcd on the dir once and stopping it cleanly applies them.
func checkEtcdApplied(dataDir, db string, lg *zap.Logger) error {
	r, err := etcddb.Open(db)
	if err != nil {
		return fmt.Errorf("--data-dir %q: %w", dataDir, err)
	}
	meta, err := r.Meta()
	r.Close()
	if err != nil {
		return fmt.Errorf("--data-dir %q: %w", dataDir, err)
	}
	walDir := filepath.Join(dataDir, "member", "wal")
	if !wal.Exist(walDir) {
		return nil // a bare db (copied from a backup)
	}
	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return fmt.Errorf("--data-dir %q: read etcd's WAL: %w", dataDir, err)
	}
	start := &walpb.Snapshot{}
	if sn, err := snap.New(lg, filepath.Join(dataDir, "member", "snap")).LoadNewestAvailable(walSnaps); err == nil {
		md := sn.GetMetadata()
		start = &walpb.Snapshot{Index: proto.Uint64(md.GetIndex()), Term: proto.Uint64(md.GetTerm()), ConfState: md.GetConfState()}
	} else if !errors.Is(err, snap.ErrNoSnapshot) {
		return fmt.Errorf("--data-dir %q: read etcd's snapshots: %w", dataDir, err)
	}
	w, err := wal.OpenForRead(lg, walDir, start)
	if err != nil {
		return fmt.Errorf("--data-dir %q: open etcd's WAL: %w", dataDir, err)
	}
	defer w.Close()
	_, hs, ents, err := w.ReadAll()
	if err != nil {
		return fmt.Errorf("--data-dir %q: read etcd's WAL: %w", dataDir, err)
	}
	for _, e := range ents {
		if e.GetIndex() <= meta.ConsistentIndex || e.GetIndex() > hs.GetCommit() || !changesData(e) {
			continue
		}
		return fmt.Errorf("--data-dir %q: etcd's WAL holds committed entries its db has not applied (index %d > consistent index %d): "+
			"start etcd on it once and stop it cleanly, or restore a snapshot (changed nothing)", dataDir, e.GetIndex(), meta.ConsistentIndex)
	}
	return nil
}

// changesData reports whether a WAL entry changes the key space or
// service state (the leader's empty entries and conf changes do not: the
// new cluster's membership comes from the flags).
func changesData(e *raftpb.Entry) bool {
	if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
		return false
	}
	var r etcdserverpb.InternalRaftRequest
	if err := proto.Unmarshal(e.GetData(), &r); err != nil {
		return true // not understood: assume it matters
	}
	return r.ClusterVersionSet == nil && r.ClusterMemberAttrSet == nil && r.DowngradeInfoSet == nil
}
