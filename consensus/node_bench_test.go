package consensus_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/metastore/metastore/consensus/consensustest"
)

// BenchmarkPropose measures proposal throughput and commit latency with
// real fsyncs, on 1 and 3 nodes (in-memory network), with 1 and 100
// concurrent proposers. It reports fsyncs per proposal and entries per
// Ready batch on the leader.
func BenchmarkPropose(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, proposers := range []int{1, 100} {
			b.Run(fmt.Sprintf("nodes=%d/proposers=%d", nodes, proposers), func(b *testing.B) {
				c := consensustest.NewCluster(b, nodes, consensustest.Options{Tick: 100 * time.Millisecond, SnapshotCount: 1 << 40})
				lead := c.WaitLeader(b.Context())
				n := c.Members[lead].Node
				payload := make([]byte, 256)
				before := n.Status()
				var mu sync.Mutex
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				var wg sync.WaitGroup
				per := (b.N + proposers - 1) / proposers
				for range proposers {
					wg.Go(func() {
						for range per {
							start := time.Now()
							if _, err := n.Propose(b.Context(), payload); err != nil {
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
				after := n.Status()
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				total := float64(per * proposers)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				b.ReportMetric(float64(after.Fsyncs-before.Fsyncs)/total, "fsyncs/proposal")
				b.ReportMetric(float64(after.LogEntries-before.LogEntries)/float64(max(after.ReadyBatches-before.ReadyBatches, 1)), "entries/ready")
				b.ReportMetric(total/b.Elapsed().Seconds(), "proposals/s")
			})
		}
	}
}
