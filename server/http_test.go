package server_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metastore/metastore/server/internal/testcluster"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/server"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	metricsAddr := testcluster.FreeAddr(t)
	ms := testcluster.Start(t, 1, func(c *server.Config) {
		c.ListenMetricsURLs = "http://" + metricsAddr
		c.QuotaBackendBytes = 1 << 30
	})
	c := testcluster.Client(t, ms[0]) // gRPC on the same port keeps working
	_, err := c.Put(ctx(t), "k", "v")
	require.NoError(t, err)

	for _, base := range []string{"http://" + ms[0].Srv.ClientAddrs()[0], "http://" + metricsAddr} {
		code, body := httpGet(t, base+"/health")
		require.Equal(t, 200, code)
		require.Equal(t, `{"health":"true","reason":""}`, body)
		code, body = httpGet(t, base+"/health?serializable=true")
		require.Equal(t, 200, code, body)
		code, body = httpGet(t, base+"/version")
		require.Equal(t, 200, code)
		require.Equal(t, `{"etcdserver":"3.7.3","etcdcluster":"3.7.0","storage":"3.7.0"}`, body)
		code, body = httpGet(t, base+"/livez")
		require.Equal(t, 200, code)
		require.Equal(t, "ok\n", body)
		code, _ = httpGet(t, base+"/readyz")
		require.Equal(t, 200, code)
		code, body = httpGet(t, base+"/debug/vars")
		require.Equal(t, 200, code)
		require.Contains(t, body, `"memstats": {`)
		require.Contains(t, body, `"cmdline": [`)
		code, body = httpGet(t, base+"/metrics")
		require.Equal(t, 200, code)
		for _, want := range []string{
			"etcd_server_has_leader 1", "etcd_server_is_leader 1", "etcd_debugging_mvcc_current_revision 2",
			"etcd_server_quota_backend_bytes 1.073741824e+09", `etcd_server_version{server_version="3.7.3"} 1`,
			"etcd_mvcc_db_total_size_in_bytes", "go_goroutines", "process_resident_memory_bytes",
		} {
			require.Contains(t, body, want)
		}
	}
	resp, err := http.Post("http://"+metricsAddr+"/health", "text/plain", strings.NewReader(""))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestEmulatedEtcdVersion(t *testing.T) {
	ms := testcluster.Start(t, 1, func(c *server.Config) { c.EmulatedEtcdVersion = "3.6.9" })
	c := testcluster.Client(t, ms[0])
	st, err := c.Status(ctx(t), ms[0].Srv.ClientAddrs()[0])
	require.NoError(t, err)
	require.Equal(t, "3.6.9", st.Version)
	require.Equal(t, "3.6.0", st.StorageVersion)
	_, body := httpGet(t, "http://"+ms[0].Srv.ClientAddrs()[0]+"/version")
	require.Equal(t, `{"etcdserver":"3.6.9","etcdcluster":"3.6.0","storage":"3.6.0"}`, body)
}

// With --listen-client-http-urls the HTTP endpoints move to their own
// listener and the client URLs serve gRPC only (etcd 3.7).
func TestHTTPOnlyClientListener(t *testing.T) {
	httpAddr := testcluster.FreeAddr(t)
	ms := testcluster.Start(t, 1, func(c *server.Config) { c.ListenClientHTTPURLs = "http://" + httpAddr })
	code, body := httpGet(t, "http://"+httpAddr+"/health")
	require.Equal(t, 200, code)
	require.Equal(t, `{"health":"true","reason":""}`, body)
	_, err := testcluster.Client(t, ms[0]).Put(ctx(t), "k", "v")
	require.NoError(t, err, "gRPC on the client URL")
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + ms[0].Srv.ClientAddrs()[0] + "/health")
	if err == nil {
		resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode, "no HTTP on the gRPC port")
	}
}

// unix:// client URLs serve on a unix socket named by the URL's host, in
// the working directory, as etcd's (its e2e tests use unix://localhost:N).
func TestUnixSocketClientURL(t *testing.T) {
	t.Chdir(t.TempDir())
	sock := "localhost:12379"
	ms := testcluster.Start(t, 1, func(c *server.Config) {
		c.ListenClientURLs, c.AdvertiseClientURLs = "unix://"+sock, "unix://"+sock
	})
	require.Equal(t, []string{sock}, ms[0].Srv.ClientAddrs())
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"unix://" + sock}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Put(ctx(t), "k", "v")
	require.NoError(t, err)
	g, err := c.Get(ctx(t), "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(g.Kvs[0].Value))

	// unix:///path: a socket at an absolute path (etcd 3.7).
	abs := filepath.Join(t.TempDir(), "c.sock")
	ms2 := testcluster.Start(t, 1, func(c *server.Config) {
		c.ListenClientURLs, c.AdvertiseClientURLs = "unix://"+abs, "unix://"+abs
	})
	require.Equal(t, []string{abs}, ms2[0].Srv.ClientAddrs())
	c2, err := clientv3.New(clientv3.Config{Endpoints: []string{"unix://" + abs}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Put(ctx(t), "k", "v")
	require.NoError(t, err)
}

// /readyz fails its data_corruption check while a CORRUPT alarm is up,
// with etcd's text, and every check's result is in the metrics.
func TestReadyzFailsOnCorruptAlarm(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	base := "http://" + ms[0].Srv.ClientAddrs()[0]
	_, err := c.AlarmList(ctx(t))
	require.NoError(t, err)
	st, err := c.Status(ctx(t), ms[0].Srv.ClientAddrs()[0])
	require.NoError(t, err)
	_, err = pb.NewMaintenanceClient(c.ActiveConnection()).Alarm(ctx(t), &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: st.Header.MemberId, Alarm: pb.AlarmType_CORRUPT})
	require.NoError(t, err)
	code, body := httpGet(t, base+"/readyz")
	require.Equal(t, 503, code)
	require.Contains(t, body, "[-]data_corruption failed: alarm activated: CORRUPT\n")
	require.Contains(t, body, "[+]linearizable_read ok\n")
	code, body = httpGet(t, base+"/readyz?exclude=data_corruption")
	require.Equal(t, 200, code)
	require.Equal(t, "ok\n", body)
	code, _ = httpGet(t, base+"/livez")
	require.Equal(t, 200, code, "live, though not ready")
	_, body = httpGet(t, base+"/metrics")
	require.Contains(t, body, `etcd_server_healthcheck{name="data_corruption",type="readyz"} 0`)
	require.Contains(t, body, `etcd_server_healthchecks_total{name="data_corruption",status="error",type="readyz"} 1`)
}

// Scrapes and health checks while the member stops: answers or refused
// connections, never a panic or a hang.
func TestScrapeDuringShutdown(t *testing.T) {
	ms := testcluster.Start(t, 1)
	base := "http://" + ms[0].Srv.ClientAddrs()[0]
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range []string{"/metrics", "/readyz?verbose", "/health", "/livez"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-done:
					return
				default:
				}
				if resp, err := cl.Get(base + p); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { ms[0].Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("the member did not stop while being scraped")
	}
	close(done)
	wg.Wait()
}
