package bench

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/tools/etcdtest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The server dies under a run: the errors are reported as they start, and
// the run gives up one request timeout later with the summary so far.
func TestRunGivesUpWhenTheServerDies(t *testing.T) {
	c := etcdtest.StartT(t, etcdtest.Config{})
	errs := &syncBuf{}
	cfg := Config{Endpoints: c.Endpoints, Clients: 2, Total: 1 << 30, Timeout: time.Second, Errors: errs}
	go func() {
		time.Sleep(500 * time.Millisecond)
		c.Close()
	}()
	t0 := time.Now()
	sums, err := Run(context.Background(), cfg, "put", Put(KeyConfig{}))
	require.True(t, errors.Is(err, ErrGaveUp), "%v", err)
	require.Less(t, time.Since(t0), 10*time.Second, "gave up soon after the timeout")
	require.NotEmpty(t, sums)
	require.Greater(t, sums[0].Total, 0, "the requests before the server died are summarized")
	require.NotEmpty(t, sums[0].ErrorCounts)
	require.Contains(t, errs.String(), "bench: ", "the first error was reported when it happened")
}

// A run with no failures does not give up, however slow.
func TestRunHealthNeedsAFailure(t *testing.T) {
	h := newRunHealth(time.Now().Add(-time.Hour), Config{Timeout: time.Millisecond})
	gaveUp := make(chan struct{})
	stop := h.watch(func(error) { close(gaveUp) })
	select {
	case <-gaveUp:
		t.Fatal("gave up without a failure")
	case <-time.After(50 * time.Millisecond):
	}
	h.done(errors.New("x"))
	select {
	case <-gaveUp:
	case <-time.After(5 * time.Second):
		t.Fatal("did not give up after a failure past the timeout")
	}
	stop()
}
