package server

// Versions reported by the binary. EtcdVersion is the etcd version
// MetaStore emulates (what `--version` and, later, Maintenance.Status
// report to clients that gate features on it).
const (
	EtcdVersion = "3.7.3"
	// EtcdClusterVersion is the cluster (and storage) version /version
	// reports, as etcd 3.7.3 does.
	EtcdClusterVersion = "3.7.0"
	MetaStoreVersion   = "0.1.0-dev"
)
