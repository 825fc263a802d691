package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A MetaStore data dir:
//
//	<data-dir>/member/metastore   marker: "metastore data dir v1\n"
//	<data-dir>/member/kv/         the RocksDB store
//	<data-dir>/member/wal/        the Raft log (consensus/wal)
//	<data-dir>/member/snap/       Raft snapshot metadata
//
// etcd's has member/snap/db (bbolt) and member/wal/*.wal with the same
// segment file names as ours, so the marker — written before anything
// else when MetaStore creates a data dir — is what tells them apart.
const (
	dataDirMarker        = "metastore"
	dataDirMarkerContent = "metastore data dir v1\n"
)

// checkDataDir refuses a data dir MetaStore did not write, before
// anything in it is opened or changed: etcd's (member/snap/db), one with
// an unknown marker, or a member/ directory holding something else. A
// data dir without member/ (or with an empty one) is new. A member/ of an
// earlier MetaStore, from before the marker (it has member/kv), is
// accepted; prepareDataDir adds the marker.
func checkDataDir(dir string) error {
	member := filepath.Join(dir, "member")
	ents, err := os.ReadDir(member)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--data-dir %q: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(member, "snap", "db")); err == nil {
		return fmt.Errorf("--data-dir %q is an etcd data dir (member/snap/db): MetaStore does not open it and changed nothing", dir)
	}
	b, err := os.ReadFile(filepath.Join(member, dataDirMarker))
	switch {
	case err == nil && string(b) == dataDirMarkerContent:
		return nil
	case err == nil:
		return fmt.Errorf("--data-dir %q: unknown data dir version %q in member/%s (written by a newer MetaStore?): changed nothing",
			dir, strings.TrimSpace(string(b)), dataDirMarker)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--data-dir %q: %w", dir, err)
	}
	if st, err := os.Stat(filepath.Join(member, "kv", "CURRENT")); err == nil && !st.IsDir() {
		return nil // written by MetaStore before the marker existed
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return fmt.Errorf("--data-dir %q is not a MetaStore data dir (member/ holds %s): MetaStore does not open it and changed nothing",
		dir, strings.Join(names, ", "))
}

// prepareDataDir creates dir and member/ if needed and makes sure the
// marker is there (synced) before the store or the log is created.
// checkDataDir must have accepted dir.
func prepareDataDir(dir string) error {
	member := filepath.Join(dir, "member")
	if err := os.MkdirAll(member, 0o700); err != nil {
		return fmt.Errorf("create --data-dir %q: %w", dir, err)
	}
	path := filepath.Join(member, dataDirMarker)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := writeFileSync(path, []byte(dataDirMarkerContent)); err != nil {
		return fmt.Errorf("--data-dir %q: write marker: %w", dir, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
