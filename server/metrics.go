package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/pkg/v3/featuregate"
	etcdruntime "go.etcd.io/etcd/pkg/v3/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/metastore/metastore/consensus"
	"github.com/metastore/metastore/services/watch"
	"github.com/metastore/metastore/storage"
)

// instruments are the metrics fed by events rather than read on scrape:
// etcd's names, types, help and buckets. They exist from the start of
// New (the Raft log's fsyncs begin before anything serves) and join the
// registry in newMetrics.
type instruments struct {
	grpc             *grpcprom.ServerMetrics
	walFsync         prometheus.Histogram
	walWrite         prometheus.Histogram
	walWriteBytes    atomic.Int64
	peerRTT          *prometheus.HistogramVec
	backendCommit    prometheus.Histogram
	proposalsPending atomic.Int64
	proposalsFailed  atomic.Uint64
	// clientBytesIn and clientBytesOut are the gRPC message bytes from and
	// to clients (etcd counts them in its codec).
	clientBytesIn, clientBytesOut atomic.Uint64
	// The key-space operations this member ran (etcd's etcd_mvcc_*_total):
	// applied writes on every member, reads where they were served.
	ranges, puts, deletes, txns atomic.Uint64
	// Leases granted and revoked (applied, on every member) and the TTLs
	// granted.
	leasesGranted, leasesRevoked atomic.Uint64
	leaseTTLs                    prometheus.Histogram
	slowApplies                  atomic.Uint64
	clientRequests               *prometheus.CounterVec   // by type (unary, stream) and client API version
	apply                        *prometheus.HistogramVec // by version, op, success
	applyChildren                sync.Map                 // op[/false] -> prometheus.Observer
	// unaryReqs and streamReqs: version -> its clientRequests child (no
	// per-request key to build).
	unaryReqs, streamReqs sync.Map
	rangeDur              *prometheus.HistogramVec // by success
	rangeOK               prometheus.Observer      // its success="true" child
	// ReadIndex rounds that failed, and those of them that timed out.
	readIndexFailed, readIndexSlow atomic.Uint64
	defragInflight                 atomic.Int64
	defrag, hash, hashRev          prometheus.Histogram
	// requestDur is etcd_server_request_duration_seconds: a request from
	// its proposal (or, for reads, its ReadIndex round) to its answer, by
	// type and success; requestChildren caches its children.
	requestDur      *prometheus.HistogramVec
	requestChildren sync.Map
	// Compaction as the store reports it (storage.Observer).
	indexCompactionPause, dbCompactionPause, dbCompactionTotal prometheus.Histogram
	dbCompactionKeys                                           atomic.Uint64
	dbCompactionLast                                           atomic.Int64 // unix seconds, 0 before the first
	putBytes                                                   atomic.Uint64
	openReads                                                  atomic.Int64
	backendSnapshot                                            prometheus.Histogram
	learnerPromotions                                          atomic.Uint64
	applyingSnapshot                                           atomic.Int64
	// The watch send loop's time per response kind.
	watchSendEvents, watchSendPerEvent, watchSendControl, watchSendProgress prometheus.Histogram
}

// countOps counts the key-space operations an answer shows were run, as
// etcd's store counts them: each range, put and delete, nested txns'
// included, and one txn when a request ran more than one operation.
func (in *instruments) countOps(resp proto.Message) {
	if n := in.countOp(resp); n > 1 {
		in.txns.Add(1)
	}
}

func (in *instruments) countOp(resp proto.Message) int {
	switch r := resp.(type) {
	case *pb.RangeResponse:
		in.ranges.Add(1)
		return 1
	case *pb.PutResponse:
		in.puts.Add(1)
		return 1
	case *pb.DeleteRangeResponse:
		in.deletes.Add(1)
		return 1
	case *pb.LeaseGrantResponse:
		in.leasesGranted.Add(1)
		in.leaseTTLs.Observe(float64(r.TTL))
	case *pb.LeaseRevokeResponse:
		in.leasesRevoked.Add(1)
	case *pb.TxnResponse:
		n := 0
		for _, op := range r.Responses {
			switch {
			case op.GetResponseRange() != nil:
				n += in.countOp(op.GetResponseRange())
			case op.GetResponsePut() != nil:
				n += in.countOp(op.GetResponsePut())
			case op.GetResponseDeleteRange() != nil:
				n += in.countOp(op.GetResponseDeleteRange())
			case op.GetResponseTxn() != nil:
				n += in.countOp(op.GetResponseTxn())
			}
		}
		return n
	}
	return 0
}

// HandleRPC implements stats.Handler: it counts the client message bytes.
func (in *instruments) HandleRPC(_ context.Context, st stats.RPCStats) {
	switch p := st.(type) {
	case *stats.InPayload:
		in.clientBytesIn.Add(uint64(p.Length))
	case *stats.OutPayload:
		in.clientBytesOut.Add(uint64(p.Length))
	}
}

// TagRPC, TagConn and HandleConn complete stats.Handler.
func (in *instruments) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (in *instruments) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (in *instruments) HandleConn(context.Context, stats.ConnStats) {}

// etcdDiskBuckets are etcd's buckets for disk latencies: 1 ms to 8.192 s.
var etcdDiskBuckets = prometheus.ExponentialBuckets(0.001, 2, 14)

func newInstruments(cfg Config) *instruments {
	var opts []grpcprom.ServerMetricsOption
	if cfg.Metrics == "extensive" {
		opts = append(opts, grpcprom.WithServerHandlingTimeHistogram())
	}
	in := &instruments{
		grpc: grpcprom.NewServerMetrics(opts...),
		walFsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
			Help: "The latency distributions of fsync called by WAL.", Buckets: etcdDiskBuckets,
		}),
		leaseTTLs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "lease", Name: "ttl_total",
			Help: "Bucketed histogram of lease TTLs.", Buckets: prometheus.ExponentialBuckets(1, 2, 24),
		}),
		defrag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_defrag_duration_seconds",
			Help: "The latency distribution of backend defragmentation.", Buckets: prometheus.ExponentialBuckets(.1, 2, 13),
		}),
		hash: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "mvcc", Name: "hash_duration_seconds",
			Help: "The latency distribution of storage hash operation.", Buckets: prometheus.ExponentialBuckets(.01, 2, 15),
		}),
		hashRev: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "mvcc", Name: "hash_rev_duration_seconds",
			Help: "The latency distribution of storage hash by revision operation.", Buckets: prometheus.ExponentialBuckets(.01, 2, 15),
		}),
		peerRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "network", Name: "peer_round_trip_time_seconds",
			Help: "Round-Trip-Time histogram between peers", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"To"}),
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "server", Name: "apply_duration_seconds",
			Help: "The latency distributions of v2 apply called by backend.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
		}, []string{"version", "op", "success"}),
		rangeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "server", Name: "range_duration_seconds",
			Help: "The latency distributions of txn.Range", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
		}, []string{"success"}),
		clientRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "client_requests_total",
			Help: "The total number of client requests per client version.",
		}, []string{"type", "client_api_version"}),
		walWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "wal_write_duration_seconds",
			Help: "The latency distributions of write called by WAL.", Buckets: etcdDiskBuckets,
		}),
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
			Help: "The latency distributions of commit called by backend.", Buckets: etcdDiskBuckets,
		}),
		requestDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "server", Name: "request_duration_seconds",
			Help: "Response latency distribution in seconds for each type.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"type", "success"}),
		indexCompactionPause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "index_compaction_pause_duration_milliseconds",
			Help: "Bucketed histogram of index compaction pause duration.", Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
		}),
		dbCompactionPause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "db_compaction_pause_duration_milliseconds",
			Help: "Bucketed histogram of db compaction pause duration.", Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		dbCompactionTotal: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "db_compaction_total_duration_milliseconds",
			Help: "Bucketed histogram of db compaction total duration.", Buckets: prometheus.ExponentialBuckets(100, 2, 14),
		}),
		backendSnapshot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_snapshot_duration_seconds",
			Help: "The latency distribution of backend snapshots.", Buckets: prometheus.ExponentialBuckets(.01, 2, 17),
		}),
		watchSendEvents: watchSendHistogram("watch_send_loop_watch_stream_duration_seconds",
			"The total duration in seconds of running through the send loop watch stream response all events."),
		watchSendPerEvent: watchSendHistogram("watch_send_loop_watch_stream_duration_per_event_seconds",
			"The average duration in seconds of running through the send loop watch stream response, per event."),
		watchSendControl: watchSendHistogram("watch_send_loop_control_stream_duration_seconds",
			"The total duration in seconds of running through the send loop control stream response."),
		watchSendProgress: watchSendHistogram("watch_send_loop_progress_duration_seconds",
			"The total duration in seconds of running through the progress loop control stream response."),
	}
	in.rangeOK = in.rangeDur.WithLabelValues("true")
	return in
}

// watchSendHistogram is one of etcd's watch send-loop histograms.
func watchSendHistogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "etcd_debugging", Subsystem: "server", Name: name, Help: help,
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
}

// storageObserver feeds etcd's compaction metrics from the store.
func (in *instruments) storageObserver() storage.Observer {
	return storage.Observer{
		CompactionPause: func(scheduled bool, d time.Duration) {
			ms := float64(d.Microseconds()) / 1e3
			if scheduled {
				in.indexCompactionPause.Observe(ms)
			} else {
				in.dbCompactionPause.Observe(ms)
			}
		},
		CompactionDone: func(_ int64, took time.Duration, deleted int) {
			in.dbCompactionTotal.Observe(float64(took.Microseconds()) / 1e3)
			in.dbCompactionKeys.Add(uint64(deleted))
			in.dbCompactionLast.Store(time.Now().Unix())
		},
	}
}

// watchObserver feeds etcd's watch send-loop metrics from the Watch
// service.
func (in *instruments) watchObserver() watch.Observer {
	return watch.Observer{
		Events: func(n int, d time.Duration) {
			in.watchSendEvents.Observe(d.Seconds())
			in.watchSendPerEvent.Observe(d.Seconds() / float64(n))
		},
		Control:  func(d time.Duration) { in.watchSendControl.Observe(d.Seconds()) },
		Progress: func(d time.Duration) { in.watchSendProgress.Observe(d.Seconds()) },
	}
}

// observeRequest records a request's duration by type (etcd's names:
// "Range", "ReadonlyTxn", "Put", "LeaseGrant") and success.
func (in *instruments) observeRequest(typ string, success bool, took time.Duration) {
	key := typ
	if !success {
		key += "/false"
	}
	o, ok := in.requestChildren.Load(key)
	if !ok {
		o, _ = in.requestChildren.LoadOrStore(key, in.requestDur.WithLabelValues(typ, strconv.FormatBool(success)))
	}
	o.(prometheus.Observer).Observe(took.Seconds())
}

// observeWALFsync is the consensus log's fsync observer.
func (in *instruments) observeWALFsync(d time.Duration) { in.walFsync.Observe(d.Seconds()) }

// observePeerRTT is the peer transport's round-trip observer.
func (in *instruments) observePeerRTT(peer uint64, d time.Duration) {
	in.peerRTT.WithLabelValues(fmt.Sprintf("%x", peer)).Observe(d.Seconds())
}

// observeWALWrite is the consensus log's write observer.
func (in *instruments) observeWALWrite(n int64, d time.Duration) {
	in.walWriteBytes.Add(n)
	in.walWrite.Observe(d.Seconds())
}

// register adds the instruments, and etcd's metrics read from the
// member's state on scrape, to reg.
func (s *Server) registerInstruments(reg *prometheus.Registry) {
	in := s.inst
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "disk", Name: "wal_write_bytes_total", Help: "Total number of bytes written in WAL.",
	}, func() float64 { return float64(in.walWriteBytes.Load()) }))
	reg.MustRegister(in.grpc, in.walFsync, in.walWrite, in.backendCommit, in.leaseTTLs, in.defrag, in.hash, in.hashRev)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "disk", Name: "defrag_inflight",
		Help: "Whether or not defrag is active on the member. 1 means active, 0 means not.",
	}, func() float64 { return float64(in.defragInflight.Load()) }))
	reg.MustRegister(newKnownPeers(s), newPeerLinks(s), in.peerRTT, in.apply, in.rangeDur, in.clientRequests, newEngineMetrics(s))
	reg.MustRegister(in.requestDur, in.indexCompactionPause, in.dbCompactionPause, in.dbCompactionTotal, in.backendSnapshot,
		in.watchSendEvents, in.watchSendPerEvent, in.watchSendControl, in.watchSendProgress)
	for _, c := range []struct {
		namespace, subsystem, name, help string
		v                                func() uint64
	}{
		{"etcd_debugging", "lease", "granted_total", "The total number of granted leases.", in.leasesGranted.Load},
		{"etcd_debugging", "lease", "revoked_total", "The total number of revoked leases.", in.leasesRevoked.Load},
		{"etcd_debugging", "lease", "renewed_total", "The number of renewed leases seen by the leader.", func() uint64 { return s.lessor.Stats().Renewed }},
		{"etcd_debugging", "server", "lease_expired_total", "The total number of expired leases.", func() uint64 { return s.lessor.Stats().Expired }},
		{"etcd", "server", "slow_apply_total", "The total number of slow apply requests (likely overloaded from slow disk).", in.slowApplies.Load},
		{"etcd", "server", "read_indexes_failed_total", "The total number of failed read indexes seen.", in.readIndexFailed.Load},
		{"etcd", "server", "slow_read_indexes_total", "The total number of pending read indexes not in sync with leader's or timed out read index requests.", in.readIndexSlow.Load},
		{"etcd", "server", "proposals_failed_total", "The total number of failed proposals seen.", in.proposalsFailed.Load},
		{"etcd", "server", "leader_changes_seen_total", "The number of leader changes seen.", func() uint64 { return s.node.Status().LeaderChanges }},
		{"etcd", "network", "client_grpc_received_bytes_total", "The total number of bytes received from grpc clients.", in.clientBytesIn.Load},
		{"etcd", "network", "client_grpc_sent_bytes_total", "The total number of bytes sent to grpc clients.", in.clientBytesOut.Load},
		{"etcd", "mvcc", "range_total", "Total number of ranges seen by this member.", in.ranges.Load},
		{"etcd", "mvcc", "put_total", "Total number of puts seen by this member.", in.puts.Load},
		{"etcd", "mvcc", "delete_total", "Total number of deletes seen by this member.", in.deletes.Load},
		{"etcd", "mvcc", "txn_total", "Total number of txns seen by this member.", in.txns.Load},
		{"etcd_debugging", "mvcc", "events_total", "Total number of events sent by this member.", func() uint64 { return s.watchSrv.Stats().Events }},
		{"etcd_debugging", "mvcc", "db_compaction_keys_total", "Total number of db keys compacted.", in.dbCompactionKeys.Load},
		{"etcd", "server", "learner_promote_successes", "The total number of successful learner promotions while this member is leader.", in.learnerPromotions.Load},
		{"etcd", "server", "heartbeat_send_failures_total", "The total number of leader heartbeat send failures (likely overloaded from slow disk).", func() uint64 { return s.node.Status().HeartbeatsLate }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: c.namespace, Subsystem: c.subsystem, Name: c.name, Help: c.help,
		}, func() float64 { return float64(c.v()) }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "proposals_pending",
		Help: "The current number of pending proposals to commit.",
	}, func() float64 { return float64(in.proposalsPending.Load()) }))
	watchGauge := func(name, help string, v func(watch.Stats) int64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd_debugging", Subsystem: "mvcc", Name: name, Help: help,
		}, func() float64 { return float64(v(s.watchSrv.Stats())) }))
	}
	for _, g := range []struct {
		namespace, subsystem, name, help string
		v                                func() float64
	}{
		{"etcd_debugging", "mvcc", "db_compaction_last", "The unix time of the last db compaction. Resets to 0 on start.", func() float64 { return float64(in.dbCompactionLast.Load()) }},
		{"etcd_debugging", "mvcc", "total_put_size_in_bytes", "The total size of put kv pairs seen by this member.", func() float64 { return float64(in.putBytes.Load()) }},
		{"etcd", "mvcc", "db_open_read_transactions", "The number of currently open read transactions", func() float64 { return float64(in.openReads.Load()) }},
		{"etcd", "server", "snapshot_apply_in_progress_total", "1 if the server is applying the incoming snapshot. 0 if none.", func() float64 { return float64(in.applyingSnapshot.Load()) }},
		{"etcd_debugging", "mvcc", "slow_watcher_total", "Total number of unsynced slow watchers.", func() float64 { return float64(s.store.Load().WatchStats().Slow) }},
		{"etcd_debugging", "mvcc", "pending_events_total", "Total number of pending events to be sent.", func() float64 { return float64(s.store.Load().WatchStats().PendingEvents) }},
		// Counted from the store on the first scrape (NaN until done: a
		// few seconds for tens of millions of keys), then kept by writes.
		{"etcd_debugging", "mvcc", "keys_total", "Total number of keys.", func() float64 {
			if n, ok := s.store.Load().KeyCount(); ok {
				return float64(n)
			}
			return math.NaN()
		}},
	} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: g.namespace, Subsystem: g.subsystem, Name: g.name, Help: g.help,
		}, g.v))
	}
	watchGauge("watch_stream_total", "Total number of watch streams.", func(st watch.Stats) int64 { return st.Streams })
	watchGauge("watcher_total", "Total number of watchers.", func(st watch.Stats) int64 { return st.Watchers })
	one := func(namespace, subsystem, name, help, label, value string) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem, Name: name, Help: help,
			ConstLabels: prometheus.Labels{label: value},
		}, func() float64 { return 1 }))
	}
	one("etcd", "cluster", "version", "Which version is running. 1 for 'cluster_version' label with current cluster version",
		"cluster_version", version.Cluster(s.cfg.clusterVersion()))
	one("etcd", "server", "go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.",
		"server_go_version", goruntime.Version())
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd_debugging", Subsystem: "auth", Name: "revision", Help: "The current revision of auth store.",
	}, func() float64 { return float64(s.authStore.Revision()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "os", Subsystem: "fd", Name: "used", Help: "The number of used file descriptors.",
	}, func() float64 { n, _ := etcdruntime.FDUsage(); return float64(n) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "os", Subsystem: "fd", Name: "limit", Help: "The file descriptor limit.",
	}, func() float64 { n, _ := etcdruntime.FDLimit(); return float64(n) }))
	features := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "etcd_server_feature_enabled", Help: "Whether or not a feature is enabled. 1 is enabled, 0 is not.",
	}, []string{"name", "stage"})
	if mg, ok := s.cfg.FeatureGates.(featuregate.MutableFeatureGate); ok {
		for f, spec := range mg.GetAll() {
			v := 0.0
			if mg.Enabled(f) {
				v = 1
			}
			features.With(prometheus.Labels{"name": string(f), "stage": string(spec.PreRelease)}).Set(v)
		}
	}
	reg.MustRegister(features)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "id",
		Help:        "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
		ConstLabels: prometheus.Labels{"server_id": fmt.Sprintf("%x", s.id)},
	}, func() float64 { return 1 }))
}

// propertyReader is an engine that reports RocksDB properties
// (storage/rocksdb's Backend).
type propertyReader interface{ Property(name string) string }

// engineMetrics are MetaStore's own metrics of its RocksDB engine, read
// from RocksDB's properties on scrape: the compaction backlog, memtable
// and block-cache use, and write stalls.
type engineMetrics struct {
	s     *Server
	descs []engineMetric
}

type engineMetric struct {
	property string
	desc     *prometheus.Desc
}

func newEngineMetrics(s *Server) *engineMetrics {
	m := &engineMetrics{s: s}
	for _, e := range []struct{ name, property, help string }{
		{"compaction_pending_bytes", "rocksdb.estimate-pending-compaction-bytes", "Bytes RocksDB estimates compaction must rewrite to bring every level under its target size (the compaction backlog)."},
		{"compactions_running", "rocksdb.num-running-compactions", "Compactions running now."},
		{"compaction_pending", "rocksdb.compaction-pending", "1 if at least one compaction is pending."},
		{"level0_files", "rocksdb.num-files-at-level0", "SST files in level 0; writes slow down and stop as they pile up."},
		{"memtable_bytes", "rocksdb.cur-size-all-mem-tables", "Bytes held by the active and unflushed memtables."},
		{"memtable_flush_pending", "rocksdb.mem-table-flush-pending", "1 if a memtable flush is pending."},
		{"block_cache_usage_bytes", "rocksdb.block-cache-usage", "Bytes of the block cache in use."},
		{"block_cache_capacity_bytes", "rocksdb.block-cache-capacity", "The block cache's capacity in bytes."},
		{"table_readers_bytes", "rocksdb.estimate-table-readers-mem", "Bytes held outside the block cache by open SST files' indexes and filters."},
		{"write_stopped", "rocksdb.is-write-stopped", "1 if RocksDB stopped writes (a write stall), 0 otherwise."},
		{"write_delayed_rate_bytes", "rocksdb.actual-delayed-write-rate", "The rate in bytes/s RocksDB slows writes to while it delays them, 0 when it does not."},
		{"live_sst_bytes", "rocksdb.live-sst-files-size", "Bytes of the SST files the current version uses."},
	} {
		m.descs = append(m.descs, engineMetric{e.property, prometheus.NewDesc("metastore_rocksdb_"+e.name, e.help, nil, nil)})
	}
	return m
}

func (m *engineMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d.desc
	}
}

// Collect reads each property; one the engine does not report (closed
// for a snapshot restore, or not RocksDB) has no sample.
func (m *engineMetrics) Collect(ch chan<- prometheus.Metric) {
	pr := m.s.engine.Load()
	if pr == nil {
		return
	}
	for _, d := range m.descs {
		v, err := strconv.ParseFloat((*pr).Property(d.property), 64)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, v)
	}
}

// commitTimed ends a write transaction, timing it as etcd times its
// backend commits.
func (s *Server) commitTimed(end func() (int64, error)) (int64, error) {
	t0 := time.Now()
	rev, err := end()
	s.inst.backendCommit.Observe(time.Since(t0).Seconds())
	return rev, err
}

// readIndex is the node's ReadIndex, counted as etcd counts its read
// index rounds.
func (s *Server) readIndex(ctx context.Context) (uint64, error) {
	idx, err := s.node.ReadIndex(ctx)
	if err != nil {
		s.inst.readIndexFailed.Add(1)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, consensus.ErrTimeout) {
			s.inst.readIndexSlow.Add(1)
		}
	}
	return idx, err
}

// timed observes how long f takes in h.
func timed[T any](h prometheus.Histogram, f func() (T, error)) (T, error) {
	t0 := time.Now()
	v, err := f()
	h.Observe(time.Since(t0).Seconds())
	return v, err
}

// knownPeers is etcd's etcd_network_known_peers: 1 for every member
// (this one too) and 0 for every removed one, by local and remote member
// ID, read from the member table on scrape.
type knownPeers struct {
	s    *Server
	desc *prometheus.Desc
}

func newKnownPeers(s *Server) *knownPeers {
	return &knownPeers{s: s, desc: prometheus.NewDesc("etcd_network_known_peers",
		"The current number of known peers.", []string{"Local", "Remote"}, nil)}
}

func (k *knownPeers) Describe(ch chan<- *prometheus.Desc) { ch <- k.desc }

func (k *knownPeers) Collect(ch chan<- prometheus.Metric) {
	local := fmt.Sprintf("%x", k.s.id)
	for _, m := range k.s.members.List() {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.GaugeValue, 1, local, fmt.Sprintf("%x", m.ID))
	}
	for _, id := range k.s.members.Removed() {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.GaugeValue, 0, local, fmt.Sprintf("%x", id))
	}
}

// peerLinks are etcd's per-peer link metrics read from the transport on
// scrape: active peers (by local and remote ID), messages that could not
// be sent (etcd's etcd_network_peer_sent_failures_total) and the bytes
// sent to and received from each peer.
type peerLinks struct {
	s                       *Server
	active, failed, out, in *prometheus.Desc
}

func newPeerLinks(s *Server) *peerLinks {
	return &peerLinks{s: s,
		active: prometheus.NewDesc("etcd_network_active_peers", "The current number of active peer connections.", []string{"Local", "Remote"}, nil),
		failed: prometheus.NewDesc("etcd_network_peer_sent_failures_total", "The total number of send failures from peers.", []string{"To"}, nil),
		out:    prometheus.NewDesc("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", []string{"To"}, nil),
		in:     prometheus.NewDesc("etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.", []string{"From"}, nil),
	}
}

func (p *peerLinks) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.active
	ch <- p.failed
	ch <- p.out
	ch <- p.in
}

func (p *peerLinks) Collect(ch chan<- prometheus.Metric) {
	local := fmt.Sprintf("%x", p.s.id)
	for id, st := range p.s.tr.Stats() {
		remote := fmt.Sprintf("%x", id)
		if st.Connected {
			ch <- prometheus.MustNewConstMetric(p.active, prometheus.GaugeValue, 1, local, remote)
		}
		ch <- prometheus.MustNewConstMetric(p.failed, prometheus.CounterValue, float64(st.Dropped), remote)
		ch <- prometheus.MustNewConstMetric(p.out, prometheus.CounterValue, float64(st.SentBytes), remote)
		ch <- prometheus.MustNewConstMetric(p.in, prometheus.CounterValue, float64(st.ReceivedBytes), remote)
	}
}

// warnSlowApply logs an apply that took longer than
// --warning-apply-duration as etcd logs it (values and passwords
// redacted by etcd's InternalRaftStringer) and counts it.
func (s *Server) warnSlowApply(took time.Duration, r *pb.InternalRaftRequest, err error) {
	s.inst.slowApplies.Add(1)
	s.lg.Warn("apply request took too long",
		zap.Duration("took", took),
		zap.Duration("expected-duration", s.cfg.WarningApplyDuration),
		zap.String("prefix", ""), // etcd's prefix is for read-only txns, which MetaStore does not apply
		zap.String("request", (&pb.InternalRaftStringer{Request: r}).String()),
		zap.Error(err))
}

// clientAPIVersion counts a request by its client's API version (the
// metadata clientv3 sends), as etcd; a version that is not UTF-8 is
// etcd's ErrGRPCInvalidClientAPIVersion.
func (s *Server) clientAPIVersion(ctx context.Context, typ string) error {
	ver := "unknown"
	if vs := metadata.ValueFromIncomingContext(ctx, rpctypes.MetadataClientAPIVersionKey); len(vs) > 0 {
		ver = vs[0]
	}
	if !utf8.ValidString(ver) {
		return rpctypes.ErrGRPCInvalidClientAPIVersion
	}
	children := &s.inst.unaryReqs
	if typ == "stream" {
		children = &s.inst.streamReqs
	}
	c, ok := children.Load(ver)
	if !ok {
		c = s.inst.clientRequests.WithLabelValues(typ, ver)
		children.Store(ver, c)
	}
	c.(prometheus.Counter).Inc()
	return nil
}

func (s *Server) streamClientAPIVersion(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.clientAPIVersion(ss.Context(), "stream"); err != nil {
		return err
	}
	return handler(srv, ss)
}

// unaryLogStats logs a unary request that took longer than
// --warning-unary-request-duration ("request stats", as etcd: values
// redacted, and nothing of requests other than KV ones).
func (s *Server) unaryLogStats(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.clientAPIVersion(ctx, "unary"); err != nil {
		return nil, err
	}
	t0 := time.Now()
	resp, err := handler(ctx, req)
	if took := time.Since(t0); took > s.cfg.WarningUnaryRequestDuration {
		s.logRequestStats(ctx, info.FullMethod, t0, took, req, resp)
	}
	return resp, err
}

func (s *Server) logRequestStats(ctx context.Context, method string, start time.Time, took time.Duration, req, resp any) {
	remote := "No remote client info."
	if p, ok := peer.FromContext(ctx); ok {
		remote = p.Addr.String()
	}
	reqCount, respCount := int64(-1), int64(-1)
	reqSize, respSize := -1, -1
	content := ""
	switch r := req.(type) {
	case *pb.RangeRequest:
		reqCount, reqSize, content = 0, proto.Size(r), r.String()
		if rr, ok := resp.(*pb.RangeResponse); ok && rr != nil {
			respCount, respSize = rr.GetCount(), proto.Size(rr)
		}
	case *pb.PutRequest:
		reqCount, reqSize, content = 1, proto.Size(r), pb.NewLoggablePutRequest(r).String()
		if pr, ok := resp.(*pb.PutResponse); ok && pr != nil {
			respCount, respSize = 0, proto.Size(pr)
		}
	case *pb.DeleteRangeRequest:
		reqCount, reqSize, content = 0, proto.Size(r), r.String()
		if dr, ok := resp.(*pb.DeleteRangeResponse); ok && dr != nil {
			respCount, respSize = dr.GetDeleted(), proto.Size(dr)
		}
	case *pb.TxnRequest:
		content = pb.NewLoggableTxnRequest(r).String()
		if tr, ok := resp.(*pb.TxnResponse); ok && tr != nil {
			ops := r.GetFailure()
			if tr.GetSucceeded() {
				ops = r.GetSuccess()
			}
			reqCount, reqSize = int64(len(ops)), 0
			for _, op := range ops {
				reqSize += proto.Size(op)
			}
			respCount, respSize = 0, proto.Size(tr)
		}
	}
	s.lg.Warn("request stats",
		zap.Time("start time", start),
		zap.Duration("time spent", took),
		zap.String("remote", remote),
		zap.String("response type", method),
		zap.Int64("request count", reqCount),
		zap.Int("request size", reqSize),
		zap.Int64("response count", respCount),
		zap.Int("response size", respSize),
		zap.String("request content", content))
}

// observeApply records an applied request as etcd does: by its kind (the
// InternalRaftRequest field set, in etcd's spelling: "Put", "LeaseGrant",
// "AuthUserAdd") and whether it succeeded (a compacted revision counts as
// success, as in etcd).
func (in *instruments) observeApply(r *pb.InternalRaftRequest, err error, took time.Duration) {
	success := err == nil || errors.Is(err, storage.ErrCompacted) || errors.Is(err, rpctypes.ErrGRPCCompacted)
	in.applyObserver(requestKind(r), success).Observe(float64(took.Microseconds()) / 1e6)
}

// requestKind is the InternalRaftRequest field set, in etcd's spelling
// ("Put", "LeaseGrant", "AuthUserAdd").
func requestKind(r *pb.InternalRaftRequest) string {
	op := "unknown"
	switch { // the common kinds without reflection
	case r.Put != nil:
		op = "Put"
	case r.Txn != nil:
		op = "Txn"
	case r.DeleteRange != nil:
		op = "DeleteRange"
	case r.LeaseGrant != nil:
		op = "LeaseGrant"
	case r.LeaseRevoke != nil:
		op = "LeaseRevoke"
	default:
		r.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if fd.Kind() != protoreflect.MessageKind || fd.Name() == "header" {
				return true
			}
			op = camel(string(fd.Name()))
			return false
		})
	}
	return op
}

// observeRange records a Range's duration (etcd's
// etcd_server_range_duration_seconds).
func (in *instruments) observeRange(success bool, took time.Duration) {
	o := in.rangeOK
	if !success {
		o = in.rangeDur.WithLabelValues("false")
	}
	o.Observe(took.Seconds())
}

// applyObserver returns the histogram child of op and success, cached:
// the apply loop asks for it on every entry.
func (in *instruments) applyObserver(op string, success bool) prometheus.Observer {
	key := op
	if !success {
		key += "/false"
	}
	if o, ok := in.applyChildren.Load(key); ok {
		return o.(prometheus.Observer)
	}
	o := in.apply.WithLabelValues("v3", op, strconv.FormatBool(success))
	in.applyChildren.Store(key, o)
	return o
}

// camel turns a proto field name (lease_grant) into etcd's op name
// (LeaseGrant).
func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(s, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
