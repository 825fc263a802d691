package wal_test

import (
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/metastore/metastore/consensus/wal"
)

// FuzzSegment feeds arbitrary bytes to the segment reader as the only
// segment of a WAL (and, damaged at the same offset, as a copy of a valid
// one): ReadAll and Open must return entries or an error, never panic or
// hang, and ReadAll must not change the file.
func FuzzSegment(f *testing.F) {
	dir := f.TempDir()
	w, _, err := wal.Open(dir, wal.Options{})
	if err != nil {
		f.Fatal(err)
	}
	for i := uint64(1); i <= 5; i++ {
		if err := w.Save(hardState(1, 1, i), []*raftpb.Entry{entry(1, i, "seed")}); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		f.Fatal(err)
	}
	w.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	valid, err := os.ReadFile(segs[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid[:min(len(valid), 4096)], uint16(0), byte(0))
	f.Add(valid[:min(len(valid), 4096)], uint16(20), byte(0xff))
	f.Add([]byte{}, uint16(0), byte(0))
	f.Fuzz(func(t *testing.T, data []byte, at uint16, x byte) {
		if len(data) > 0 {
			data[int(at)%len(data)] ^= x
		}
		d := t.TempDir()
		name := filepath.Join(d, filepath.Base(segs[0]))
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if h, err := wal.ReadAll(d); err == nil {
			for i := 1; i < len(h.Entries); i++ {
				if h.Entries[i].GetIndex() != h.Entries[i-1].GetIndex()+1 {
					t.Fatalf("entries out of order: %d after %d", h.Entries[i].GetIndex(), h.Entries[i-1].GetIndex())
				}
			}
		}
		after, err := os.ReadFile(name)
		if err != nil || string(after) != string(data) {
			t.Fatal("ReadAll changed the segment")
		}
		if w, _, err := wal.Open(d, wal.Options{}); err == nil {
			w.Close()
		}
	})
}
