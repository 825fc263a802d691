// A program that depends on MetaStore's storage module alone (fetched as
// a module, outside the workspace): put and range on the memory engine.
// make release-check runs it.
package main

import (
	"fmt"
	"log"

	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/memory"
)

func main() {
	s, err := storage.Open(memory.New(), storage.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Put([]byte("k"), []byte("v1"), 0); err != nil {
		log.Fatal(err)
	}
	rev, err := s.Put([]byte("k"), []byte("v2"), 0)
	if err != nil {
		log.Fatal(err)
	}
	now, err := s.Range([]byte("k"), nil, storage.RangeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	past, err := s.Range([]byte("k"), nil, storage.RangeOptions{Rev: rev - 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("revision %d: k=%s (version %d); at %d: k=%s\n", rev, now.KVs[0].Value, now.KVs[0].Version, rev-1, past.KVs[0].Value)
}
