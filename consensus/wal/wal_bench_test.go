package wal_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/metastore/metastore/consensus/wal"
)

// BenchmarkWAL_SaveSync measures one Ready batch of n 256-byte entries
// followed by its single fsync.
func BenchmarkWAL_SaveSync(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			w, _, err := wal.Open(b.TempDir(), wal.Options{})
			require.NoError(b, err)
			defer w.Close()
			idx := uint64(0)
			data := string(make([]byte, 256))
			b.ReportAllocs()
			for b.Loop() {
				ents := make([]*raftpb.Entry, n)
				for i := range ents {
					idx++
					ents[i] = entry(1, idx, data)
				}
				if err := w.Save(hardState(1, 1, idx), ents); err != nil {
					b.Fatal(err)
				}
				if err := w.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
