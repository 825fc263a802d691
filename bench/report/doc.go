// Package report turns a run's latencies into etcd benchmark's summary:
// throughput, fastest/slowest/average, percentiles and a latency
// histogram, as text or JSON.
package report
