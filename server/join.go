package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metastore/metastore/consensus"
	clustersvc "github.com/metastore/metastore/services/cluster"
)

// identityFile holds the member's and its cluster's IDs (etcd keeps them
// in its WAL's metadata): written once, before the log, so a member that
// joined a cluster — whose IDs its flags cannot give — restarts as itself.
const identityFile = "identity"

type identity struct {
	MemberID  string `json:"member_id"`
	ClusterID string `json:"cluster_id"`
}

// resolveIdentity settles who this member is before anything is opened:
// what the data dir recorded; else, for a new data dir joining a running
// cluster (--initial-cluster-state existing), what the cluster's members
// say (etcd's ValidateClusterAndAssignIDs); else what the flags give. It
// returns the bootstrap peers of a new cluster (none otherwise).
func (s *Server) resolveIdentity(flagPeers []consensus.Peer) ([]consensus.Peer, error) {
	path := filepath.Join(s.cfg.DataDir, "member", identityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var id identity
		if err := json.Unmarshal(b, &id); err != nil {
			return nil, fmt.Errorf("--data-dir %q: member/%s: %w", s.cfg.DataDir, identityFile, err)
		}
		mid, err1 := strconv.ParseUint(id.MemberID, 16, 64)
		cid, err2 := strconv.ParseUint(id.ClusterID, 16, 64)
		if err1 != nil || err2 != nil || mid == 0 {
			return nil, fmt.Errorf("--data-dir %q: member/%s is damaged", s.cfg.DataDir, identityFile)
		}
		s.setIdentity(mid, cid)
		return nil, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("--data-dir %q: %w", s.cfg.DataDir, err)
	}
	peers := flagPeers
	if hasWAL(s.cfg.DataDir) {
		// A data dir from before identity files: the flags' IDs, and the
		// bootstrap members were applied back then.
		peers = nil
		s.members.ConfirmSeeds()
	} else if s.cfg.InitialClusterState == "existing" {
		if err := s.joinExisting(); err != nil {
			return nil, err
		}
		peers = nil
		s.join = true
	} else if s.bootstrapped() {
		return nil, fmt.Errorf("member %s has already been bootstrapped", toHex(s.id))
	}
	return peers, writeFileSync(path, fmt.Appendf(nil, `{"member_id":"%x","cluster_id":"%x"}`+"\n", s.id, s.clusterID))
}

func (s *Server) setIdentity(member, cluster uint64) {
	s.id, s.clusterID = member, cluster
	s.lg = s.baseLg.With(zap.String("local-member-id", toHex(member)))
}

// joinExisting reads the running cluster's ID and members from the peers
// named by --initial-cluster, checks that the flags describe that cluster
// (etcd's checks and messages), and takes this member's ID from it.
func (s *Server) joinExisting() error {
	local, _ := parseCluster(s.cfg.InitialCluster) // validated
	var urls []string
	for name, us := range local {
		if name != s.cfg.Name {
			urls = append(urls, us...)
		}
	}
	existing, err := s.fetchCluster(urls, 10*time.Second, true)
	if err != nil {
		return fmt.Errorf("cannot fetch cluster info from peer urls: %w", err)
	}
	if len(existing.Members) != len(local) {
		return fmt.Errorf("error validating peerURLs %s: member count is unequal", clusterString(existing))
	}
	var self uint64
	for _, m := range existing.Members {
		name := ""
		for n, us := range local {
			if sameURLs(us, m.PeerURLs) {
				name = n
			}
		}
		if name == "" {
			return fmt.Errorf("error validating peerURLs %s: PeerURLs: no match found for existing member (%s, %v), last resolver error (<nil>)",
				clusterString(existing), toHex(m.ID), m.PeerURLs)
		}
		if name == s.cfg.Name {
			self = m.ID
		}
	}
	if self == 0 {
		return fmt.Errorf("error validating peerURLs %s: no member with the peer URLs of %q", clusterString(existing), s.cfg.Name)
	}
	s.setIdentity(self, existing.Header.GetClusterId())
	s.members = clustersvc.NewMembers(existing.Members, s.cfg.MaxLearners)
	s.lg.Info("joining an existing cluster", zap.String("cluster-id", toHex(s.clusterID)), zap.Int("members", len(existing.Members)))
	return nil
}

// bootstrapped reports whether a running cluster already counts this new
// member, started (etcd's isMemberBootstrapped): bootstrapping it again
// on an empty data dir would bring back a member that forgot what it
// acknowledged.
func (s *Server) bootstrapped() bool {
	local, _ := parseCluster(s.cfg.InitialCluster) // validated
	var urls []string
	for name, us := range local {
		if name != s.cfg.Name {
			urls = append(urls, us...)
		}
	}
	if len(urls) == 0 {
		return false
	}
	rc, err := s.fetchCluster(urls, time.Second, false)
	if err != nil {
		return false
	}
	for _, m := range rc.Members {
		if m.ID == s.id && len(m.ClientURLs) > 0 {
			return true
		}
	}
	return false
}

// fetchCluster asks each peer URL in turn for the cluster's members
// (etcd's GetClusterFromRemotePeers), until one answers or timeout passes;
// without retry each URL is asked once.
func (s *Server) fetchCluster(urls []string, timeout time.Duration, retry bool) (*pb.MemberListResponse, error) {
	creds, err := s.peerDialCreds()
	if err != nil {
		return nil, err
	}
	opt := grpc.WithTransportCredentials(insecure.NewCredentials())
	if creds != nil {
		opt = grpc.WithTransportCredentials(creds)
	}
	deadline := time.Now().Add(timeout)
	var last error = errors.New("no peer URL to ask")
	for first := true; first || (retry && time.Now().Before(deadline)); first = false {
		for _, u := range urls {
			target := u
			if pu, err := url.Parse(u); err == nil && pu.Host != "" {
				target = pu.Host
			}
			if s.peerAddrs != nil {
				if a := s.peerAddrs(0, []string{u}); len(a) > 0 {
					target = a[0]
				}
			}
			cc, err := grpc.NewClient(target, opt)
			if err != nil {
				last = err
				continue
			}
			d := time.Now().Add(time.Second)
			if deadline.Before(d) {
				d = deadline
			}
			ctx, cancel := context.WithDeadline(context.Background(), d)
			resp, err := clustersvc.FetchMembers(ctx, cc)
			cancel()
			cc.Close()
			if err == nil {
				return resp, nil
			}
			last = err
			if retry {
				s.lg.Warn("failed to get cluster members from peer", zap.String("remote-peer-url", u), zap.Error(err))
			}
		}
		if retry {
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil, fmt.Errorf("could not retrieve cluster information from the given URLs: %w", last)
}

func sameURLs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// clusterString prints a cluster as etcd's RaftCluster.String does.
func clusterString(r *pb.MemberListResponse) string {
	var ms []string
	for _, m := range r.Members {
		ms = append(ms, fmt.Sprintf("&{ID:%s RaftAttributes:{PeerURLs:%v IsLearner:%v} Attributes:{Name:%s ClientURLs:%v}}",
			toHex(m.ID), m.PeerURLs, m.IsLearner, m.Name, m.ClientURLs))
	}
	return fmt.Sprintf("{ClusterID:%s Members:[%s] RemovedMemberIDs:[]}", toHex(r.Header.GetClusterId()), strings.Join(ms, " "))
}

// writeFileSync writes a small file durably (temporary file, fsync,
// rename, directory fsync).
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	return err
}

func toHex(id uint64) string { return strconv.FormatUint(id, 16) }
