package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/storage"
)

// Auto-compaction as etcd's v3compactor: on the leader only, through Raft.
//
// periodic: retention is a duration ("72h", or a bare number of hours).
// The current revision is sampled every retention/10 (at most every 6
// minutes); every retention (at most every hour) the revision sampled one
// retention ago is compacted.
//
// revision: retention is a number of revisions; every 5 minutes the
// store is compacted to the current revision minus the retention.

// revisionCompactInterval is how often revision mode compacts (etcd: 5 min).
var revisionCompactInterval = 5 * time.Minute

// parseRetention interprets --auto-compaction-retention as etcd does: for
// periodic a duration in hours or a Go duration, for revision a count
// (returned as a Duration of that many nanoseconds, as etcd). 0 disables.
func parseRetention(mode, retention string) (time.Duration, error) {
	if retention == "" {
		return 0, nil
	}
	if h, err := strconv.Atoi(retention); err == nil && h >= 0 {
		if mode == "revision" {
			return time.Duration(h), nil
		}
		return time.Duration(h) * time.Hour, nil
	}
	if mode == "revision" {
		return 0, fmt.Errorf("--auto-compaction-retention: %q is not a number of revisions", retention)
	}
	d, err := time.ParseDuration(retention)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--auto-compaction-retention: %q is not a duration", retention)
	}
	return d, nil
}

func (s *Server) leading() bool { return s.node.Leader() == s.id }

func (s *Server) autoCompact(ctx context.Context, rev int64) bool {
	_, err := s.propose(ctx, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}})
	if err == nil || errors.Is(err, storage.ErrCompacted) {
		s.lg.Info("completed auto compaction", zap.Int64("revision", rev), zap.String("mode", s.cfg.AutoCompactionMode))
		return true
	}
	s.lg.Warn("failed auto compaction", zap.Int64("revision", rev), zap.Error(err))
	return false
}

// runCompactor runs until ctx ends; it does nothing when retention is 0.
func (s *Server) runCompactor(ctx context.Context, retention time.Duration) {
	defer s.wg.Done()
	if retention <= 0 {
		return
	}
	if s.cfg.AutoCompactionMode == "revision" {
		s.runRevisionCompactor(ctx, int64(retention))
		return
	}
	s.runPeriodicCompactor(ctx, retention)
}

func (s *Server) runRevisionCompactor(ctx context.Context, retention int64) {
	t := time.NewTicker(revisionCompactInterval)
	defer t.Stop()
	var prev int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev := s.store.Load().Rev() - retention
		if !s.leading() || rev <= 0 || rev == prev {
			continue
		}
		if s.autoCompact(ctx, rev) {
			prev = rev
		}
	}
}

func (s *Server) runPeriodicCompactor(ctx context.Context, period time.Duration) {
	interval := min(period, time.Hour) // between compactions
	retry := interval / 10             // between samples
	keep := int(period/retry) + 1      // samples spanning one period
	revs := make([]int64, 0, keep+1)
	lastSuccess, lastRev := time.Now(), int64(0)
	base := period // the first compaction waits one whole period
	t := time.NewTicker(retry)
	defer t.Stop()
	for {
		revs = append(revs, s.store.Load().Rev())
		if len(revs) > keep {
			revs = revs[1:] // revs[0] is the revision one period ago
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev := revs[0]
		if !s.leading() || time.Since(lastSuccess) < base || rev == lastRev {
			continue
		}
		base = interval
		if s.autoCompact(ctx, rev) {
			lastRev, lastSuccess = rev, time.Now()
		}
	}
}
