package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/consensus"
	"github.com/metastore/metastore/consensus/wal"
)

// ExportWAL writes the Raft log of the MetaStore data dir dataDir as an
// etcd WAL in out/member/wal, so that etcd's tools read it: etcd's
// robustness suite (which rebuilds the persisted requests from it to
// check watches and serializable reads), etcd-dump-logs. Every entry still
// on disk is written, those a snapshot covers included, with the hard
// state and the latest snapshot marker, each entry as etcd writes it (a
// normal entry's data is the InternalRaftRequest alone). dataDir is only read; out must
// not exist. It returns the number of entries written.
func ExportWAL(dataDir, out string, lg *zap.Logger) (int, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if _, err := os.Stat(filepath.Join(dataDir, "member", "wal")); err != nil {
		return 0, fmt.Errorf("--data-dir %q has no Raft log (member/wal): %w", dataDir, err)
	}
	if err := checkDataDir(dataDir); err != nil {
		return 0, err
	}
	if _, err := os.Stat(out); err == nil {
		return 0, fmt.Errorf("--out %q exists: the export writes a new directory", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	h, err := wal.ReadAll(filepath.Join(dataDir, "member", "wal"))
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(out, "member", "wal")
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return 0, err
	}
	w, err := etcdwal.Create(lg, dir, nil)
	if err != nil {
		return 0, fmt.Errorf("create etcd wal: %w", err)
	}
	if s := h.Snapshot; s.GetIndex() > 0 {
		if err := w.SaveSnapshot(&walpb.Snapshot{Index: proto.Uint64(s.GetIndex()), Term: proto.Uint64(s.GetTerm()), ConfState: s.GetConfState()}); err != nil {
			w.Close()
			return 0, err
		}
	}
	for i, e := range h.Entries {
		if e.GetType() == raftpb.EntryNormal {
			e = proto.CloneOf(e)
			e.Data = consensus.EntryPayload(e)
			h.Entries[i] = e
		}
	}
	const batch = 1024
	for i := 0; i < len(h.Entries) || i == 0; i += batch {
		ents := h.Entries[i:min(i+batch, len(h.Entries))]
		if err := w.Save(h.HardState, ents); err != nil {
			w.Close()
			return 0, err
		}
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return len(h.Entries), nil
}
