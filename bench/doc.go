// Package bench is MetaStore's load tool, in the shapes and with the flag
// names of etcd's benchmark tool, for any etcd v3 endpoint: the
// metastore-bench command (cmd/metastore-bench) runs a workload (Put,
// TxnPut, TxnMixed, Range, Watch, LeaseKeepAlive, Lock) over several
// connections and clients — with TLS, auth, a rate limit, or the leader
// only — and prints a summary with throughput, latency percentiles and a
// histogram (package report), as text or JSON, or draws the latency
// distribution (package plot). Package compare runs etcd and MetaStore
// side by side. It talks gRPC through etcd's client only and imports no
// MetaStore module.
package bench
