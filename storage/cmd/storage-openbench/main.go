// Command storage-openbench measures what opening a large store costs:
// populate a RocksDB-backed store with N keys once, then open it in a fresh
// process and report the time to first read and the resident memory.
//
//	storage-openbench -dir /tmp/s -populate 1000000
//	storage-openbench -dir /tmp/s
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/rocksdb"
)

func main() {
	dir := flag.String("dir", "", "store directory (required)")
	populate := flag.Int("populate", 0, "write this many keys of -value-size bytes, then exit")
	valueSize := flag.Int("value-size", 256, "value size in bytes for -populate")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "storage-openbench: -dir is required")
		os.Exit(2)
	}
	var err error
	if *populate > 0 {
		err = fill(*dir, *populate, *valueSize)
	} else {
		err = measure(*dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "storage-openbench:", err)
		os.Exit(1)
	}
}

func key(i int) []byte { return fmt.Appendf(nil, "/registry/pods/ns-%03d/pod-%08d", i%1000, i) }

func open(dir string) (*storage.Store, error) {
	engine, err := rocksdb.Open(dir, rocksdb.DefaultConfig())
	if err != nil {
		return nil, err
	}
	return storage.Open(engine, storage.Config{NoSync: true})
}

func fill(dir string, n, size int) error {
	s, err := open(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	val := make([]byte, size)
	start := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i += 1000 {
		tw, err := s.Write()
		if err != nil {
			return err
		}
		for j := i; j < min(i+1000, n); j++ {
			for k := range val {
				val[k] = byte(rng.Uint32()) // incompressible, like real data
			}
			if _, err := tw.Put(key(j), val, 0); err != nil {
				tw.Abort()
				return err
			}
		}
		if _, err := tw.End(); err != nil {
			return err
		}
	}
	fmt.Printf("populated %d keys in %v (revision %d)\n", n, time.Since(start).Round(time.Millisecond), s.Rev())
	return nil
}

func measure(dir string) error {
	start := time.Now()
	s, err := open(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	opened := time.Since(start)
	res, err := s.Range(key(12345), nil, storage.RangeOptions{})
	if err != nil {
		return err
	}
	first := time.Since(start)
	sizes, err := s.Sizes()
	if err != nil {
		return err
	}
	fmt.Printf("open: %v, open+first read: %v (found %d), revision %d, on disk %d MiB, RSS %s, peak RSS %s\n",
		opened.Round(time.Microsecond), first.Round(time.Microsecond), len(res.KVs), s.Rev(),
		sizes.Physical>>20, procStatus("VmRSS"), procStatus("VmHWM"))
	return nil
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
