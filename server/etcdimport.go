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
	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/rocksdb"
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
// returned as is. Committed entries of etcd's WAL that its db had not
// applied (etcd stopped before its backend committed them) are applied to
// the imported store, before it is moved into place, so nothing etcd
// acknowledged is missing.
func (s *Server) adoptEtcdDataDir(dataDir string) (string, error) {
	lg := s.lg
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
	pending, err := etcdUnapplied(dataDir, db, lg)
	if err != nil {
		return "", err
	}
	lg.Info("importing an etcd data dir", zap.String("db", db), zap.String("into", inner),
		zap.Int("wal-entries-to-apply", len(pending)))
	revs, err := restoreInto(db, inner, lg, func(tmp string) error { return s.replayEtcdEntries(tmp, pending) })
	if err != nil {
		return "", fmt.Errorf("--data-dir %q: import of etcd's db: %w", dataDir, err)
	}
	lg.Info("imported an etcd data dir; etcd's files are left as they were", zap.String("data-dir", inner),
		zap.Int64("revision", revs.rev), zap.Int64("compact-revision", revs.compact))
	return inner, nil
}

// etcdUnapplied returns the requests of the entries of an etcd data dir's
// WAL that its db has not applied (etcd stopped before its
// backend committed them), in log order. Membership entries are left out:
// the new cluster's membership comes from the flags. An entry MetaStore
// cannot read refuses the data dir.
func etcdUnapplied(dataDir, db string, lg *zap.Logger) ([]*etcdserverpb.InternalRaftRequest, error) {
	r, err := etcddb.Open(db)
	if err != nil {
		return nil, fmt.Errorf("--data-dir %q: %w", dataDir, err)
	}
	meta, err := r.Meta()
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("--data-dir %q: %w", dataDir, err)
	}
	walDir := filepath.Join(dataDir, "member", "wal")
	if !wal.Exist(walDir) {
		return nil, nil // a bare db (copied from a backup)
	}
	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return nil, fmt.Errorf("--data-dir %q: read etcd's WAL: %w", dataDir, err)
	}
	start := &walpb.Snapshot{}
	if sn, err := snap.New(lg, filepath.Join(dataDir, "member", "snap")).LoadNewestAvailable(walSnaps); err == nil {
		md := sn.GetMetadata()
		start = &walpb.Snapshot{Index: proto.Uint64(md.GetIndex()), Term: proto.Uint64(md.GetTerm()), ConfState: md.GetConfState()}
	} else if !errors.Is(err, snap.ErrNoSnapshot) {
		return nil, fmt.Errorf("--data-dir %q: read etcd's snapshots: %w", dataDir, err)
	}
	w, err := wal.OpenForRead(lg, walDir, start)
	if err != nil {
		return nil, fmt.Errorf("--data-dir %q: open etcd's WAL: %w", dataDir, err)
	}
	defer w.Close()
	// Every entry of the log after the db's index, not only those up to
	// the commit index the WAL's hard state records: that lags (the entry
	// an acknowledged write was in may be committed in a hard state etcd
	// had not written yet), and etcd restarted alone on the dir would
	// commit its whole log too. ReadAll has dropped overwritten entries.
	_, _, ents, err := w.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("--data-dir %q: read etcd's WAL: %w", dataDir, err)
	}
	var out []*etcdserverpb.InternalRaftRequest
	for _, e := range ents {
		if e.GetIndex() <= meta.ConsistentIndex || e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		req := &etcdserverpb.InternalRaftRequest{}
		if err := proto.Unmarshal(e.GetData(), req); err != nil {
			return nil, fmt.Errorf("--data-dir %q: etcd's WAL entry %d is not a request MetaStore reads: %v (changed nothing)", dataDir, e.GetIndex(), err)
		}
		if changesData(req) {
			out = append(out, req)
		}
	}
	return out, nil
}

// replayEtcdEntries applies reqs to the store of the MetaStore data dir
// dir (being imported) as committed entries are applied — refused
// requests are refused as etcd refused them — without a consistent index:
// the new cluster's log starts again.
func (s *Server) replayEtcdEntries(dir string, reqs []*etcdserverpb.InternalRaftRequest) error {
	if len(reqs) == 0 {
		return nil
	}
	eng, err := rocksdb.Open(filepath.Join(dir, "member", "kv"), rocksdb.DefaultConfig())
	if err != nil {
		return err
	}
	st, err := storage.Open(eng, storage.Config{Logger: s.lg})
	if err != nil {
		eng.Close()
		return err
	}
	defer st.Close()
	s.store.Store(st)
	defer s.store.Store(nil)
	if err := s.recoverServices(st); err != nil {
		return err
	}
	sm := &stateMachine{s: s}
	for i, r := range reqs {
		if c := r.GetCompaction(); c != nil {
			done, err := st.Compact(c.Revision)
			if err != nil && !isRequestError(err) {
				return err
			}
			if err == nil {
				<-done
			}
			continue
		}
		tw, err := st.Write()
		if err != nil {
			return err
		}
		if _, err := sm.applyRequest(tw, r); err != nil {
			tw.Abort()
			if !isRequestError(err) {
				return fmt.Errorf("etcd WAL request %d of %d: %w", i+1, len(reqs), err)
			}
			continue
		}
		if _, err := tw.End(); err != nil {
			return err
		}
	}
	s.lg.Info("applied etcd's committed WAL entries its db had not", zap.Int("entries", len(reqs)), zap.Int64("revision", st.Rev()))
	return st.Sync()
}

// changesData reports whether a request changes the key space or service
// state (cluster version and member attributes do not: the new cluster's
// come from its flags and binary).
func changesData(r *etcdserverpb.InternalRaftRequest) bool {
	return r.ClusterVersionSet == nil && r.ClusterMemberAttrSet == nil && r.DowngradeInfoSet == nil &&
		r.DowngradeVersionTest == nil
}
