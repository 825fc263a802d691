package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// buildEtcd builds the etcd server binary from the module proxy once into
// the user cache dir, for side-by-side benchmarks.
func buildEtcd(tb testing.TB) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(cache, "metastore", "etcd-"+etcdctlVersion)
	bin := filepath.Join(dir, "etcd")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	src := tb.TempDir()
	// etcd's main package lives in a module the proxy does not serve; its
	// entry point etcdmain.Main is in the server module.
	files := map[string]string{
		"go.mod":  "module etcdbuild\n\ngo 1.26\n",
		"main.go": "package main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"get", "go.etcd.io/etcd/server/v3@" + etcdctlVersion, "google.golang.org/grpc@v1.83.2"},
		{"build", "-o", bin, "."},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	return bin
}

// startBinary starts a cluster of n members (etcd or metastore, same
// flags) on fresh loopback ports and fresh data dirs, and waits until it
// serves. It returns the client endpoints.
func startBinary(b *testing.B, bin string, n int) []string {
	var clients, peers, initial []string
	for i := range n {
		clients = append(clients, "http://"+freeAddr(&testing.T{}))
		peers = append(peers, "http://"+freeAddr(&testing.T{}))
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	for i := range n {
		logs := &syncBuffer{}
		cmd := exec.Command(bin, "--name", fmt.Sprintf("m%d", i), "--data-dir", b.TempDir(),
			"--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--log-level", "error")
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	var eps []string
	for _, c := range clients {
		eps = append(eps, strings.TrimPrefix(c, "http://"))
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Put(ctx, "warmup", "x")
		cancel()
		if err == nil {
			return eps
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not serve: %v", bin, err)
		}
	}
}

// BenchmarkServer drives etcd and metastore with the same workloads in
// etcd benchmark's shapes: 256-byte values, keys over a space of 100k,
// clients spread over conns connections. put and txn-put (a txn with one
// put) write; range-l and range-s read one key linearizably and
// serializably. Reports ops/s and p50/p99 latency.
func BenchmarkServer(b *testing.B) {
	if os.Getenv("METASTORE_SERVER_BENCH") == "" {
		b.Skip("set METASTORE_SERVER_BENCH=1: builds etcd from the module proxy and starts both servers")
	}
	bins := map[string]string{"etcd": buildEtcd(b), "metastore": buildMetastore(&testing.T{})}
	val := strings.Repeat("x", 256)
	workloads := map[string]func(c *clientv3.Client, n int64) error{
		"put": func(c *clientv3.Client, n int64) error {
			_, err := c.Put(context.Background(), fmt.Sprintf("key-%06d", n%100000), val)
			return err
		},
		"txn-put": func(c *clientv3.Client, n int64) error {
			_, err := c.Txn(context.Background()).Then(clientv3.OpPut(fmt.Sprintf("key-%06d", n%100000), val)).Commit()
			return err
		},
		"range-l": func(c *clientv3.Client, n int64) error {
			_, err := c.Get(context.Background(), "range-key")
			return err
		},
		"range-s": func(c *clientv3.Client, n int64) error {
			_, err := c.Get(context.Background(), "range-key", clientv3.WithSerializable())
			return err
		},
	}
	type shape struct {
		workload              string
		members, clients, cns int
	}
	var shapes []shape
	for _, w := range []string{"put", "txn-put", "range-l", "range-s"} {
		shapes = append(shapes, shape{w, 1, 1, 1}, shape{w, 1, 100, 10})
	}
	shapes = append(shapes, shape{"put", 3, 100, 10})
	for _, sh := range shapes {
		for _, name := range []string{"etcd", "metastore"} {
			b.Run(fmt.Sprintf("%s/members=%d/clients=%d/conns=%d/server=%s", sh.workload, sh.members, sh.clients, sh.cns, name), func(b *testing.B) {
				eps := startBinary(b, bins[name], sh.members)
				conns := make([]*clientv3.Client, sh.cns)
				for i := range conns {
					c, err := clientv3.New(clientv3.Config{Endpoints: eps, Logger: zap.NewNop()})
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					conns[i] = c
				}
				if _, err := conns[0].Put(context.Background(), "range-key", val); err != nil {
					b.Fatal(err)
				}
				op := workloads[sh.workload]
				var next atomic.Int64
				var mu sync.Mutex
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				var wg sync.WaitGroup
				for i := range sh.clients {
					c := conns[i%sh.cns]
					wg.Go(func() {
						for {
							n := next.Add(1)
							if n > int64(b.N) {
								return
							}
							start := time.Now()
							if err := op(c, n); err != nil {
								b.Error(err)
								return
							}
							d := time.Since(start)
							mu.Lock()
							lat = append(lat, d)
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}
