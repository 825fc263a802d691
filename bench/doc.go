// Package bench is MetaStore's load tool, in the shapes and with the flag
// names of etcd's benchmark tool, for any etcd v3 endpoint: the
// metastore-bench command (cmd/metastore-bench) runs a workload over
// several connections and clients and prints a summary with throughput,
// latency percentiles and a histogram (report), as text or JSON. It talks
// gRPC through etcd's client only and imports no MetaStore module.
package bench
