package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/metastore/metastore/consensus"
	"github.com/metastore/metastore/consensus/transport"
	clustersvc "github.com/metastore/metastore/services/cluster"
	"github.com/metastore/metastore/services/kv"
	"github.com/metastore/metastore/services/lease"
	"github.com/metastore/metastore/services/maintenance"
	"github.com/metastore/metastore/services/rpcerr"
	"github.com/metastore/metastore/services/watch"
	"github.com/metastore/metastore/storage"
	"github.com/metastore/metastore/storage/backend"
	"github.com/metastore/metastore/storage/memory"
	"github.com/metastore/metastore/storage/rocksdb"
)

// Server is one running MetaStore member.
type Server struct {
	cfg       Config
	lg        *zap.Logger
	id        uint64
	clusterID uint64

	store atomic.Pointer[storage.Store]
	// wrapEngine, if set (tests), wraps every engine the server opens.
	wrapEngine func(backend.Backend) backend.Backend
	node       *consensus.Node
	tr         *transport.Transport

	clientSrv   *grpc.Server
	peerSrv     *grpc.Server
	clientLis   []net.Listener
	peerLis     []net.Listener
	metricsLis  []net.Listener
	httpServers []*http.Server
	metrics     metrics
	health      *health.Server
	kvApplier   kv.Applier
	lessor      *lease.Lessor
	lessorTerm  atomic.Uint64 // the term the lessor runs the clocks for; 0: none
	alarms      *maintenance.Alarms
	sizes       sizeCache
	nextID      atomic.Uint64 // request IDs of proposals
	peerConnMu  sync.Mutex
	peerConns   map[uint64]*grpc.ClientConn
	cancel      context.CancelFunc // stops background loops
	auth        Authorizer         // nil: allow everything
	peerAddrs   func(id uint64, peerURLs []string) []string
	// leaderStreams are the open streams that require a leader.
	leaderStreams leaderStreams
	members       *clustersvc.Members // the replicated member table
	restoreMu     sync.Mutex          // serializes Restore with snapshots
	stopOnce      sync.Once
	wg            sync.WaitGroup
	readyc        chan struct{}
	readyClose    sync.Once
}

// New validates cfg, opens the data directory and the listeners, and
// starts the member. It returns once the member runs; Ready tells when it
// can serve (a leader exists).
func New(cfg Config, lg *zap.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if lg == nil {
		lg = zap.NewNop()
	}
	cluster, _ := parseCluster(cfg.InitialCluster)
	names := make([]string, 0, len(cluster))
	for name := range cluster {
		names = append(names, name)
	}
	sort.Strings(names)
	var peers []consensus.Peer
	var ids []uint64
	var members []*pb.Member
	for _, name := range names {
		id := memberID(cluster[name], cfg.InitialClusterToken)
		ids = append(ids, id)
		peers = append(peers, consensus.Peer{ID: id, Context: consensus.MemberContext{Name: name, PeerURLs: cluster[name]}.Encode()})
		members = append(members, &pb.Member{ID: id, Name: name, PeerURLs: cluster[name]})
	}
	s := &Server{
		cfg: cfg, lg: lg, id: memberID(cluster[cfg.Name], cfg.InitialClusterToken), clusterID: clusterID(ids),
		readyc: make(chan struct{}), members: clustersvc.NewMembers(members), peerConns: map[uint64]*grpc.ClientConn{},
	}
	electionTicks := int(cfg.ElectionTimeoutMs / cfg.HeartbeatIntervalMs)
	s.lessor = lease.New(lease.Config{
		MinTTL:             lease.MinTTL(electionTicks, cfg.tickInterval()),
		CheckpointInterval: cfg.LeaseCheckpointInterval,
		Logger:             lg,
	})
	s.kvApplier = kv.Applier{Leases: s.lessor}
	s.alarms = maintenance.NewAlarms()
	for _, o := range opts {
		o(s)
	}
	s.lg = lg.With(zap.String("local-member-id", fmt.Sprintf("%x", s.id)))
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	st, err := s.openStore()
	if err != nil {
		return nil, err
	}
	s.store.Store(st)
	if err := s.recoverServices(st); err != nil {
		st.Close()
		return nil, err
	}

	if err := s.listen(); err != nil {
		st.Close()
		return nil, err
	}
	tcfg := transport.Config{ID: s.id, ClusterID: s.clusterID, Logger: s.lg}
	if s.peerAddrs != nil {
		tcfg.PeerAddrs = func(id uint64, ctx []byte) []string {
			mc, err := consensus.ParseMemberContext(ctx)
			if err != nil {
				return nil
			}
			return s.peerAddrs(id, mc.PeerURLs)
		}
	}
	s.tr = transport.New(tcfg)
	for _, p := range peers {
		if p.ID != s.id {
			s.tr.AddPeer(p.ID, p.Context)
		}
	}
	s.peerSrv = grpc.NewServer()
	s.tr.Register(s.peerSrv)

	node, err := consensus.Start(consensus.Config{
		ID: s.id, Dir: filepath.Join(cfg.DataDir, "member"), Peers: peers,
		TickInterval: cfg.tickInterval(), ElectionTicks: electionTicks, HeartbeatTicks: 1,
		SnapshotCount: cfg.SnapshotCount, SnapshotCatchUpEntries: cfg.SnapshotCatchUpEntries, Logger: s.lg,
	}, &stateMachine{s: s}, s.tr)
	if err != nil {
		s.closeListeners()
		st.Close()
		return nil, err
	}
	s.node = node
	s.tr.SetHandler(node)

	s.leaderStreams.m = map[*leaderStream]struct{}{}
	s.clientSrv = grpc.NewServer(append(clientServerOptions(cfg),
		grpc.ChainUnaryInterceptor(s.unaryRequireLeader),
		grpc.ChainStreamInterceptor(s.streamRequireLeader))...)
	var kvAuth kv.Authorizer
	var leaseAuth lease.Authorizer
	var watchAuth watch.Authorizer
	if s.auth != nil {
		kvAuth, leaseAuth, watchAuth = s.auth, s.auth, s.auth
	}
	pb.RegisterKVServer(s.clientSrv, kv.NewServer(&kvBackend{s: s}, s, int(cfg.MaxTxnOps), s.lg).
		WithAuthorizer(kvAuth, leaseHost{s}).WithMaxChunkBytes(int(cfg.MaxRequestBytes)))
	leaseSrv := lease.NewServer(s.lessor, leaseHost{s}, leaseAuth, requestTimeout(cfg), s.lg)
	pb.RegisterLeaseServer(s.clientSrv, leaseSrv)
	leaseSrv.RegisterForwarding(s.peerSrv)
	pb.RegisterMaintenanceServer(s.clientSrv, maintenance.NewServer(s, s))
	pb.RegisterWatchServer(s.clientSrv, watch.NewServer(func() watch.Store { return s.store.Load() }, s,
		watch.Config{
			MaxResponseBytes: int(cfg.MaxRequestBytes), ProgressNotifyInterval: cfg.WatchProgressNotifyInterval,
			Authorizer: watchAuth, Logger: s.lg,
		}))
	pb.RegisterClusterServer(s.clientSrv, clustersvc.NewServer(s, s))
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.clientSrv, s.health)

	for _, l := range s.peerLis {
		s.serve(s.peerSrv, l)
	}
	s.newMetrics()
	for _, l := range s.clientLis {
		s.serveClient(l)
	}
	for _, l := range s.metricsLis {
		s.serveMetrics(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	retention, _ := parseRetention(cfg.AutoCompactionMode, cfg.AutoCompactionRetention) // validated
	s.wg.Add(6)
	go s.monitorLeader(ctx)
	go s.publish(ctx)
	go s.runCompactor(ctx, retention)
	go s.waitLeader()
	go s.watchLeadership(ctx)
	go func() {
		defer s.wg.Done()
		s.lessor.Run(ctx, leaseHost{s})
	}()
	return s, nil
}

// clientServerOptions are etcd's gRPC server settings: requests up to
// --max-request-bytes plus 512 KiB of framing, responses up to 2 GiB,
// --max-concurrent-streams, and the keepalive policy.
func clientServerOptions(cfg Config) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(cfg.MaxRequestBytes) + 512*1024),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentStreams)),
	}
	if cfg.GRPCKeepAliveMinTime > 0 {
		opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.GRPCKeepAliveMinTime}))
	}
	if cfg.GRPCKeepAliveInterval > 0 && cfg.GRPCKeepAliveTimeout > 0 {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.GRPCKeepAliveInterval, Timeout: cfg.GRPCKeepAliveTimeout}))
	}
	return opts
}

func (s *Server) serve(srv *grpc.Server, l net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(l)
	}()
}

func (s *Server) openEngine(dir string) (backend.Backend, error) {
	if s.cfg.StorageEngine == "memory" {
		return memory.New(), nil
	}
	// The Raft log is the durability point: RocksDB needs no WAL of its
	// own. A crash loses the unflushed tail of the store, which the node
	// replays from the Raft log (it never compacts past DurableIndex, a
	// memtable flush).
	rc := rocksdb.DefaultConfig()
	rc.DisableWAL = true
	eng, err := rocksdb.Open(dir, rc)
	if err != nil || s.wrapEngine == nil {
		return eng, err
	}
	return s.wrapEngine(eng), nil
}

func (s *Server) openStore() (*storage.Store, error) {
	eng, err := s.openEngine(filepath.Join(s.cfg.DataDir, "member", "kv"))
	if err != nil {
		return nil, err
	}
	st, err := storage.Open(eng, storage.Config{
		Logger:        s.lg,
		NoSync:        true, // the Raft WAL is the durability point
		MaxKeyBytes:   int(s.cfg.MaxRequestBytes),
		MaxValueBytes: int(s.cfg.MaxRequestBytes),
	})
	if err != nil {
		eng.Close()
		return nil, err
	}
	return st, nil
}

func hostPorts(urls string) []string {
	var out []string
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		u = strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
		out = append(out, u)
	}
	return out
}

func (s *Server) listen() error {
	for _, hp := range hostPorts(s.cfg.ListenClientURLs) {
		l, err := net.Listen("tcp", hp)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("--listen-client-urls: %w", err)
		}
		s.clientLis = append(s.clientLis, l)
	}
	if s.cfg.ListenMetricsURLs != "" {
		for _, hp := range hostPorts(s.cfg.ListenMetricsURLs) {
			l, err := net.Listen("tcp", hp)
			if err != nil {
				s.closeListeners()
				return fmt.Errorf("--listen-metrics-urls: %w", err)
			}
			s.metricsLis = append(s.metricsLis, l)
		}
	}
	for _, hp := range hostPorts(s.cfg.ListenPeerURLs) {
		l, err := net.Listen("tcp", hp)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("--listen-peer-urls: %w", err)
		}
		s.peerLis = append(s.peerLis, l)
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, ls := range [][]net.Listener{s.clientLis, s.peerLis, s.metricsLis} {
		for _, l := range ls {
			l.Close()
		}
	}
}

// ClientAddrs returns the addresses the client listeners are bound to.
func (s *Server) ClientAddrs() []string {
	var out []string
	for _, l := range s.clientLis {
		out = append(out, l.Addr().String())
	}
	return out
}

// waitLeader marks the server ready (and healthy) once a leader exists.
func (s *Server) waitLeader() {
	defer s.wg.Done()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.node.Done():
			return
		case <-t.C:
			if s.node.Leader() != 0 {
				s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
				s.lg.Info("ready to serve client requests")
				for _, l := range s.clientLis {
					s.lg.Warn("serving client traffic insecurely; this is strongly discouraged!", zap.String("address", l.Addr().String()))
				}
				s.readyClose.Do(func() { close(s.readyc) })
				return
			}
		}
	}
}

// Ready is closed once the member can serve requests.
func (s *Server) Ready() <-chan struct{} { return s.readyc }

// ID returns the member ID.
func (s *Server) ID() uint64 { return s.id }

// FillHeader implements kv.HeaderFiller.
func (s *Server) FillHeader(h *pb.ResponseHeader) {
	h.ClusterId, h.MemberId, h.RaftTerm = s.clusterID, s.id, s.node.Term()
}

// Done is closed when the member's consensus node has stopped: after Stop,
// or on its own when it cannot go on (Err says why).
func (s *Server) Done() <-chan struct{} { return s.node.Done() }

// Err returns why the member stopped on its own — it could not apply or
// persist a committed entry (a *consensus.ApplyError names the index) —
// or nil. Such a member must be restarted; it replays from its durable
// state.
func (s *Server) Err() error { return s.node.Err() }

// Stop stops serving and closes everything, in reverse order of start.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.clientSrv.Stop()
		for _, hs := range s.httpServers {
			hs.Close()
		}
		s.closeListeners() // ends the cmux loops
		s.cancel()
		s.node.Stop()
		s.peerSrv.Stop()
		s.tr.Close()
		s.wg.Wait()
		for _, cc := range s.peerConns {
			cc.Close()
		}
		if err := s.store.Load().Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
			s.lg.Warn("failed to close store", zap.Error(err))
		}
	})
}

// requestTimeout is etcd's ReqTimeout: 5 s plus two election timeouts.
func requestTimeout(cfg Config) time.Duration {
	return 5*time.Second + 2*time.Duration(cfg.ElectionTimeoutMs)*time.Millisecond
}

// requestCtx bounds a request that has no deadline of its own.
func requestCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, 7*time.Second)
}

// Status implements maintenance.StatusSource.
func (s *Server) Status(ctx context.Context) (*pb.StatusResponse, error) {
	st := s.node.Status()
	sizes, err := s.store.Load().Sizes()
	if err != nil {
		return nil, err
	}
	return &pb.StatusResponse{
		Header:           &pb.ResponseHeader{Revision: s.store.Load().Rev()},
		Version:          s.cfg.EmulatedEtcdVersion,
		DbSize:           sizes.Physical,
		DbSizeInUse:      sizes.Logical,
		Leader:           st.Lead,
		RaftIndex:        st.Commit,
		RaftTerm:         st.Term,
		RaftAppliedIndex: st.Applied,
		StorageVersion:   s.cfg.clusterVersion(),
		IsLearner:        st.IsLearner,
		DbSizeQuota:      max(s.quotaBytes(), 0),
		Errors:           s.statusErrors(st.Lead),
	}, nil
}

func (s *Server) statusErrors(lead uint64) []string {
	var errs []string
	if lead == 0 {
		errs = append(errs, rpctypes.ErrGRPCNoLeader.Error())
	}
	for _, a := range s.alarms.Get(pb.AlarmType_NONE) {
		errs = append(errs, a.String())
	}
	return errs
}

// Members implements cluster.MemberSource: the static initial cluster.
func (s *Server) Members(ctx context.Context, linearizable bool) ([]*pb.Member, error) {
	if linearizable {
		ctx, cancel := requestCtx(ctx)
		defer cancel()
		if _, err := s.node.ReadIndex(ctx); err != nil {
			return nil, rpcerr.ToGRPC(s.lg, err)
		}
	}
	return s.members.List(), nil
}

// publish puts this member's name and client URLs into the replicated
// member table (etcd's ClusterMemberAttrSet), retrying until it lands.
func (s *Server) publish(ctx context.Context) {
	defer s.wg.Done()
	urls := strings.Split(s.cfg.AdvertiseClientURLs, ",")
	req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID: s.id, MemberAttributes: &membershippb.Attributes{Name: s.cfg.Name, ClientUrls: urls},
	}}
	select {
	case <-s.readyc:
	case <-ctx.Done():
		return
	}
	for !s.members.Published(s.id, urls) {
		pctx, cancel := context.WithTimeout(ctx, requestTimeout(s.cfg))
		_, err := s.propose(pctx, req)
		cancel()
		if err == nil {
			s.lg.Info("published local member to cluster through raft", zap.Strings("client-urls", urls))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// HashKV implements maintenance.Hasher.
func (s *Server) HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error) {
	st := s.store.Load()
	h, err := st.HashKV(rev)
	if err != nil {
		return nil, rpcerr.ToGRPC(s.lg, err)
	}
	return &pb.HashKVResponse{
		Header:          &pb.ResponseHeader{Revision: st.Rev()},
		Hash:            h.Hash,
		CompactRevision: h.CompactRev,
		HashRevision:    h.HashRev,
	}, nil
}
