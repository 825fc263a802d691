package server

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	gosemver "github.com/coreos/go-semver/semver"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/metastore/metastore/services/auth"
	"github.com/metastore/metastore/services/lease"
	"github.com/metastore/metastore/services/maintenance"
	"github.com/metastore/metastore/services/maintenance/etcddb"
	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/rocksdb"
)

// RestoreConfig is what RestoreSnapshot needs.
type RestoreConfig struct {
	// SnapshotPath is a snapshot in etcd's format: what `etcdctl snapshot
	// save` wrote (with its SHA-256 trailer) from etcd or MetaStore, or an
	// etcd member's member/snap/db copied while it was stopped.
	SnapshotPath string
	// DataDir is the data dir to create; it must not exist or be empty.
	DataDir string
	// SkipHashCheck accepts a file without the SHA-256 trailer (a copied
	// member/snap/db), as etcdutl's --skip-hash-check.
	SkipHashCheck bool
	// Logger receives progress (default: none).
	Logger *zap.Logger
}

// snapshotHasChecksum is etcdutl's rule: a bbolt file is a whole number of
// 512-byte sectors, so 32 bytes more is the SHA-256 trailer.
func snapshotHasChecksum(size int64) bool { return size%512 == sha256.Size }

// RestoreSnapshot creates a MetaStore data dir from a snapshot in etcd's
// format, as `etcdutl snapshot restore` creates an etcd one: every key at
// every revision the snapshot holds (create and mod revisions, versions,
// leases), the compaction revision, the leases, alarms, users, roles and
// whether auth is on. The snapshot's members are not kept: the member
// started on the data dir bootstraps a new cluster from its
// --initial-cluster flags, as a restored etcd member does. The snapshot
// file is only read; the data dir appears whole or not at all.
func RestoreSnapshot(cfg RestoreConfig) error {
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if cfg.DataDir == "" {
		return errors.New("snapshot restore: --data-dir is required")
	}
	if ents, err := os.ReadDir(cfg.DataDir); err == nil && len(ents) > 0 {
		return fmt.Errorf("snapshot restore: data-dir %q not empty or could not be read", cfg.DataDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot restore: data-dir %q not empty or could not be read: %w", cfg.DataDir, err)
	}
	tmp := filepath.Join(filepath.Dir(cfg.DataDir), "."+filepath.Base(cfg.DataDir)+".restoring")
	if err := os.RemoveAll(tmp); err != nil { // a restore interrupted before
		return err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "member", "tmp"), 0o700); err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	defer os.RemoveAll(tmp)
	db := filepath.Join(tmp, "member", "tmp", "restore.db")
	if err := copySnapshotDB(cfg.SnapshotPath, db, cfg.SkipHashCheck); err != nil {
		return err
	}
	if err := os.Remove(cfg.DataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	revs, err := restoreInto(db, cfg.DataDir, lg, nil)
	if err != nil {
		return fmt.Errorf("snapshot restore: %s: %w", cfg.SnapshotPath, err)
	}
	lg.Info("restored snapshot", zap.String("path", cfg.SnapshotPath), zap.String("data-dir", cfg.DataDir),
		zap.Int64("revision", revs.rev), zap.Int64("compact-revision", revs.compact))
	return nil
}

// restoreInto makes the MetaStore data dir dir (which must not exist)
// from the etcd backend file db, building it next to dir and renaming it
// into place once whole; finish, if set, runs on the built dir before.
func restoreInto(db, dir string, lg *zap.Logger, finish func(tmp string) error) (importedRevs, error) {
	tmp := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".importing")
	if err := os.RemoveAll(tmp); err != nil { // an import interrupted before
		return importedRevs{}, err
	}
	defer os.RemoveAll(tmp)
	if err := prepareDataDir(tmp); err != nil {
		return importedRevs{}, err
	}
	revs, err := importEtcdDB(db, filepath.Join(tmp, "member", "kv"))
	if err != nil {
		return revs, err
	}
	if finish != nil {
		if err := finish(tmp); err != nil {
			return revs, err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return revs, err
	}
	return revs, syncDir(filepath.Dir(dir))
}

// copySnapshotDB copies the bbolt part of src to dst, checking the
// SHA-256 trailer as etcdutl does.
func copySnapshotDB(src, dst string, skipHashCheck bool) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	size, hasSum := st.Size(), snapshotHasChecksum(st.Size())
	if !hasSum && !skipHashCheck {
		return errors.New("snapshot restore: snapshot missing hash but --skip-hash-check=false")
	}
	if hasSum {
		size -= sha256.Size
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(in, size)); err != nil {
		return fmt.Errorf("snapshot restore: copy: %w", err)
	}
	if hasSum {
		want := make([]byte, sha256.Size)
		if _, err := io.ReadFull(in, want); err != nil {
			return err
		}
		if got := h.Sum(nil); !bytes.Equal(got, want) && !skipHashCheck {
			return fmt.Errorf("snapshot restore: expected sha256 %x, got %x", want, got)
		}
	}
	return out.Sync()
}

type importedRevs struct{ rev, compact int64 }

// importEtcdDB fills a new store at dir from the etcd backend file db.
func importEtcdDB(db, dir string) (importedRevs, error) {
	r, err := etcddb.Open(db)
	if err != nil {
		return importedRevs{}, err
	}
	defer r.Close()
	meta, err := r.Meta()
	if err != nil {
		return importedRevs{}, err
	}
	if err := checkEtcdStorageVersion(meta.StorageVersion); err != nil {
		return importedRevs{}, err
	}
	eng, err := rocksdb.Open(dir, rocksdb.DefaultConfig())
	if err != nil {
		return importedRevs{}, err
	}
	im, err := storage.NewImporter(eng)
	if err != nil {
		eng.Close()
		return importedRevs{}, err
	}
	var last int64
	err = r.ForEachKV(func(k, v []byte) error {
		if rv, _, err := storage.ParseEtcdRevKey(k); err == nil {
			last = rv.Main
		}
		return im.PutEtcdKV(k, v)
	})
	if err == nil {
		err = importServices(r, im)
	}
	if err == nil {
		// The consistent index starts again: the new cluster's log does.
		err = im.Finish(meta.CompactRev, storage.ConsistentIndex{})
	}
	if cerr := eng.Close(); err == nil {
		err = cerr
	}
	return importedRevs{rev: last, compact: meta.CompactRev}, err
}

// importServices copies leases, auth and alarms into the store's
// auxiliary buckets.
func importServices(r *etcddb.Reader, im *storage.Importer) error {
	leases, err := r.Leases()
	if err != nil {
		return err
	}
	for _, l := range leases {
		lease.Import(im, l.ID, l.TTL, l.RemainingTTL)
	}
	users, roles, enabled, rev, err := r.Auth()
	if err != nil {
		return err
	}
	if err := auth.Import(im, users, roles, enabled, rev); err != nil {
		return err
	}
	alarms, err := r.Alarms()
	if err != nil {
		return err
	}
	for _, a := range alarms {
		maintenance.ImportAlarm(im, a)
	}
	return nil
}

// checkEtcdStorageVersion refuses a backend file of a newer etcd than
// 3.7, whose schema MetaStore does not know. Files of etcd 3.5 and earlier
// have no storage version; their key bucket is the same.
func checkEtcdStorageVersion(v string) error {
	if v == "" {
		return nil
	}
	sv, err := gosemver.NewVersion(v)
	if err != nil {
		return fmt.Errorf("unreadable etcd storage version %q", v)
	}
	if sv.Major != 3 || sv.Minor > 7 {
		return fmt.Errorf("etcd storage version %s is newer than 3.7, the newest MetaStore reads", v)
	}
	return nil
}
