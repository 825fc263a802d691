package storage_test

import (
	"fmt"
	"log"
	"os"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/rocksdb"
)

// Example shows standalone use: open a RocksDB-backed store, write, read
// the present and the past, watch, and compact.
func Example() {
	dir, err := os.MkdirTemp("", "storage-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	engine, err := rocksdb.Open(dir, rocksdb.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	s, err := storage.Open(engine, storage.Config{}) // takes ownership of engine
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ws := s.NewWatchStream(0)
	defer ws.Close()
	if _, err := ws.Watch(storage.WatchOptions{Key: []byte("app/"), End: []byte("app0")}); err != nil {
		log.Fatal(err)
	}

	rev, _ := s.Put([]byte("app/color"), []byte("red"), 0)
	fmt.Println("put at revision", rev)
	s.Put([]byte("app/color"), []byte("blue"), 0)

	// Several changes at one revision, atomically.
	tw, _ := s.Write()
	tw.Put([]byte("app/size"), []byte("L"), 0)
	tw.DeleteRange([]byte("app/color"), nil)
	rev, _ = tw.End()
	fmt.Println("txn at revision", rev)

	now, _ := s.Range([]byte("app/"), []byte("app0"), storage.RangeOptions{})
	for _, kv := range now.KVs {
		fmt.Printf("now: %s=%s (version %d)\n", kv.Key, kv.Value, kv.Version)
	}
	past, _ := s.Range([]byte("app/color"), nil, storage.RangeOptions{Rev: 2})
	fmt.Printf("at revision 2: %s\n", past.KVs[0].Value)

	for seen := 0; seen < 4; {
		r := <-ws.Chan()
		for _, ev := range r.Events {
			fmt.Printf("watch: %s %s@%d\n", ev.Type, ev.Kv.Key, ev.Kv.ModRevision)
			seen++
		}
	}

	done, _ := s.Compact(3)
	<-done
	_, err = s.Range([]byte("app/color"), nil, storage.RangeOptions{Rev: 2})
	fmt.Println("after compaction:", err)
	// Output:
	// put at revision 2
	// txn at revision 4
	// now: app/size=L (version 1)
	// at revision 2: red
	// watch: PUT app/color@2
	// watch: PUT app/color@3
	// watch: PUT app/size@4
	// watch: DELETE app/color@4
	// after compaction: mvcc: required revision has been compacted
}
