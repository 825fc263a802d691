// Package target finds the server a compat-tests package runs against:
// the -endpoints flag or ETCD_ENDPOINTS, or else an embedded etcd 3.7.3
// started for the run (the reference every test must pass against).
package target

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/metastore/metastore/tools/etcdtest"
)

var endpointsFlag = flag.String("endpoints", os.Getenv("ETCD_ENDPOINTS"),
	"comma-separated host:port of the server under test; empty starts an embedded etcd 3.7.3")

// Endpoints returns the client addresses to test and a function that
// stops what it started. Call it after flag.Parse.
func Endpoints() ([]string, func(), error) {
	if *endpointsFlag != "" {
		return strings.Split(*endpointsFlag, ","), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "compat-etcd")
	if err != nil {
		return nil, nil, err
	}
	c, err := etcdtest.Start(etcdtest.Config{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return c.Endpoints, func() { c.Close(); os.RemoveAll(dir) }, nil
}

// Main is a test package's TestMain: it parses the flags, sets *eps to the
// endpoints under test (starting an embedded etcd if none were given),
// runs the tests, stops what it started and exits.
func Main(m *testing.M, eps *[]string) {
	flag.Parse()
	got, stop, err := Endpoints()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat-tests:", err)
		os.Exit(1)
	}
	*eps = got
	code := m.Run()
	stop()
	os.Exit(code)
}
