package robustness

import (
	"testing"

	"github.com/metastore/metastore/compat-tests/internal/procs"
	"github.com/metastore/metastore/tools/etcdtest"
)

// cluster is a running set of members; Endpoints are their client
// addresses (host:port), in member order.
type cluster = procs.Cluster

func startMetastore(tb testing.TB, n int) *cluster { return procs.StartMetastore(tb, n) }

// startEtcd starts an embedded etcd 3.7.3 cluster of n members on loopback,
// the reference every run must pass on, and closes it at cleanup.
func startEtcd(tb testing.TB, n int) *cluster {
	tb.Helper()
	return &cluster{Endpoints: etcdtest.StartT(tb, etcdtest.Config{Members: n}).Endpoints}
}
