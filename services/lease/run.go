package lease

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
)

// Proposer puts the primary's decisions through Raft.
type Proposer interface {
	// ProposeRevoke puts a revoke through Raft and returns once this
	// member applied it. The response's header revision must be the
	// store's revision right after the revoke (the revision of its key
	// deletions, if any), not one read later.
	ProposeRevoke(ctx context.Context, id int64) (*pb.LeaseRevokeResponse, error)
	ProposeCheckpoint(ctx context.Context, cps []*pb.LeaseCheckpoint) error
}

const (
	// runInterval is how often the primary looks for expired leases and
	// due checkpoints (etcd: 500 ms).
	runInterval = 500 * time.Millisecond
	// revokesPerRound bounds revokes proposed per round, so a pile of
	// expired leases does not flood Raft: 5000 per second (etcd: 1000;
	// one revoke is one Raft entry, and a member applies ~10k a second).
	revokesPerRound = 2500
	// maxCheckpointBatch is how many checkpoints go in one entry (etcd: 1000).
	maxCheckpointBatch = 1000
	// revokeConcurrency bounds revokes in flight.
	revokeConcurrency = 64
)

// Run drives the primary's clocks until ctx ends: it proposes a revoke for
// every expired lease and checkpoints remaining TTLs. On a member that is
// not primary each round does nothing, so Run can run on every member for
// its whole life.
func (le *Lessor) Run(ctx context.Context, p Proposer) {
	t := time.NewTicker(runInterval)
	defer t.Stop()
	sem := make(chan struct{}, revokeConcurrency)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range le.expired(revokesPerRound) {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func(id int64) {
				defer func() { <-sem }()
				cctx, cancel := context.WithTimeout(ctx, le.cfg.RetryInterval)
				defer cancel()
				if _, err := p.ProposeRevoke(cctx, id); err != nil {
					if ctx.Err() == nil {
						le.lg.Debug("failed to revoke expired lease", zap.Int64("lease-id", id), zap.Error(err))
					}
					return
				}
				le.expiredN.Add(1)
			}(id)
		}
		for {
			cps := le.dueCheckpoints(maxCheckpointBatch)
			if len(cps) == 0 {
				break
			}
			cctx, cancel := context.WithTimeout(ctx, le.cfg.RetryInterval)
			err := p.ProposeCheckpoint(cctx, cps)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					le.lg.Warn("failed to checkpoint leases", zap.Int("leases", len(cps)), zap.Error(err))
				}
				break
			}
		}
	}
}
