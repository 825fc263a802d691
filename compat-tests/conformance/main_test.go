package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/compat-tests/internal/target"
)

// endpoints are the client addresses of the server under test.
var endpoints []string

func TestMain(m *testing.M) { target.Main(m, &endpoints) }

// newClient returns a client of the server under test, closed at cleanup.
func newClient(t testing.TB, eps ...string) *clientv3.Client {
	t.Helper()
	if len(eps) == 0 {
		eps = endpoints
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// ctx is a per-test context with a deadline.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// prefix returns a key prefix of the test's own, so tests can share a
// server that holds other data.
func prefix(t testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("compat/%s/%s/", t.Name(), hex.EncodeToString(b))
}

// skipIfUnimplemented turns an Unimplemented answer into a skip with the
// reason: features the target does not build are reported, never passed.
func skipIfUnimplemented(t testing.TB, err error) {
	t.Helper()
	if status.Code(err) == codes.Unimplemented || strings.Contains(fmt.Sprint(err), "Unimplemented") {
		t.Skipf("the target reports Unimplemented: %v", err)
	}
}
