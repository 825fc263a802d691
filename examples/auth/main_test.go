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
	var out, errOut bytes.Buffer
	require.Equal(t, 0, cli([]string{"-endpoints", strings.Join(eps, ",")}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "refused: alice put other: etcdserver: permission denied")
	require.Contains(t, out.String(), "ok: root get app/config = v1")
}

// Run twice, the setup fails (root exists) and the example says so.
func TestExampleReportsFailures(t *testing.T) {
	eps := etcdtest.StartT(t, etcdtest.Config{}).Endpoints
	var out, errOut bytes.Buffer
	require.Equal(t, 0, cli([]string{"-endpoints", eps[0]}, &out, &errOut), errOut.String())
	errOut.Reset()
	require.Equal(t, 1, cli([]string{"-endpoints", eps[0]}, &out, &errOut))
	require.Contains(t, errOut.String(), "user add root: etcdserver: user name already exists")
	require.Equal(t, 2, cli([]string{"-nope"}, &out, &errOut))
}
