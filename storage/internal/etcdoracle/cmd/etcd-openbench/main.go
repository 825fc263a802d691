// Command etcd-openbench is the etcd side of storage-openbench: it
// populates etcd 3.7's mvcc store (bbolt backend) with N keys once, then
// opens it in a fresh process and reports the time to first read and the
// resident memory, so both stores can be compared on the same machine.
//
//	etcd-openbench -dir /tmp/e -populate 1000000
//	etcd-openbench -dir /tmp/e
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/pkg/v3/traceutil"
	"go.etcd.io/etcd/server/v3/lease"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.uber.org/zap"
)

func main() {
	dir := flag.String("dir", "", "store directory (required)")
	populate := flag.Int("populate", 0, "write this many keys of -value-size bytes, then exit")
	valueSize := flag.Int("value-size", 256, "value size in bytes for -populate")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "etcd-openbench: -dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "etcd-openbench:", err)
		os.Exit(1)
	}
	if *populate > 0 {
		fill(*dir, *populate, *valueSize)
	} else {
		measure(*dir)
	}
}

func key(i int) []byte { return fmt.Appendf(nil, "/registry/pods/ns-%03d/pod-%08d", i%1000, i) }

func open(dir string) (backend.Backend, mvcc.KV) {
	cfg := backend.DefaultBackendConfig(zap.NewNop())
	cfg.Path = filepath.Join(dir, "db")
	be := backend.New(cfg)
	return be, mvcc.NewStore(zap.NewNop(), be, &lease.FakeLessor{}, mvcc.StoreConfig{})
}

func fill(dir string, n, size int) {
	be, s := open(dir)
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, size)
	start := time.Now()
	for i := 0; i < n; i += 1000 {
		tw := s.Write(traceutil.TODO())
		for j := i; j < min(i+1000, n); j++ {
			for k := range val {
				val[k] = byte(rng.Uint32())
			}
			tw.Put(key(j), val, lease.NoLease)
		}
		tw.End()
	}
	s.Close()
	be.Close()
	fmt.Printf("populated %d keys in %v\n", n, time.Since(start).Round(time.Millisecond))
}

func measure(dir string) {
	start := time.Now()
	be, s := open(dir)
	opened := time.Since(start)
	rr, err := s.Range(context.Background(), key(12345), nil, mvcc.RangeOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-openbench:", err)
		os.Exit(1)
	}
	first := time.Since(start)
	fmt.Printf("open: %v, open+first read: %v (found %d), revision %d, on disk %d MiB, RSS %s, peak RSS %s\n",
		opened.Round(time.Microsecond), first.Round(time.Microsecond), len(rr.KVs), s.Rev(),
		be.Size()>>20, procStatus("VmRSS"), procStatus("VmHWM"))
	s.Close()
	be.Close()
}

// procStatus returns a field of /proc/self/status, such as "VmRSS".
func procStatus(field string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "n/a"
}
