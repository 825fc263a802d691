package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/features"
	"go.uber.org/zap"

	clustersvc "github.com/metastore/metastore/services/cluster"
	"github.com/metastore/metastore/storage"
)

// Corruption detection as etcd v3.7's (server/etcdserver/corrupt.go): a
// starting member compares its HashKV with its peers' before it serves
// clients (InitialCorruptCheck), the leader compares the hashes of the
// whole history (--corrupt-check-time) and those taken at compactions
// (CompactHashCheck, --compact-hash-check-time) and raises the CORRUPT
// alarm for a member that differs. With CORRUPT raised the cluster refuses
// writes with etcd's "etcdserver: corrupt cluster". HashKV is etcd's, so
// the checks mean the same as etcd's. Peers are asked over the peer port
// (metastore.cluster.Peer/HashKV, etcd's /members/hashkv).

// peerHash is one peer's answer to a hash request.
type peerHash struct {
	id   uint64
	resp *pb.HashKVResponse
	err  error
}

// PeerHashKV implements cluster.PeerBackend.
func (s *Server) PeerHashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error) {
	resp, err := s.HashKV(ctx, rev)
	if err != nil {
		return nil, err
	}
	s.FillHeader(resp.Header)
	return resp, nil
}

// peerHashes asks every other member for its HashKV at rev.
func (s *Server) peerHashes(rev int64) []peerHash {
	var out []peerHash
	for _, m := range s.members.List() {
		if m.ID == s.id || len(m.PeerURLs) == 0 {
			continue
		}
		ph := peerHash{id: m.ID}
		cc, err := (leaseHost{s}).PeerConn(m.ID)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout(s.cfg))
			ph.resp, err = clustersvc.FetchHashKV(ctx, cc, rev)
			cancel()
		}
		if err == nil && ph.resp.Header.GetClusterId() != s.clusterID {
			ph.resp, err = nil, rpctypes.ErrClusterIDMismatch
		}
		if err != nil {
			ph.err = err
			s.lg.Warn("failed hash kv request",
				zap.Int64("requested-revision", rev), zap.String("remote-peer-id", idString(m.ID)), zap.Error(err))
		}
		out = append(out, ph)
	}
	return out
}

func idString(id uint64) string { return fmt.Sprintf("%x", id) }

func (s *Server) localHash(rev int64) (storage.KVHash, error) {
	return s.store.Load().HashKV(rev)
}

// initialCorruptCheck is etcd's InitialCheck: the member's hash at its
// revision must equal every peer's at that revision, unless their
// compaction revisions differ. Peers that are behind, compacted past it or
// down are skipped with a warning.
func (s *Server) initialCorruptCheck() error {
	s.lg.Info("starting initial corruption check", zap.String("local-member-id", idString(s.id)),
		zap.Duration("timeout", requestTimeout(s.cfg)))
	h, err := s.localHash(0)
	if err != nil {
		return fmt.Errorf("%s failed to fetch hash (%w)", idString(s.id), err)
	}
	mismatch, compared, skipped := 0, 0, 0
	for _, p := range s.peerHashes(h.HashRev) {
		if p.resp != nil && p.resp.CompactRevision == h.CompactRev {
			compared++
		} else {
			skipped++
		}
		fields := []zap.Field{
			zap.String("local-member-id", idString(s.id)), zap.Int64("local-member-revision", h.HashRev),
			zap.Int64("local-member-compact-revision", h.CompactRev), zap.Uint32("local-member-hash", h.Hash),
			zap.String("remote-peer-id", idString(p.id)),
		}
		switch {
		case p.resp != nil && p.resp.Hash != h.Hash && p.resp.CompactRevision == h.CompactRev:
			s.lg.Warn("found different hash values from remote peer", append(fields,
				zap.Int64("remote-peer-revision", p.resp.Header.Revision), zap.Uint32("remote-peer-hash", p.resp.Hash))...)
			mismatch++
		case p.resp != nil && p.resp.Hash != h.Hash:
			s.lg.Warn("found different compact revision values from remote peer", append(fields,
				zap.Int64("remote-peer-compact-revision", p.resp.CompactRevision))...)
		case errors.Is(p.err, rpctypes.ErrGRPCFutureRev):
			s.lg.Warn("cannot fetch hash from slow remote peer", append(fields, zap.Error(p.err))...)
		case errors.Is(p.err, rpctypes.ErrGRPCCompacted):
			s.lg.Warn("cannot fetch hash from remote peer; local member is behind", append(fields, zap.Error(p.err))...)
		case errors.Is(p.err, rpctypes.ErrClusterIDMismatch):
			s.lg.Warn("cluster ID mismatch", append(fields, zap.Error(p.err))...)
		}
	}
	if mismatch > 0 {
		return fmt.Errorf("%s found data inconsistency with peers", idString(s.id))
	}
	if compared == 0 && skipped > 0 {
		// Nothing was compared: not a pass, though it does not stop the
		// member (etcd starts too).
		s.lg.Warn("initial corruption check compared no peer's hash", zap.String("local-member-id", idString(s.id)),
			zap.Int("number-of-peers-skipped", skipped))
		return nil
	}
	s.lg.Info("initial corruption checking passed; no corruption", zap.String("local-member-id", idString(s.id)),
		zap.Int("number-of-peers-compared", compared), zap.Int("number-of-peers-skipped", skipped))
	return nil
}

// periodicCorruptCheck is etcd's PeriodicCheck, run by the leader: its
// hash must not change at the same revision across a linearizable read,
// and followers must not be ahead of it, or at its compaction revision
// with a different hash.
func (s *Server) periodicCorruptCheck(ctx context.Context) error {
	h, err := s.localHash(0)
	if err != nil {
		return err
	}
	peers := s.peerHashes(h.HashRev)
	rctx, cancel := context.WithTimeout(ctx, requestTimeout(s.cfg))
	_, err = s.readIndex(rctx)
	cancel()
	if err != nil {
		return err
	}
	h2, err := s.localHash(0)
	if err != nil {
		return err
	}
	rev2 := s.store.Load().Rev()
	alarmed := false
	alarm := func(id uint64) {
		if !alarmed {
			alarmed = true
			s.raiseCorrupt(ctx, id)
		}
	}
	if h2.Hash != h.Hash && h2.HashRev == h.HashRev && h.CompactRev == h2.CompactRev {
		s.lg.Warn("found hash mismatch", zap.Int64("revision-1", h.HashRev), zap.Uint32("hash-1", h.Hash),
			zap.Int64("revision-2", h2.HashRev), zap.Uint32("hash-2", h2.Hash))
		alarm(s.id)
	}
	checked := 0
	for _, p := range peers {
		if p.resp == nil {
			continue
		}
		checked++
		switch {
		case p.resp.Header.Revision > rev2:
			s.lg.Warn("revision from follower must be less than or equal to leader's",
				zap.Int64("leader-revision", rev2), zap.Int64("follower-revision", p.resp.Header.Revision),
				zap.String("follower-peer-id", idString(p.id)))
			alarm(p.id)
		case p.resp.CompactRevision > h2.CompactRev:
			s.lg.Warn("compact revision from follower must be less than or equal to leader's",
				zap.Int64("leader-compact-revision", h2.CompactRev), zap.Int64("follower-compact-revision", p.resp.CompactRevision),
				zap.String("follower-peer-id", idString(p.id)))
			alarm(p.id)
		case p.resp.CompactRevision == h.CompactRev && p.resp.Hash != h.Hash:
			s.lg.Warn("same compact revision then hashes must match",
				zap.Int64("leader-compact-revision", h2.CompactRev), zap.Uint32("leader-hash", h.Hash),
				zap.Int64("follower-compact-revision", p.resp.CompactRevision), zap.Uint32("follower-hash", p.resp.Hash),
				zap.String("follower-peer-id", idString(p.id)))
			alarm(p.id)
		}
	}
	s.lg.Info("finished peer corruption check", zap.Int("number-of-peers-checked", checked))
	return nil
}

// compactHashCheck is etcd's CompactHashCheck, run by the leader: for the
// newest compaction hash not checked yet that every peer can answer at the
// same compaction revision, members whose hash differs from a quorum's
// get the CORRUPT alarm (all of them, as member 0, without a quorum).
func (s *Server) compactHashCheck(ctx context.Context) {
	for _, h := range s.store.Load().CompactionHashes() {
		if h.HashRev <= s.compactChecked {
			return
		}
		peers := s.peerHashes(h.HashRev)
		if len(peers) == 0 {
			continue
		}
		groups := map[uint32][]uint64{h.Hash: {s.id}}
		checked := 0
		for _, p := range peers {
			if p.resp == nil || p.resp.CompactRevision != h.CompactRev {
				s.lg.Warn("Skipped peer's hash", zap.String("peer-id", idString(p.id)), zap.Int64("revision", h.HashRev))
				continue
			}
			checked++
			groups[p.resp.Hash] = append(groups[p.resp.Hash], p.id)
		}
		if len(groups) == 1 {
			if checked == len(peers) {
				s.lg.Info("successfully checked hash on whole cluster", zap.Int("number-of-peers-checked", checked),
					zap.Int64("revision", h.HashRev), zap.Int64("compactRevision", h.CompactRev))
				s.compactChecked = h.HashRev
				return
			}
			continue // not every peer answered: try an older hash
		}
		quorum := (len(peers)+1)/2 + 1
		quorumHash, found := uint32(0), false
		for hash, ids := range groups {
			if len(ids) >= quorum {
				quorumHash, found = hash, true
			}
		}
		if !found {
			s.lg.Error("Detected compaction hash mismatch but cannot identify the corrupted members, so intentionally set the memberID as 0",
				zap.Int64("leader-revision", h.HashRev), zap.Uint32("leader-hash", h.Hash))
			s.raiseCorrupt(ctx, 0)
		}
		for hash, ids := range groups {
			if found && hash == quorumHash {
				continue
			}
			s.lg.Error("Detected compaction hash mismatch", zap.Int64("leader-revision", h.HashRev),
				zap.Uint32("leader-hash", h.Hash), zap.Uint32("peer-hash", hash), zap.Bool("quorum-exist", found))
			if found {
				for _, id := range ids {
					s.raiseCorrupt(ctx, id)
				}
			}
		}
		return
	}
}

// raiseCorrupt proposes the CORRUPT alarm for member id (0: the cluster).
func (s *Server) raiseCorrupt(ctx context.Context, id uint64) {
	req := &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_CORRUPT}
	ctx, cancel := s.requestCtx(ctx)
	defer cancel()
	if _, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: req}); err != nil {
		s.lg.Warn("failed to raise the CORRUPT alarm", zap.String("member-id", idString(id)), zap.Error(err))
	}
}

// monitorCorruption runs the leader's periodic checks.
func (s *Server) monitorCorruption(ctx context.Context) {
	defer s.wg.Done()
	periodic, compact := s.cfg.CorruptCheckTime, time.Duration(0)
	if s.cfg.featureEnabled(features.CompactHashCheck) {
		compact = s.cfg.CompactHashCheckTime
	}
	if periodic <= 0 && compact <= 0 {
		return
	}
	tick := func(d time.Duration) <-chan time.Time {
		if d <= 0 {
			return nil
		}
		return time.NewTicker(d).C
	}
	pc, cc := tick(periodic), tick(compact)
	for {
		select {
		case <-ctx.Done():
			return
		case <-pc:
			if s.leading() {
				if err := s.periodicCorruptCheck(ctx); err != nil && ctx.Err() == nil {
					s.lg.Warn("failed to check hash KV", zap.Error(err))
				}
			}
		case <-cc:
			if s.leading() {
				s.compactHashCheck(ctx)
			}
		}
	}
}

// corruptRefused reports whether r is refused while CORRUPT is raised
// (etcd's applierV3Corrupt): every write of the key space and leases.
func (s *Server) corruptRefused(r *pb.InternalRaftRequest) bool {
	if !s.alarms.Active(pb.AlarmType_CORRUPT) {
		return false
	}
	return r.Put != nil || r.DeleteRange != nil || r.Txn != nil || r.Compaction != nil ||
		r.LeaseGrant != nil || r.LeaseRevoke != nil
}
