package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/services/auth"
	clustersvc "github.com/metastore/metastore/services/cluster"
	"github.com/metastore/metastore/services/lease"
	"github.com/metastore/metastore/services/maintenance"
	"github.com/metastore/metastore/services/maintenance/etcddb"
	"github.com/metastore/metastore/services/rpcerr"
	"github.com/metastore/metastore/storage"
)

// etcdStorageVersion is the storage schema version of the backend files
// MetaStore writes: etcd 3.7's.
const etcdStorageVersion = "3.7.0"

// snapshotTmpPattern names the temporary files snapshots are built in,
// under <data-dir>/member/tmp.
const snapshotTmpPattern = "snapshot-*.db"

func (s *Server) snapshotTmpDir() string { return filepath.Join(s.cfg.DataDir, "member", "tmp") }

// removeStaleSnapshots removes the temporary files of snapshots a crash
// left behind (they are MetaStore's own, and only those are touched).
func (s *Server) removeStaleSnapshots() {
	stale, _ := filepath.Glob(filepath.Join(s.snapshotTmpDir(), snapshotTmpPattern))
	for _, f := range stale {
		if err := os.Remove(f); err != nil {
			s.lg.Warn("cannot remove a stale snapshot file", zap.String("path", f), zap.Error(err))
		}
	}
}

// Snapshot implements maintenance.Snapshotter: the store as it is now,
// with its leases, members, alarms and auth state, written to a temporary
// file in etcd 3.7's backend format. Writes go on meanwhile: the file is
// built from a point-in-time view of the store.
func (s *Server) Snapshot(ctx context.Context) (*maintenance.SnapshotFile, error) {
	start := time.Now()
	sn, err := s.store.Load().Snapshot()
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	defer sn.Close()
	if err := os.MkdirAll(s.snapshotTmpDir(), 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.snapshotTmpDir(), snapshotTmpPattern)
	if err != nil {
		return nil, err
	}
	path := f.Name()
	f.Close()
	os.Remove(path) // etcddb creates it
	release := func() error { return os.Remove(path) }
	t0 := time.Now()
	if err := s.writeEtcdDB(ctx, sn, path); err != nil {
		release()
		return nil, err
	}
	s.inst.backendSnapshot.Observe(time.Since(t0).Seconds())
	if f, err = os.Open(path); err != nil {
		release()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		release()
		return nil, err
	}
	s.lg.Info("sending database snapshot to client",
		zap.Int64("total-bytes", st.Size()), zap.Int64("revision", sn.Rev()),
		zap.Duration("built-in", time.Since(start)), zap.String("storage-version", etcdStorageVersion))
	return &maintenance.SnapshotFile{
		R: f, Size: st.Size(), StorageVersion: etcdStorageVersion,
		Close: func() error { return errors.Join(f.Close(), release()) },
	}, nil
}

// writeEtcdDB writes sn, and the service state it holds, as an etcd
// backend file at path.
func (s *Server) writeEtcdDB(ctx context.Context, sn *storage.Snapshot, path string) error {
	w, err := etcddb.Create(path)
	if err != nil {
		return err
	}
	err = sn.ForEachEtcdKV(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return w.PutKV(k, v)
	})
	if err == nil {
		err = lease.ForEachStored(sn, w.PutLease)
	}
	if err == nil {
		err = s.writeEtcdMeta(w, sn)
	}
	if err == nil {
		err = writeEtcdAuth(w, sn, s.lg)
	}
	if err == nil {
		alarms := maintenance.NewAlarms()
		if err = alarms.Recover(sn); err == nil {
			for _, a := range alarms.Get(pb.AlarmType_NONE) {
				if err = w.PutAlarm(a); err != nil {
					break
				}
			}
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// writeEtcdMeta writes the members, the Raft position and configuration
// and the compaction and cluster versions.
func (s *Server) writeEtcdMeta(w *etcddb.Writer, sn *storage.Snapshot) error {
	members := clustersvc.NewMembers(nil, 0)
	if err := members.Recover(sn); err != nil {
		return err
	}
	list, removed := members.List(), members.Removed()
	if len(list) == 0 {
		// A data dir from before the member table was stored.
		list = s.members.List()
	}
	cs := &raftpb.ConfState{}
	for _, m := range list {
		if m.IsLearner {
			cs.Learners = append(cs.Learners, m.ID)
		} else {
			cs.Voters = append(cs.Voters, m.ID)
		}
		if err := w.PutMember(m); err != nil {
			return err
		}
	}
	for _, id := range removed {
		if err := w.PutRemoved(id); err != nil {
			return err
		}
	}
	ci, err := sn.ConsistentIndex()
	if err != nil {
		return err
	}
	return w.SetMeta(etcddb.Meta{
		ConsistentIndex: ci.Index, Term: ci.Term, ConfState: cs, CompactRev: sn.CompactRev(),
		ClusterVersion: s.cfg.clusterVersion(), StorageVersion: etcdStorageVersion,
	})
}

func writeEtcdAuth(w *etcddb.Writer, sn *storage.Snapshot, lg *zap.Logger) error {
	st := auth.NewStore(lg)
	if err := st.Recover(sn); err != nil {
		return err
	}
	for _, u := range st.Users() {
		if err := w.PutUser(u); err != nil {
			return err
		}
	}
	for _, r := range st.Roles() {
		if err := w.PutRole(r); err != nil {
			return err
		}
	}
	return w.SetAuth(st.Enabled(), st.Revision())
}
