package e2e

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metastore/metastore/tools/etcdtest"

	v3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

var endpointsFlag = flag.String("endpoints", os.Getenv("ETCD_ENDPOINTS"), "comma-separated endpoints to test against instead of an embedded etcd")

var endpoints []string

func TestMain(m *testing.M) {
	flag.Parse()
	if *endpointsFlag != "" {
		endpoints = strings.Split(*endpointsFlag, ",")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "clientsdk-etcd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e, err := etcdtest.Start(etcdtest.Config{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded etcd:", err)
		os.Exit(1)
	}
	endpoints = e.Endpoints
	code := m.Run()
	e.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newClient returns a client of the endpoint under test.
func newClient(t testing.TB) *v3.Client {
	t.Helper()
	c, err := v3.New(v3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// prefix returns a key prefix unique to this test, so the suite can run
// against a shared, non-empty endpoint.
func prefix(t testing.TB) string {
	return fmt.Sprintf("/clientsdk-test/%s/%d", t.Name(), time.Now().UnixNano())
}
