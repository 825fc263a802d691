package server

import (
	"flag"
	"fmt"
	"go.etcd.io/etcd/pkg/v3/featuregate"
	"go.etcd.io/etcd/server/v3/features"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MetaStore knows every flag of etcd 3.7 (DESIGN §6). The ones it
// implements are bound to Config fields by AddFlags; the others are
// registered here. A flag whose feature MetaStore lacks but whose value
// changes nothing that matters (tuning, tracing, log rotation…) is accepted
// and reported by Config.Warnings; one that would change behaviour (TLS,
// discovery…) is refused by Validate when set to anything but etcd's
// default, with a one-line reason naming it.

type etcdOnlyFlag struct {
	name, def string
	// refuse: a value other than def changes behaviour MetaStore lacks.
	refuse bool
	why    string
}

// etcdOnlyFlags lists etcd 3.7's flags that MetaStore does not implement.
var etcdOnlyFlags = []etcdOnlyFlag{
	// Ignored with a warning: tuning of etcd internals MetaStore does not
	// have, or observability it does not offer yet.
	{"wal-dir", "", false, "the Raft log stays in --data-dir/member/wal"},
	{"max-snapshots", "5", false, "snapshot retention is managed by the consensus module"},
	{"max-wals", "5", false, "WAL retention is managed by the consensus module"},
	{"initial-election-tick-advance", "true", false, "not applicable"},
	{"backend-bbolt-freelist-type", "map", false, "no bbolt backend"},
	{"backend-batch-interval", "0s", false, "no bbolt backend"},
	{"backend-batch-limit", "0", false, "no bbolt backend"},
	{"socket-reuse-port", "false", false, "not supported yet"},
	{"socket-reuse-address", "false", false, "not supported yet"},
	{"raft-read-timeout", "5s", false, "the gRPC peer transport has its own timeouts"},
	{"raft-write-timeout", "5s", false, "the gRPC peer transport has its own timeouts"},
	{"pre-vote", "true", false, "pre-vote is always on"},
	{"cors", "*", false, "the gateway allows every origin (etcd's default)"},
	{"host-whitelist", "*", false, "every host is accepted (etcd's default)"},
	{"enable-log-rotation", "false", false, "log rotation is not supported"},
	{"log-rotation-config-json", "", false, "log rotation is not supported"},
	{"enable-distributed-tracing", "false", false, "tracing is not supported"},
	{"distributed-tracing-address", "localhost:4317", false, "tracing is not supported"},
	{"distributed-tracing-service-name", "etcd", false, "tracing is not supported"},
	{"distributed-tracing-instance-id", "", false, "tracing is not supported"},
	{"distributed-tracing-sampling-rate", "0", false, "tracing is not supported"},

	{"compaction-batch-limit", "1000", false, "storage compaction has its own batching"},
	{"compaction-sleep-interval", "10ms", false, "storage compaction has its own pacing"},
	{"downgrade-check-time", "5s", false, "MetaStore does not change its cluster version in a downgrade"},
	{"memory-mlock", "false", false, "not supported"},
	{"bootstrap-defrag-threshold-megabytes", "0", false, "defrag is online in MetaStore"},
	{"unsafe-no-fsync", "false", false, "MetaStore always fsyncs"},
	{"v2-deprecation", "write-only", false, "there is no v2 store"},
	{"discovery-fallback", "exit", false, "discovery is not supported"},
	{"discovery-dial-timeout", "2s", false, "discovery is not supported"},
	{"discovery-request-timeout", "5s", false, "discovery is not supported"},
	{"discovery-keepalive-time", "2s", false, "discovery is not supported"},
	{"discovery-keepalive-timeout", "6s", false, "discovery is not supported"},
	{"discovery-insecure-transport", "true", false, "discovery is not supported"},
	{"discovery-insecure-skip-tls-verify", "false", false, "discovery is not supported"},

	// Refused unless left at etcd's default: behaviour MetaStore lacks.
	{"discovery-endpoints", "", true, "discovery is not supported"},
	{"discovery-token", "", true, "discovery is not supported"},
	{"discovery-cert", "", true, "discovery is not supported"},
	{"discovery-key", "", true, "discovery is not supported"},
	{"discovery-cacert", "", true, "discovery is not supported"},
	{"discovery-user", "", true, "discovery is not supported"},
	{"discovery-password", "", true, "discovery is not supported"},
	{"discovery-srv", "", true, "discovery is not supported"},
	{"discovery-srv-name", "", true, "discovery is not supported"},
}

// etcdIgnoredFlags are legacy flags etcd itself accepts and ignores.
var etcdIgnoredFlags = []string{
	"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval", "config", "force",
	"max-result-buffer", "max-retry-attempts", "peer-heartbeat-interval", "peer-election-timeout",
	"retry-interval", "snapshot", "v", "vv", "experimental-v3demo",
}

// otherValue records an etcd-only flag's value. Boolean flags accept a
// bare --flag as etcd's do.
type otherValue struct {
	f      etcdOnlyFlag
	val    string
	isBool bool
}

func (v *otherValue) String() string {
	if v == nil {
		return ""
	}
	return v.val
}
func (v *otherValue) Set(s string) error { v.val = s; return nil }
func (v *otherValue) IsBoolFlag() bool   { return v.isBool }

type ignoredValue struct{}

func (ignoredValue) String() string   { return "" }
func (ignoredValue) Set(string) error { return nil }

// addEtcdOnlyFlags registers etcd's flags MetaStore does not implement;
// their values land in c.etcdOnly.
func (c *Config) addEtcdOnlyFlags(fs *flag.FlagSet) {
	c.etcdOnly = map[string]*otherValue{}
	for _, f := range etcdOnlyFlags {
		v := &otherValue{f: f, val: f.def, isBool: f.def == "true" || f.def == "false"}
		c.etcdOnly[f.name] = v
		fs.Var(v, f.name, "etcd flag not implemented by MetaStore ("+f.why+").")
	}
	for _, name := range etcdIgnoredFlags {
		fs.Var(ignoredValue{}, name, "Ignored (as in etcd).")
	}
}

func (c Config) etcdOnlySet() []*otherValue {
	var out []*otherValue
	for _, v := range c.etcdOnly {
		if v.val != v.f.def {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].f.name < out[j].f.name })
	return out
}

func (c Config) refusedFlags() []error {
	var errs []error
	for _, v := range c.etcdOnlySet() {
		if v.f.refuse {
			errs = append(errs, fmt.Errorf("--%s=%s: %s in MetaStore", v.f.name, v.val, v.f.why))
		}
	}
	return errs
}

// Warnings lists the etcd flags that were set but have no effect in
// MetaStore, one line each, for the log.
func (c Config) Warnings() []string {
	var out []string
	for _, f := range []featuregate.Feature{features.StopGRPCServiceOnDefrag, features.LeaseCheckpoint,
		features.LeaseCheckpointPersist, features.SetMemberLocalAddr, features.PriorityRequest} {
		if c.featureEnabled(f) {
			out = append(out, fmt.Sprintf("--feature-gates=%s=true has no effect in MetaStore", f))
		}
	}
	for _, v := range c.etcdOnlySet() {
		if !v.f.refuse {
			out = append(out, fmt.Sprintf("--%s=%s has no effect in MetaStore: %s", v.f.name, v.val, v.f.why))
		}
	}
	return out
}

// LoadConfigFile sets the flags of fs from a YAML file whose keys are the
// flag names, as etcd's --config-file. As in etcd, the caller then ignores
// the other command-line flags and environment variables. Keys that are no
// flag are reported in the returned warnings (etcd ignores them silently);
// lists are joined with commas; etcd's client-transport-security and
// peer-transport-security sections map to the TLS flags.
func LoadConfigFile(fs *flag.FlagSet, path string) (warnings []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config-file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("--config-file %s: %w", path, err)
	}
	set := func(name string, v any) error {
		if v == nil {
			return nil
		}
		if fs.Lookup(name) == nil {
			warnings = append(warnings, fmt.Sprintf("--config-file %s: unknown key %q ignored", path, name))
			return nil
		}
		var s string
		switch v := v.(type) {
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			s = strings.Join(parts, ",")
		case map[string]any:
			return fmt.Errorf("--config-file %s: key %q: a value was expected, not a map", path, name)
		default:
			s = fmt.Sprint(v)
		}
		if err := fs.Set(name, s); err != nil {
			return fmt.Errorf("--config-file %s: invalid value %q for key %q: %v", path, s, name, err)
		}
		return nil
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "client-transport-security", "peer-transport-security":
			sec, ok := doc[k].(map[string]any)
			if !ok {
				if doc[k] == nil {
					continue
				}
				return nil, fmt.Errorf("--config-file %s: key %q must be a map", path, k)
			}
			for sk, sv := range sec {
				name := sk
				if k == "peer-transport-security" {
					name = "peer-" + sk
				} else if sk == "crl-file" {
					name = "client-crl-file"
				}
				if err := set(name, sv); err != nil {
					return nil, err
				}
			}
		default:
			if err := set(k, doc[k]); err != nil {
				return nil, err
			}
		}
	}
	return warnings, nil
}
