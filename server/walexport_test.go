package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/server/internal/testcluster"
)

// TestExportWALReadByEtcd: `metastore wal export` writes the member's Raft
// log as an etcd WAL that etcd's own reader opens, with every committed
// put in order, and leaves the data dir as it was.
func TestExportWALReadByEtcd(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	for i := range 20 {
		_, err := c.Put(ctx(t), fmt.Sprintf("k%02d", i), "v")
		require.NoError(t, err)
	}
	ms[0].Stop()
	dataDir := ms[0].Cfg.DataDir
	before := treeOf(t, dataDir)

	out := filepath.Join(t.TempDir(), "export")
	n, err := server.ExportWAL(dataDir, out, zaptest.NewLogger(t))
	require.NoError(t, err)
	require.Greater(t, n, 20)
	require.Equal(t, before, treeOf(t, dataDir), "the export changed the data dir")

	w, err := etcdwal.OpenForRead(zaptest.NewLogger(t), filepath.Join(out, "member", "wal"), &walpb.Snapshot{})
	require.NoError(t, err)
	defer w.Close()
	_, hs, ents, err := w.ReadAll()
	require.NoError(t, err)
	require.Len(t, ents, n)
	require.GreaterOrEqual(t, hs.GetCommit(), ents[len(ents)-1].GetIndex()-1)
	var puts []string
	for _, e := range ents {
		if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		var r pb.InternalRaftRequest
		require.NoError(t, proto.Unmarshal(e.GetData(), &r))
		if p := r.GetPut(); p != nil {
			puts = append(puts, string(p.GetKey()))
		}
	}
	require.Len(t, puts, 20)
	require.Equal(t, "k00", puts[0])
	require.Equal(t, "k19", puts[19])

	// An existing --out, and a directory that is not a MetaStore data dir,
	// are refused.
	_, err = server.ExportWAL(dataDir, out, nil)
	require.ErrorContains(t, err, "exists")
	_, err = server.ExportWAL(t.TempDir(), filepath.Join(t.TempDir(), "x"), nil)
	require.ErrorContains(t, err, "no Raft log")
}

// treeOf maps every file under dir to its size and modification time.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out[p] = fmt.Sprint(info.Size(), info.ModTime().UnixNano(), info.Mode())
		return nil
	}))
	return out
}
