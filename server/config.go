package server

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"go.etcd.io/etcd/pkg/v3/featuregate"
	"go.etcd.io/etcd/server/v3/features"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Config is the server's configuration. Field names follow etcd's flags;
// AddFlags binds each field to its etcd flag name.
type Config struct {
	Name                string
	DataDir             string
	ListenClientURLs    string
	AdvertiseClientURLs string
	ListenPeerURLs      string
	// ListenMetricsURLs are extra HTTP listeners for /metrics and /health
	// (the client URLs serve them too).
	ListenMetricsURLs string
	// ListenClientHTTPURLs are HTTP-only client listeners (the HTTP
	// endpoints and the gateway; no gRPC). When set, the
	// client URLs serve gRPC only, as etcd 3.7.
	ListenClientHTTPURLs string
	// EnableGRPCGateway serves etcd's /v3/ JSON gateway (default on).
	EnableGRPCGateway        bool
	InitialAdvertisePeerURLs string
	InitialCluster           string
	InitialClusterState      string
	InitialClusterToken      string
	HeartbeatIntervalMs      uint
	ElectionTimeoutMs        uint
	SnapshotCount            uint64
	SnapshotCatchUpEntries   uint64
	MaxRequestBytes          uint
	MaxTxnOps                uint
	MaxConcurrentStreams     uint
	GRPCKeepAliveMinTime     time.Duration
	GRPCKeepAliveInterval    time.Duration
	GRPCKeepAliveTimeout     time.Duration
	QuotaBackendBytes        int64
	LogLevel                 string
	EnablePprof              bool
	Logger                   string // only "zap", as etcd 3.7
	LogOutputs               string // comma-separated: default, stderr, stdout, file paths
	LogFormat                string // json or console
	// Metrics is etcd's --metrics: "extensive" adds the gRPC handling
	// time histograms; anything else is "basic".
	Metrics string
	// WatchProgressNotifyInterval is how often watchers that asked for
	// progress notifications get one.
	WatchProgressNotifyInterval time.Duration
	// WarningApplyDuration: an apply that takes longer is logged ("apply
	// request took too long") and counted in etcd_server_slow_apply_total.
	WarningApplyDuration time.Duration
	// WarningUnaryRequestDuration: a unary request that takes longer is
	// logged ("request stats"), values redacted, as etcd does.
	WarningUnaryRequestDuration time.Duration
	AutoCompactionMode          string
	// AutoCompactionRetention: see --auto-compaction-retention; "0" disables.
	AutoCompactionRetention string
	StorageEngine           string
	// EmulatedEtcdVersion is the etcd version reported to clients
	// (Status.version, /version, metrics); MetaStore flag.
	EmulatedEtcdVersion string
	// LeaseCheckpointInterval is how often the leader checkpoints the
	// remaining TTL of leases (MetaStore flag; etcd's is internal).
	LeaseCheckpointInterval time.Duration
	// AuthToken is --auth-token: "simple" or "jwt,pub-key=…,priv-key=…,
	// sign-method=…,ttl=…".
	AuthToken string
	// AuthTokenTTL is --auth-token-ttl in seconds (simple tokens).
	AuthTokenTTL uint
	// BcryptCost is --bcrypt-cost (4–31; etcd uses the default outside).
	BcryptCost uint

	// Membership: etcd's --strict-reconfig-check (refuse a change that
	// would leave no started quorum), --max-learners and
	// --force-new-cluster (restart a member alone, keeping its data).
	StrictReconfigCheck bool
	MaxLearners         int
	ForceNewCluster     bool
	// FeatureGates is etcd's --feature-gates, parsed by etcd's own gate
	// set (unknown gates are refused with etcd's message). MetaStore acts
	// on InitialCorruptCheck and CompactHashCheck; the others change
	// nothing (Warnings says so). nil: etcd's defaults.
	FeatureGates featuregate.FeatureGate
	// CorruptCheckTime is --corrupt-check-time: how often the leader
	// compares its HashKV with the followers' (0: never).
	CorruptCheckTime time.Duration
	// CompactHashCheckTime is --compact-hash-check-time: how often the
	// leader compares the hashes taken at compactions (CompactHashCheck).
	CompactHashCheckTime time.Duration
	// LearnerAutoPromote promotes a learner as soon as it has caught up
	// (MetaStore's --experimental-learner-auto-promote; etcd issue 15107).
	LearnerAutoPromote bool

	// Client TLS: etcd's --cert-file, --key-file, --client-cert-file,
	// --client-key-file, --trusted-ca-file, --client-cert-auth,
	// --client-crl-file, --client-cert-allowed-hostname, --auto-tls.
	CertFile, KeyFile, ClientCertFile, ClientKeyFile string
	TrustedCAFile, ClientCRLFile                     string
	ClientCertAuth, AutoTLS                          bool
	ClientCertAllowedHostname                        string
	// Peer TLS: etcd's --peer-* TLS flags; the allowed CNs and hostnames
	// are comma-separated.
	PeerCertFile, PeerKeyFile, PeerClientCertFile, PeerClientKeyFile string
	PeerTrustedCAFile, PeerCRLFile                                   string
	PeerClientCertAuth, PeerAutoTLS, PeerSkipClientSANVerification   bool
	PeerCertAllowedCN, PeerCertAllowedHostname                       string
	// SelfSignedCertValidity is --self-signed-cert-validity in years.
	SelfSignedCertValidity uint
	// CipherSuites, TLSMinVersion, TLSMaxVersion: etcd's flags (names as
	// Go's crypto/tls and TLS1.2/TLS1.3).
	CipherSuites, TLSMinVersion, TLSMaxVersion string

	// etcdOnly holds the values of etcd's flags MetaStore does not
	// implement (flags.go).
	etcdOnly map[string]*otherValue
}

var semver = regexp.MustCompile(`^3\.[0-9]+\.[0-9]+$`)

// clusterVersion is the X.Y.0 of the emulated version, as etcd reports
// its cluster and storage versions.
func (c Config) clusterVersion() string {
	parts := strings.SplitN(c.EmulatedEtcdVersion, ".", 3)
	if len(parts) < 2 {
		return EtcdClusterVersion
	}
	return parts[0] + "." + parts[1] + ".0"
}

// electionTicks is the election timeout in heartbeat ticks.
func (c Config) electionTimeout() time.Duration {
	return time.Duration(c.ElectionTimeoutMs) * time.Millisecond
}

func (c Config) electionTicks() int { return int(c.ElectionTimeoutMs / c.HeartbeatIntervalMs) }

// hasWAL reports whether dataDir holds a member's Raft log.
func hasWAL(dataDir string) bool {
	m, _ := filepath.Glob(filepath.Join(dataDir, "member", "wal", "*.wal"))
	return len(m) > 0
}

// DefaultConfig returns etcd's defaults.
func DefaultConfig() Config {
	return Config{
		Name:                        "default",
		ListenClientURLs:            "http://localhost:2379",
		AdvertiseClientURLs:         "http://localhost:2379",
		ListenPeerURLs:              "http://localhost:2380",
		InitialAdvertisePeerURLs:    "http://localhost:2380",
		InitialClusterState:         "new",
		InitialClusterToken:         "etcd-cluster",
		HeartbeatIntervalMs:         100,
		ElectionTimeoutMs:           1000,
		SnapshotCount:               10000,
		SnapshotCatchUpEntries:      5000,
		MaxRequestBytes:             3 << 19, // 1.5 MiB
		MaxTxnOps:                   128,
		MaxConcurrentStreams:        math.MaxUint32,
		GRPCKeepAliveMinTime:        5 * time.Second,
		GRPCKeepAliveInterval:       2 * time.Hour,
		GRPCKeepAliveTimeout:        20 * time.Second,
		LogLevel:                    "info",
		Logger:                      "zap",
		LogOutputs:                  "default",
		LogFormat:                   "json",
		Metrics:                     "basic",
		WarningApplyDuration:        100 * time.Millisecond,
		WarningUnaryRequestDuration: 300 * time.Millisecond,
		WatchProgressNotifyInterval: 10 * time.Minute,
		AutoCompactionMode:          "periodic",
		AutoCompactionRetention:     "0",
		StorageEngine:               "rocksdb",
		EmulatedEtcdVersion:         EtcdVersion,
		LeaseCheckpointInterval:     5 * time.Minute,
		AuthToken:                   "simple",
		AuthTokenTTL:                300,
		BcryptCost:                  10,
		StrictReconfigCheck:         true,
		MaxLearners:                 1,
		FeatureGates:                features.NewDefaultServerFeatureGate("metastore", nil),
		CompactHashCheckTime:        time.Minute,
		SelfSignedCertValidity:      1,
		EnableGRPCGateway:           true,
		TLSMinVersion:               "TLS1.2",
	}
}

// AddFlags binds the config to fs with etcd's flag names and the config's
// current values as defaults.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Name, "name", c.Name, "Human-readable name for this member.")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "Path to the data directory (default ${name}.etcd).")
	fs.StringVar(&c.ListenClientURLs, "listen-client-urls", c.ListenClientURLs, "List of URLs to listen on for client traffic.")
	fs.StringVar(&c.AdvertiseClientURLs, "advertise-client-urls", c.AdvertiseClientURLs, "List of this member's client URLs to advertise to the public.")
	fs.StringVar(&c.ListenMetricsURLs, "listen-metrics-urls", c.ListenMetricsURLs, "List of URLs to listen on for the metrics and health endpoints.")
	fs.StringVar(&c.ListenClientHTTPURLs, "listen-client-http-urls", c.ListenClientHTTPURLs, "List of URLs to listen on for http only client traffic. Enabling this flag removes http services from --listen-client-urls.")
	fs.StringVar(&c.ListenPeerURLs, "listen-peer-urls", c.ListenPeerURLs, "List of URLs to listen on for peer traffic.")
	fs.StringVar(&c.InitialAdvertisePeerURLs, "initial-advertise-peer-urls", c.InitialAdvertisePeerURLs, "List of this member's peer URLs to advertise to the rest of the cluster.")
	fs.StringVar(&c.InitialCluster, "initial-cluster", c.InitialCluster, "Initial cluster configuration for bootstrapping (default ${name}=${initial-advertise-peer-urls}).")
	fs.StringVar(&c.InitialClusterState, "initial-cluster-state", c.InitialClusterState, "Initial cluster state ('new' or 'existing').")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", c.InitialClusterToken, "Initial cluster token for the etcd cluster during bootstrap.")
	fs.UintVar(&c.HeartbeatIntervalMs, "heartbeat-interval", c.HeartbeatIntervalMs, "Time (in milliseconds) of a heartbeat interval.")
	fs.UintVar(&c.ElectionTimeoutMs, "election-timeout", c.ElectionTimeoutMs, "Time (in milliseconds) for an election to timeout.")
	fs.Uint64Var(&c.SnapshotCount, "snapshot-count", c.SnapshotCount, "Number of committed transactions to trigger a snapshot to disk.")
	fs.Uint64Var(&c.SnapshotCatchUpEntries, "snapshot-catchup-entries", c.SnapshotCatchUpEntries, "Number of entries for a slow follower to catch-up after compacting the raft storage entries.")
	fs.UintVar(&c.MaxRequestBytes, "max-request-bytes", c.MaxRequestBytes, "Maximum client request size in bytes the server will accept.")
	fs.UintVar(&c.MaxConcurrentStreams, "max-concurrent-streams", c.MaxConcurrentStreams, "Maximum concurrent streams that each client can open at a time.")
	fs.DurationVar(&c.GRPCKeepAliveMinTime, "grpc-keepalive-min-time", c.GRPCKeepAliveMinTime, "Minimum interval duration that a client should wait before pinging server.")
	fs.DurationVar(&c.GRPCKeepAliveInterval, "grpc-keepalive-interval", c.GRPCKeepAliveInterval, "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).")
	fs.DurationVar(&c.GRPCKeepAliveTimeout, "grpc-keepalive-timeout", c.GRPCKeepAliveTimeout, "Additional duration of wait before closing a non-responsive connection (0 to disable).")
	fs.UintVar(&c.MaxTxnOps, "max-txn-ops", c.MaxTxnOps, "Maximum number of operations permitted in a transaction.")
	fs.StringVar(&c.AuthToken, "auth-token", c.AuthToken, "Specify auth token specific options.")
	fs.UintVar(&c.AuthTokenTTL, "auth-token-ttl", c.AuthTokenTTL, "The lifetime in seconds of the auth token.")
	fs.UintVar(&c.BcryptCost, "bcrypt-cost", c.BcryptCost, "Specify bcrypt algorithm cost factor for auth password hashing.")
	fs.BoolVar(&c.StrictReconfigCheck, "strict-reconfig-check", c.StrictReconfigCheck, "Reject reconfiguration requests that would cause quorum loss.")
	fs.IntVar(&c.MaxLearners, "max-learners", c.MaxLearners, "Sets the maximum number of learners that can be available in the cluster membership.")
	if mg, ok := c.FeatureGates.(featuregate.MutableFeatureGate); ok {
		mg.AddFlag(fs, "feature-gates")
	}
	fs.DurationVar(&c.CorruptCheckTime, "corrupt-check-time", c.CorruptCheckTime, "Duration of time between cluster corruption check passes.")
	fs.DurationVar(&c.WarningApplyDuration, "warning-apply-duration", c.WarningApplyDuration, "Time duration after which a warning is generated if watch progress takes more time.")
	fs.DurationVar(&c.WarningUnaryRequestDuration, "warning-unary-request-duration", c.WarningUnaryRequestDuration, "Time duration after which a warning is generated if a unary request takes more time.")
	fs.DurationVar(&c.CompactHashCheckTime, "compact-hash-check-time", c.CompactHashCheckTime, "Duration of time between leader checks followers compaction hashes.")
	fs.BoolVar(&c.ForceNewCluster, "force-new-cluster", c.ForceNewCluster, "Force to create a new one member cluster.")
	fs.BoolVar(&c.LearnerAutoPromote, "experimental-learner-auto-promote", c.LearnerAutoPromote, "Promote a learner to a voting member as soon as it has caught up with the leader (MetaStore).")
	c.addTLSFlags(fs)
	fs.BoolVar(&c.EnableGRPCGateway, "enable-grpc-gateway", c.EnableGRPCGateway, "Enable GRPC gateway.")
	fs.Int64Var(&c.QuotaBackendBytes, "quota-backend-bytes", c.QuotaBackendBytes, "Sets the maximum size (in bytes) that the etcd backend database may consume. Exceeding this triggers an alarm and puts etcd in read-only mode. Set to 0 to use the default 2GiB limit.")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "Configures log level. Only supports debug, info, warn, error, panic, or fatal.")
	fs.BoolVar(&c.EnablePprof, "enable-pprof", c.EnablePprof, "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"")
	fs.StringVar(&c.Logger, "logger", c.Logger, "Currently only supports 'zap' for structured logging.")
	fs.StringVar(&c.LogOutputs, "log-outputs", c.LogOutputs, "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets.")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "Configures log format. Only supports json, console.")
	fs.StringVar(&c.Metrics, "metrics", c.Metrics, "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics")
	fs.DurationVar(&c.WatchProgressNotifyInterval, "watch-progress-notify-interval", c.WatchProgressNotifyInterval, "Duration of periodic watch progress notifications.")
	fs.StringVar(&c.AutoCompactionMode, "auto-compaction-mode", c.AutoCompactionMode, "interpret 'auto-compaction-retention' one of: periodic|revision.")
	fs.StringVar(&c.AutoCompactionRetention, "auto-compaction-retention", c.AutoCompactionRetention, "Auto compaction retention for mvcc key value store. 0 means disable auto compaction.")
	fs.StringVar(&c.EmulatedEtcdVersion, "emulated-etcd-version", c.EmulatedEtcdVersion, "MetaStore: the etcd version reported to clients (Status, /version, metrics), for clients that gate features on it.")
	fs.StringVar(&c.StorageEngine, "storage-engine", c.StorageEngine, "MetaStore: storage engine, rocksdb or memory.")
	fs.DurationVar(&c.LeaseCheckpointInterval, "lease-checkpoint-interval", c.LeaseCheckpointInterval, "MetaStore: how often the leader persists the remaining TTL of leases, so a leader change does not renew them.")
	c.addEtcdOnlyFlags(fs)
}

// ApplyEnv sets flags not given on the command line from ETCD_* variables
// (ETCD_DATA_DIR for --data-dir), as etcd does.
func ApplyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		key := "ETCD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok && !set[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for %s: %w", v, key, err))
			}
		}
	})
	return errors.Join(errs...)
}

// withDefaults fills the derived defaults etcd computes from other flags.
func (c Config) withDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
	}
	if c.InitialCluster == "" {
		c.InitialCluster = c.Name + "=" + c.InitialAdvertisePeerURLs
	}
	return c
}

// Validate reports every invalid setting at once, naming the flag.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for name, v := range map[string]string{
		"--listen-client-urls": c.ListenClientURLs, "--advertise-client-urls": c.AdvertiseClientURLs,
		"--listen-peer-urls": c.ListenPeerURLs, "--initial-advertise-peer-urls": c.InitialAdvertisePeerURLs,
		"--listen-metrics-urls": c.ListenMetricsURLs, "--listen-client-http-urls": c.ListenClientHTTPURLs,
	} {
		if v == "" && (name == "--listen-metrics-urls" || name == "--listen-client-http-urls") {
			continue
		}
		if _, err := parseURLs(v); err != nil {
			bad("%s: %v", name, err)
		}
	}
	if _, err := parseCluster(c.InitialCluster); err != nil {
		bad("--initial-cluster: %v", err)
	} else if m, _ := parseCluster(c.InitialCluster); m[c.Name] == nil {
		bad("--initial-cluster: couldn't find local name %q in the initial cluster configuration", c.Name)
	}
	switch c.InitialClusterState {
	case "new":
	case "existing":
		// As etcd, the flag only matters when the data dir is empty: a
		// member restarting on its data dir ignores it; a new one joins
		// the running cluster that MemberAdd added it to.
	default:
		bad("--initial-cluster-state: %q is not new or existing", c.InitialClusterState)
	}
	if c.HeartbeatIntervalMs == 0 || c.ElectionTimeoutMs < 5*c.HeartbeatIntervalMs {
		bad("--election-timeout[%d] should be at least as 5 times as --heartbeat-interval[%d]", c.ElectionTimeoutMs, c.HeartbeatIntervalMs)
	}
	if c.CompactHashCheckTime <= 0 {
		bad("--compact-hash-check-time must be >0 (set to %v)", c.CompactHashCheckTime)
	}
	if c.CorruptCheckTime < 0 {
		bad("--corrupt-check-time must be >= 0 (set to %v)", c.CorruptCheckTime)
	}
	if c.MaxLearners < 1 {
		bad("--max-learners: must be at least 1, got %d", c.MaxLearners)
	}
	if c.LeaseCheckpointInterval < 0 {
		bad("--lease-checkpoint-interval: must not be negative, got %v", c.LeaseCheckpointInterval)
	}
	if c.Logger != "zap" {
		bad("--logger: %q is not supported (only zap)", c.Logger)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		bad("--log-format: %q is not json or console", c.LogFormat)
	}
	if c.WatchProgressNotifyInterval <= 0 {
		bad("--watch-progress-notify-interval: must be positive, got %v", c.WatchProgressNotifyInterval)
	}
	if c.AutoCompactionMode != "periodic" && c.AutoCompactionMode != "revision" {
		bad("--auto-compaction-mode: %q is not periodic or revision", c.AutoCompactionMode)
	} else if _, err := parseRetention(c.AutoCompactionMode, c.AutoCompactionRetention); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.refusedFlags()...)
	errs = append(errs, c.validateTLS()...)
	if !semver.MatchString(c.EmulatedEtcdVersion) {
		bad("--emulated-etcd-version: %q is not a version like 3.7.3", c.EmulatedEtcdVersion)
	}
	if c.StorageEngine != "rocksdb" && c.StorageEngine != "memory" {
		bad("--storage-engine: %q is not rocksdb or memory", c.StorageEngine)
	}
	return errors.Join(errs...)
}

func parseURLs(s string) ([]url.URL, error) {
	var out []url.URL
	for _, p := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		unix := u.Scheme == "unix" || u.Scheme == "unixs"
		if (u.Scheme != "http" && u.Scheme != "https" && !unix) || (u.Host == "" && !(unix && u.Path != "")) {
			return nil, fmt.Errorf("URL %q must be http://host:port", p)
		}
		out = append(out, *u)
	}
	return out, nil
}

// parseCluster parses "name=url,name=url" into peer URLs per name.
func parseCluster(s string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, p := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not name=url", p)
		}
		if _, err := parseURLs(u); err != nil {
			return nil, err
		}
		out[name] = append(out[name], u)
	}
	return out, nil
}

// memberID is etcd's member ID: SHA-1 of the sorted peer URLs and the
// cluster token, first 8 bytes.
func memberID(peerURLs []string, token string) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	sum := sha1.Sum(append([]byte(strings.Join(urls, "")), token...))
	return binary.BigEndian.Uint64(sum[:8])
}

// clusterID is etcd's cluster ID: SHA-1 of the sorted member IDs.
func clusterID(ids []uint64) uint64 {
	sorted := append([]uint64(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b := make([]byte, 8*len(sorted))
	for i, id := range sorted {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

func (c Config) tickInterval() time.Duration {
	return time.Duration(c.HeartbeatIntervalMs) * time.Millisecond
}

// featureEnabled reports whether an etcd feature gate is on.
func (c Config) featureEnabled(f featuregate.Feature) bool {
	return c.FeatureGates != nil && c.FeatureGates.Enabled(f)
}

// SetFeatureGates sets etcd feature gates from "Name=true,Other=false" as
// --feature-gates does, refusing unknown gates with etcd's message.
func (c *Config) SetFeatureGates(v string) error {
	fg := features.NewDefaultServerFeatureGate("metastore", nil)
	if err := fg.(featuregate.MutableFeatureGate).Set(v); err != nil {
		return err
	}
	c.FeatureGates = fg
	return nil
}
