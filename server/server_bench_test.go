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

// startBinary starts a single-member server (etcd or metastore, same
// flags) on fresh loopback ports and a fresh data dir, and waits until it
// serves.
func startBinary(b *testing.B, bin string) string {
	client, peer := "http://"+freeAddr(&testing.T{}), "http://"+freeAddr(&testing.T{})
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "--name", "bench", "--data-dir", b.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "bench="+peer, "--log-level", "error")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Put(ctx, "warmup", "x")
		cancel()
		if err == nil {
			return strings.TrimPrefix(client, "http://")
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not serve: %v\n%s", bin, err, logs.String())
		}
	}
}

// BenchmarkServerPut drives etcd and metastore with the same workload:
// 256-byte values, keys over a space of 100k, clients spread over conns
// connections (etcd benchmark's put shape). Reports ops/s and p50/p99.
func BenchmarkServerPut(b *testing.B) {
	if os.Getenv("METASTORE_SERVER_BENCH") == "" {
		b.Skip("set METASTORE_SERVER_BENCH=1: builds etcd from the module proxy and starts both servers")
	}
	bins := map[string]string{"etcd": buildEtcd(b), "metastore": buildMetastore(&testing.T{})}
	for _, name := range []string{"etcd", "metastore"} {
		for _, shape := range []struct{ clients, conns int }{{1, 1}, {100, 10}} {
			b.Run(fmt.Sprintf("server=%s/clients=%d/conns=%d", name, shape.clients, shape.conns), func(b *testing.B) {
				ep := startBinary(b, bins[name])
				conns := make([]*clientv3.Client, shape.conns)
				for i := range conns {
					c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Logger: zap.NewNop()})
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					conns[i] = c
				}
				val := strings.Repeat("x", 256)
				var next atomic.Int64
				var mu sync.Mutex
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				var wg sync.WaitGroup
				for i := range shape.clients {
					c := conns[i%shape.conns]
					wg.Go(func() {
						for {
							n := next.Add(1)
							if n > int64(b.N) {
								return
							}
							start := time.Now()
							if _, err := c.Put(context.Background(), fmt.Sprintf("key-%06d", n%100000), val); err != nil {
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
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}
