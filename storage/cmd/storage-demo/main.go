// Command storage-demo exercises the storage module on a persistent RocksDB
// data directory: it is what `make run` starts until the metastore server
// exists. Each run bumps a counter, so revisions visibly survive restarts.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/rocksdb"
)

func main() {
	dataDir := flag.String("data-dir", "default.metastore", "directory of the RocksDB data")
	flag.Parse()
	if err := run(*dataDir); err != nil {
		fmt.Fprintln(os.Stderr, "storage-demo:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	start := time.Now()
	engine, err := rocksdb.Open(dir, rocksdb.DefaultConfig())
	if err != nil {
		return err
	}
	s, err := storage.Open(engine, storage.Config{})
	if err != nil {
		_ = engine.Close()
		return err
	}
	defer s.Close()
	fmt.Printf("opened %s in %v at revision %d (compacted at %d)\n", dir, time.Since(start).Round(time.Microsecond), s.Rev(), s.CompactRev())

	ws := s.NewWatchStream(0)
	defer ws.Close()
	if _, err := ws.Watch(storage.WatchOptions{Key: []byte("demo/"), End: []byte("demo0"), PrevKV: true}); err != nil {
		return err
	}

	runs := 0
	if res, err := s.Range([]byte("demo/runs"), nil, storage.RangeOptions{}); err != nil {
		return err
	} else if len(res.KVs) == 1 {
		runs, _ = strconv.Atoi(string(res.KVs[0].Value))
	}
	tw, err := s.Write()
	if err != nil {
		return err
	}
	if _, err := tw.Put([]byte("demo/runs"), []byte(strconv.Itoa(runs+1)), 0); err != nil {
		tw.Abort()
		return err
	}
	if _, err := tw.Put([]byte("demo/last-run"), []byte(time.Now().UTC().Format(time.RFC3339)), 0); err != nil {
		tw.Abort()
		return err
	}
	rev, err := tw.End()
	if err != nil {
		return err
	}
	fmt.Printf("run %d committed at revision %d (durable: fsynced)\n", runs+1, rev)

	r := <-ws.Chan()
	for _, ev := range r.Events {
		prev := "none"
		if ev.PrevKv != nil {
			prev = string(ev.PrevKv.Value)
		}
		fmt.Printf("watch: %s %s=%s (prev %s) at revision %d\n", ev.Type, ev.Kv.Key, ev.Kv.Value, prev, ev.Kv.ModRevision)
	}

	all, err := s.Range([]byte("demo/"), []byte("demo0"), storage.RangeOptions{})
	if err != nil {
		return err
	}
	for _, kv := range all.KVs {
		fmt.Printf("range: %s=%s create=%d mod=%d version=%d\n", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
	}
	h, err := s.HashKV(0)
	if err != nil {
		return err
	}
	sizes, err := s.Sizes()
	if err != nil {
		return err
	}
	fmt.Printf("hashkv=%08x at revision %d; engine %d bytes on disk, %d logical\n", h.Hash, h.HashRev, sizes.Physical, sizes.Logical)
	fmt.Println("the metastore server is not built yet; see README.md")
	return nil
}
