package robustness

import (
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/tests/v3/robustness/model"
	"go.etcd.io/etcd/tests/v3/robustness/report"
	"go.uber.org/zap"

	"github.com/metastore/metastore/compat-tests/internal/procs"
)

// target is a server under test: how to start n members, and how to get
// the requests its members persisted once they are stopped (etcd's
// validators rebuild the history watches and serializable reads are
// checked against from them).
type target struct {
	name      string
	start     func(testing.TB, int, procs.Options) *procs.Cluster
	persisted func(*testing.T, *procs.Cluster, int) ([]model.EtcdRequest, error)
}

var targets = []target{
	{"etcd", procs.Etcd, etcdPersisted},
	{"metastore", procs.Metastore, metastorePersisted},
}

// etcdPersisted reads the members' own WALs, as etcd's suite does.
func etcdPersisted(t *testing.T, c *procs.Cluster, n int) ([]model.EtcdRequest, error) {
	var dirs []string
	for i := range n {
		dirs = append(dirs, c.DataDir(i))
	}
	return report.PersistedRequests(zap.NewNop(), dirs)
}

// metastorePersisted exports each member's Raft log as an etcd WAL
// (`metastore wal export`) and reads those with etcd's reader.
func metastorePersisted(t *testing.T, c *procs.Cluster, n int) ([]model.EtcdRequest, error) {
	var dirs []string
	base := t.TempDir()
	for i := range n {
		out := filepath.Join(base, "m"+itoa(i))
		if err := c.ExportWAL(i, out); err != nil {
			return nil, err
		}
		dirs = append(dirs, out)
	}
	return report.PersistedRequests(zap.NewNop(), dirs)
}
