package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/tools/etcdtest"
)

// The example runs against ETCD_ENDPOINTS (make test: bin/metastore) or an
// embedded etcd 3.7.3.
func TestExample(t *testing.T) {
	var eps []string
	if e := os.Getenv("ETCD_ENDPOINTS"); e != "" {
		eps = strings.Split(e, ",")
	} else {
		eps = etcdtest.StartT(t, etcdtest.Config{}).Endpoints
	}
	var out bytes.Buffer
	require.NoError(t, run(&out, eps), out.String())
	require.Contains(t, out.String(), "refused: alice put other: etcdserver: permission denied")
	require.Contains(t, out.String(), "ok: root get app/config = v1")
}
