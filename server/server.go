package server

import (
	"context"
	"errors"
	"fmt"
	"go.etcd.io/etcd/server/v3/features"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	etcdtransport "go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/metastore/metastore/services/auth"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/metastore/metastore/consensus"
	"github.com/metastore/metastore/consensus/transport"
	clustersvc "github.com/metastore/metastore/services/cluster"
	"github.com/metastore/metastore/services/kv"
	"github.com/metastore/metastore/services/lease"
	"github.com/metastore/metastore/services/maintenance"
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
	baseLg    *zap.Logger // lg without the member ID
	id        uint64
	clusterID uint64
	// join: this new member joins a running cluster (no bootstrap).
	join bool
	// removed is set once the cluster removed this member.
	removed atomic.Bool

	store atomic.Pointer[storage.Store]
	// engine is the store's engine when it reports RocksDB properties
	// (the metastore_rocksdb_* metrics).
	engine atomic.Pointer[propertyReader]
	// wrapEngine, if set (tests), wraps every engine the server opens.
	wrapEngine func(backend.Backend) backend.Backend
	node       *consensus.Node[*applyResult]
	tr         *transport.Transport

	clientSrv  *grpc.Server
	peerSrv    *grpc.Server
	clientLis  []net.Listener
	peerLis    []net.Listener
	metricsLis []net.Listener
	// clientHTTPLis are --listen-client-http-urls (HTTP only).
	clientHTTPLis []net.Listener
	gateway       http.Handler      // /v3/ JSON gateway; nil when disabled
	gwLis         *bufconn.Listener // the gateway's in-memory gRPC connection
	gwConn        *grpc.ClientConn
	selfLis       *bufconn.Listener // Lock and Election's in-memory gRPC connection
	selfClient    *clientv3.Client
	clientStop    chan struct{} // closed when Stop starts
	httpMu        sync.Mutex    // guards httpServers
	httpServers   []*http.Server
	metrics       metrics
	health        *health.Server
	kvApplier     kv.Applier
	lessor        *lease.Lessor
	lessorTerm    atomic.Uint64 // the term the lessor runs the clocks for; 0: none
	alarms        *maintenance.Alarms
	inst          *instruments // metrics fed by events (metrics.go)
	watchSrv      *watch.Server
	downgrades    *maintenance.Downgrades // the replicated downgrade state
	sizes         sizeCache
	peerConnMu    sync.Mutex
	peerConns     map[uint64]*grpc.ClientConn
	cancel        context.CancelFunc // stops background loops
	auth          Authorizer         // the check point (default: authStore's rules)
	authStore     *auth.Store
	tokens        *auth.Tokens
	clientTLS     *etcdtransport.TLSInfo // nil: no TLS client URL
	peerTLS       *etcdtransport.TLSInfo // nil: peers in plain text
	tlsLis        map[net.Listener]bool
	peerAddrs     func(id uint64, peerURLs []string) []string
	// leaderStreams are the open streams that require a leader.
	leaderStreams leaderStreams
	members       *clustersvc.Members // the replicated member table
	// compactChecked is the newest compaction hash the leader's check
	// found equal on every member (monitorCorruption's only).
	compactChecked int64
	restoreMu      sync.Mutex // serializes Restore with snapshots
	stopOnce       sync.Once
	wg             sync.WaitGroup
	readyc         chan struct{}
	readyClose     sync.Once
}

// New validates cfg, opens the data directory and the listeners, and
// starts the member. It returns once the member runs; Ready tells when it
// can serve (a leader exists).
func New(cfg Config, lg *zap.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, peers := newServer(cfg.withDefaults(), lg, opts)
	dir, err := s.adoptEtcdDataDir(s.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.cfg.DataDir = dir
	if err := s.tlsInfos(); err != nil {
		return nil, err
	}
	// The listeners first, as etcd: a port in use is refused before the
	// data dir is made or touched.
	if err := s.listen(); err != nil {
		return nil, err
	}
	tokens, err := auth.NewTokens(s.authStore, cfg.AuthToken, cfg.tokenTTL(), s.lg)
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("--auth-token: %w", err)
	}
	s.tokens = tokens
	st, peers, err := s.openState(peers)
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	if err := s.startNode(peers); err != nil {
		s.closeListeners()
		st.Close()
		return nil, err
	}
	s.registerServices()
	if err := s.startServing(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// newServer builds the member from its configuration: identity, the
// bootstrap member table and the services' state machines. Nothing is
// opened yet.
func newServer(cfg Config, lg *zap.Logger, opts []Option) (*Server, []consensus.Peer) {
	if lg == nil {
		lg = zap.NewNop()
	}
	cluster, _ := parseCluster(cfg.InitialCluster) // validated
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
		readyc: make(chan struct{}), clientStop: make(chan struct{}), members: clustersvc.NewMembers(members, cfg.MaxLearners), peerConns: map[uint64]*grpc.ClientConn{},
	}
	s.lessor = lease.New(lease.Config{
		MinTTL:             lease.MinTTL(cfg.electionTicks(), cfg.tickInterval()),
		CheckpointInterval: cfg.LeaseCheckpointInterval,
		Logger:             lg,
	})
	s.kvApplier = kv.Applier{Leases: s.lessor}
	s.alarms = maintenance.NewAlarms()
	s.inst = newInstruments(cfg)
	s.downgrades = maintenance.NewDowngrades()
	s.authStore = auth.NewStore(lg)
	s.leaderStreams.m = map[*leaderStream]struct{}{}
	for _, o := range opts {
		o(s)
	}
	s.baseLg = lg
	s.lg = lg.With(zap.String("local-member-id", fmt.Sprintf("%x", s.id)))
	return s, peers
}

// openState checks and opens the data directory: the member's identity,
// the store, and the services' state kept beside the key space. It
// returns the bootstrap peers (none unless a new cluster starts).
func (s *Server) openState(flagPeers []consensus.Peer) (*storage.Store, []consensus.Peer, error) {
	if err := checkDataDir(s.cfg.DataDir); err != nil {
		return nil, nil, err
	}
	if err := prepareDataDir(s.cfg.DataDir); err != nil {
		return nil, nil, err
	}
	s.removeStaleSnapshots()
	peers, err := s.resolveIdentity(flagPeers)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.openStore()
	if err != nil {
		return nil, nil, err
	}
	s.store.Store(st)
	if err := s.recoverServices(st); err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, peers, nil
}

// startNode starts the peer transport and the consensus node over the
// state machine.
func (s *Server) startNode(peers []consensus.Peer) error {
	creds, err := s.peerDialCreds()
	if err != nil {
		return err
	}
	tcfg := transport.Config{ID: s.id, ClusterID: s.clusterID, Logger: s.lg, Creds: creds, RTTObserver: s.inst.observePeerRTT}
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
	// The members as the table knows them (bootstrap, joined or
	// recovered); Raft's replay of later changes adds and removes more.
	for _, m := range s.members.List() {
		if m.ID != s.id {
			s.tr.AddPeer(m.ID, consensus.MemberContext{Name: m.Name, PeerURLs: m.PeerURLs}.Encode())
		}
	}
	s.tr.AddRemoved(s.members.Removed()...)
	s.peerSrv = grpc.NewServer(append(transport.ServerOptions(), grpc.Creds(tlsConnCreds{}))...)
	s.tr.Register(s.peerSrv)
	clustersvc.RegisterPeer(s.peerSrv, s)
	node, err := consensus.Start(consensus.Config{
		ID: s.id, Dir: filepath.Join(s.cfg.DataDir, "member"), Peers: peers, Join: s.join, ForceNewCluster: s.cfg.ForceNewCluster,
		TickInterval: s.cfg.tickInterval(), ElectionTicks: s.cfg.electionTicks(), HeartbeatTicks: 1,
		SnapshotCount: s.cfg.SnapshotCount, SnapshotCatchUpEntries: s.cfg.SnapshotCatchUpEntries, Logger: s.lg,
		WALSyncObserver: s.inst.observeWALFsync, WALWriteObserver: s.inst.observeWALWrite,
	}, &stateMachine{s: s}, s.tr)
	if err != nil {
		return err
	}
	s.node = node
	s.tr.SetHandler(node)
	return nil
}

// registerServices registers etcd's gRPC services on the client server
// (and lease forwarding on the peer server).
func (s *Server) registerServices() {
	cfg := s.cfg
	s.clientSrv = grpc.NewServer(append(clientServerOptions(cfg), grpc.Creds(tlsConnCreds{}), grpc.StatsHandler(s.inst),
		grpc.ChainUnaryInterceptor(s.unaryLogStats, s.inst.grpc.UnaryServerInterceptor(), s.unaryLearner, s.unaryRequireLeader, s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamClientAPIVersion, s.inst.grpc.StreamServerInterceptor(), s.streamLearner, s.streamRequireLeader, s.streamAuth))...)
	if s.auth == nil {
		s.auth = storeAuthorizer{s}
	}
	var kvAuth kv.Authorizer = s.auth
	var leaseAuth lease.Authorizer = s.auth
	var watchAuth watch.Authorizer = s.auth
	pb.RegisterKVServer(s.clientSrv, kv.NewServer(&kvBackend{s: s}, s, int(cfg.MaxTxnOps), s.lg).
		WithAuthorizer(kvAuth, localLeaseKeys{s}).WithMaxChunkBytes(int(cfg.MaxRequestBytes)))
	leaseSrv := lease.NewServer(s.lessor, leaseHost{s}, leaseAuth, requestTimeout(cfg), s.lg)
	pb.RegisterLeaseServer(s.clientSrv, leaseSrv)
	leaseSrv.RegisterForwarding(s.peerSrv)
	pb.RegisterMaintenanceServer(s.clientSrv, maintenance.NewServer(s, s))
	s.watchSrv = watch.NewServer(func() watch.Store { return s.store.Load() }, s,
		watch.Config{
			MaxResponseBytes: int(cfg.MaxRequestBytes), ProgressNotifyInterval: cfg.WatchProgressNotifyInterval,
			Authorizer: watchAuth, Logger: s.lg, Observer: s.inst.watchObserver(),
		})
	pb.RegisterWatchServer(s.clientSrv, s.watchSrv)
	pb.RegisterClusterServer(s.clientSrv, clustersvc.NewServer(s, s))
	pb.RegisterAuthServer(s.clientSrv, auth.NewServer(s.authStore, s.tokens, authBackend{s}, int(cfg.BcryptCost), s.lg))
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.clientSrv, s.health)
	// As etcd: zero series for the services above; Lock and Election,
	// registered after, get theirs when first called.
	s.inst.grpc.InitializeMetrics(s.clientSrv)
	if c, err := s.newSelfClient(); err != nil {
		s.lg.Warn("the Lock and Election services are not served", zap.Error(err))
	} else {
		s.selfClient = c
		s.registerLockElection(c)
	}
}

// startServing serves every listener and starts the member's background
// loops; Stop stops them. With InitialCorruptCheck on, clients are served
// only once the member's data matches its peers' (etcd's order); a
// mismatch is the error returned.
func (s *Server) startServing() error {
	gwh, err := s.newGateway()
	if err != nil {
		s.lg.Warn("the /v3/ gateway is not served", zap.Error(err))
	}
	s.gateway = gwh
	if s.selfLis != nil {
		s.serve(s.clientSrv, selfListener{s.selfLis})
	}
	for _, l := range s.peerLis {
		s.serve(s.peerSrv, l)
	}
	var checkErr error
	if s.cfg.featureEnabled(features.InitialCorruptCheck) {
		checkErr = s.initialCorruptCheck()
	}
	s.newMetrics()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if checkErr == nil {
		// As etcd: client connections are accepted once the member is
		// ready (it knows a leader and has caught up), so a client that reconnects to a
		// restarting member does not get "no leader" for its watches.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			select {
			case <-s.readyc:
			case <-s.clientStop:
				return
			}
			s.httpMu.Lock()
			defer s.httpMu.Unlock()
			select {
			case <-s.clientStop:
				return
			default:
			}
			for _, l := range s.clientLis {
				s.serveClient(l)
			}
			for _, l := range s.clientHTTPLis {
				s.serveMetrics(l)
			}
		}()
	}
	for _, l := range s.metricsLis {
		s.serveMetrics(l)
	}
	retention, _ := parseRetention(s.cfg.AutoCompactionMode, s.cfg.AutoCompactionRetention) // validated
	loops := []func(context.Context){
		s.monitorLeader, s.publish, func(ctx context.Context) { s.runCompactor(ctx, retention) },
		func(context.Context) { s.waitLeader() }, s.watchLeadership,
		func(ctx context.Context) { defer s.wg.Done(); s.lessor.Run(ctx, leaseHost{s}) },
		s.autoPromote, s.watchRemoval, s.monitorCorruption,
	}
	s.wg.Add(len(loops)) // each loop calls s.wg.Done when it returns
	for _, loop := range loops {
		go loop(ctx)
	}
	return checkErr
}

func (s *Server) openEngine(dir string) (backend.Backend, error) {
	if s.cfg.StorageEngine == "memory" {
		return memory.New(), nil
	}
	// The Raft log is the durability point: RocksDB needs no WAL of its
	// own. A crash loses the unflushed tail of the store, which the node
	// replays from the Raft log (it never compacts past DurableIndex, a
	// memtable flush). A shutdown is no different, so it does not flush
	// either: it writes no new file, and a member stopped under load (or
	// whose data dir is removed while it stops, as etcd's e2e tests do)
	// exits at once.
	rc := rocksdb.DefaultConfig()
	rc.DisableWAL = true
	rc.NoFlushOnClose = true
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
	if pr, ok := eng.(propertyReader); ok {
		s.engine.Store(&pr)
	}
	st, err := storage.Open(eng, storage.Config{
		Logger:        s.lg,
		NoSync:        true, // the Raft WAL is the durability point
		MaxKeyBytes:   int(s.cfg.MaxRequestBytes),
		MaxValueBytes: int(s.cfg.MaxRequestBytes),
		Observer:      s.inst.storageObserver(),
	})
	if err != nil {
		eng.Close()
		return nil, err
	}
	return st, nil
}

// waitLeader marks the server ready (and healthy) once a leader exists
// and this member has applied everything committed before it asked (a
// ReadIndex round), as etcd serves once its publish entry — after every
// entry it had to replay — is applied: a restarted member never answers
// from a state older than one it answered from before.
func (s *Server) waitLeader() {
	defer s.wg.Done()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.node.Done():
			return
		case <-t.C:
			if s.node.Leader() != 0 && s.caughtUp() {
				s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
				s.lg.Info("ready to serve client requests")
				for _, l := range s.clientLis {
					if s.tlsLis[l] {
						s.lg.Info("serving client traffic securely", zap.String("address", l.Addr().String()))
					} else {
						s.lg.Warn("serving client traffic insecurely; this is strongly discouraged!", zap.String("address", l.Addr().String()))
					}
				}
				s.readyClose.Do(func() { close(s.readyc) })
				return
			}
		}
	}
}

// caughtUp reports whether a ReadIndex round succeeded within a second:
// the member has applied every entry committed before it.
func (s *Server) caughtUp() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := s.node.ReadIndex(ctx)
	return err == nil
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
// state. A member the cluster removed stops too, with no error (Removed).
func (s *Server) Err() error { return s.node.Err() }

// Removed reports whether the cluster removed this member ("the member
// has been permanently removed from the cluster"); it then stops.
func (s *Server) Removed() bool { return s.removed.Load() }

// Stop stops serving and closes everything, in reverse order of start.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.handOverLeadership()
		close(s.clientStop) // before anything is closed: no listener starts serving now
		s.clientSrv.Stop()
		s.httpMu.Lock()
		for _, hs := range s.httpServers {
			hs.Close()
		}
		s.httpMu.Unlock()
		s.closeListeners() // ends the cmux loops
		if s.gwConn != nil {
			s.gwConn.Close()
		}
		if s.selfClient != nil {
			s.selfClient.Close()
		}
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
