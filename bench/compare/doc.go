// Package compare measures MetaStore side by side with etcd: it starts
// each server binary with the same etcd flags on fresh data dirs on the
// same disk (one member or three on loopback), runs the same workloads on
// both alternately for several rounds (Plan), and reports per-workload
// medians and the MetaStore/etcd ratio (Aggregate) as a table, JSON or a
// section of docs/benchmarks.md. BuildEtcd builds the etcd release being
// compared against from the Go module proxy.
package compare
