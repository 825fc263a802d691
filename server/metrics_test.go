package server_test

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/server/internal/testcluster"
)

// metricValue is the value of the sample line named exactly series
// (name{labels}) in a /metrics body, or -1.
func metricValue(body, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// The event-fed metrics the etcd mixin's alerts read, under etcd's names:
// gRPC requests by method and code, the Raft log's fsyncs, storage
// commits, proposals, leader changes, and the member ID label.
func TestMetricsFedByEvents(t *testing.T) {
	for _, mode := range []string{"basic", "extensive"} {
		t.Run(mode, func(t *testing.T) {
			ms := testcluster.Start(t, 1, func(c *server.Config) { c.Metrics = mode })
			c := testcluster.Client(t, ms[0])
			for i := range 5 {
				_, err := c.Put(ctx(t), fmt.Sprint("k", i), "v")
				require.NoError(t, err)
			}
			_, err := c.Get(ctx(t), "nope")
			require.NoError(t, err)
			l, err := c.Grant(ctx(t), 1)
			require.NoError(t, err)
			_, err = c.KeepAliveOnce(ctx(t), l.ID)
			require.NoError(t, err)
			l2, err := c.Grant(ctx(t), 600)
			require.NoError(t, err)
			_, err = c.Revoke(ctx(t), l2.ID)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				_, body := httpGet(t, "http://"+ms[0].Srv.ClientAddrs()[0]+"/metrics")
				return metricValue(body, "etcd_debugging_server_lease_expired_total") == 1
			}, 15*time.Second, 50*time.Millisecond, "the 1 s lease expires and is counted")
			wctx, stopWatch := context.WithCancel(ctx(t))
			defer stopWatch()
			w := c.Watch(wctx, "k", clientv3.WithPrefix(), clientv3.WithRev(1))
			require.Len(t, (<-w).Events, 5)
			code, body := httpGet(t, "http://"+ms[0].Srv.ClientAddrs()[0]+"/metrics")
			require.Equal(t, 200, code)

			put := `grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}`
			require.Equal(t, 5.0, metricValue(body, put), "handled puts")
			require.Equal(t, 5.0, metricValue(body, `grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}`))
			require.Equal(t, 0.0, metricValue(body, `grpc_server_handled_total{grpc_code="OK",grpc_method="Defragment",grpc_service="etcdserverpb.Maintenance",grpc_type="unary"}`),
				"every method has its series from the start, as etcd")
			require.GreaterOrEqual(t, metricValue(body, "etcd_disk_wal_fsync_duration_seconds_count"), 5.0)
			require.GreaterOrEqual(t, metricValue(body, "etcd_disk_backend_commit_duration_seconds_count"), 5.0)
			require.Contains(t, body, `etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"}`)
			require.Contains(t, body, `etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"}`, "etcd's buckets")
			require.Equal(t, 1.0, metricValue(body, "etcd_server_leader_changes_seen_total"))
			require.Equal(t, 0.0, metricValue(body, "etcd_server_proposals_pending"))
			require.Equal(t, 0.0, metricValue(body, "etcd_server_proposals_failed_total"))
			st, err := c.Status(ctx(t), ms[0].Srv.ClientAddrs()[0])
			require.NoError(t, err)
			require.Equal(t, 1.0, metricValue(body, fmt.Sprintf(`etcd_server_id{server_id="%x"}`, st.Header.MemberId)))
			require.Positive(t, metricValue(body, "etcd_network_client_grpc_received_bytes_total"))
			require.Positive(t, metricValue(body, "etcd_network_client_grpc_sent_bytes_total"))
			require.Equal(t, 1.0, metricValue(body, `etcd_cluster_version{cluster_version="3.7"}`))
			require.Positive(t, metricValue(body, "os_fd_used"))
			require.Positive(t, metricValue(body, "os_fd_limit"))
			require.Equal(t, 1.0, metricValue(body, "etcd_debugging_auth_revision"))
			require.Regexp(t, `etcd_server_feature_enabled\{name="InitialCorruptCheck",stage="[A-Z]+"\} 0`, body)
			require.Contains(t, body, `etcd_server_go_version{server_go_version="go`)
			require.Equal(t, 5.0, metricValue(body, "etcd_mvcc_put_total"))
			require.Equal(t, 1.0, metricValue(body, "etcd_mvcc_range_total"))
			require.Equal(t, 0.0, metricValue(body, "etcd_mvcc_txn_total"))
			require.Equal(t, 2.0, metricValue(body, "etcd_debugging_lease_granted_total"))
			require.Equal(t, 2.0, metricValue(body, "etcd_debugging_lease_revoked_total"), "the revoked lease and the expired one")
			require.Equal(t, 1.0, metricValue(body, "etcd_debugging_lease_renewed_total"))
			require.Equal(t, 2.0, metricValue(body, "etcd_debugging_lease_ttl_total_count"))
			require.Equal(t, 1.0, metricValue(body, "etcd_debugging_mvcc_watch_stream_total"))
			require.Equal(t, 1.0, metricValue(body, "etcd_debugging_mvcc_watcher_total"))
			require.Equal(t, 5.0, metricValue(body, "etcd_debugging_mvcc_events_total"))
			require.Positive(t, metricValue(body, "etcd_disk_wal_write_bytes_total"))
			require.GreaterOrEqual(t, metricValue(body, "etcd_disk_wal_write_duration_seconds_count"), 5.0)
			require.Equal(t, 0.0, metricValue(body, "etcd_disk_defrag_inflight"))
			require.Contains(t, body, `etcd_server_client_requests_total{client_api_version="3.7",type="unary"}`)
			require.Contains(t, body, `etcd_server_client_requests_total{client_api_version="3.7",type="stream"}`)
			hist := `grpc_server_handling_seconds_count{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}`
			if mode == "extensive" {
				require.Equal(t, 5.0, metricValue(body, hist), "--metrics extensive: handling time histograms")
			} else {
				require.Equal(t, -1.0, metricValue(body, hist), "basic: no histograms, as etcd")
			}
		})
	}
}

// Every member, this one too, is a known peer, by local and remote ID
// (etcd's rule).
func TestMetricsKnownPeers(t *testing.T) {
	ms := testcluster.Start(t, 3)
	_, body := httpGet(t, "http://"+ms[0].Srv.ClientAddrs()[0]+"/metrics")
	require.Equal(t, 3, strings.Count(body, "\netcd_network_known_peers{"), body)
	require.Equal(t, 2, strings.Count(body, "\netcd_network_peer_sent_failures_total{"), body)
	require.Eventually(t, func() bool {
		_, body := httpGet(t, "http://"+ms[0].Srv.ClientAddrs()[0]+"/metrics")
		return strings.Count(body, "\netcd_network_active_peers{") == 2 &&
			strings.Count(body, "\netcd_network_peer_round_trip_time_seconds_count{") == 2 &&
			strings.Count(body, "\netcd_network_peer_sent_bytes_total{") == 2 &&
			strings.Count(body, "\netcd_network_peer_received_bytes_total{") == 2
	}, 10*time.Second, 50*time.Millisecond, "both links up, round trips measured")
}

// Slow applies and slow unary requests are logged as etcd logs them, with
// values and passwords left out, and slow applies are counted.
func TestSlowRequestWarningsRedact(t *testing.T) {
	ms := testcluster.Configs(t, 1, func(c *server.Config) {
		c.WarningApplyDuration = time.Nanosecond
		c.WarningUnaryRequestDuration = time.Nanosecond
	})
	core, logs := observer.New(zap.WarnLevel)
	ms[0].Logger = zap.New(core)
	ms.Start()
	c := testcluster.Client(t, ms[0])
	_, err := c.Put(ctx(t), "k", "secret-value")
	require.NoError(t, err)
	_, err = c.UserAdd(ctx(t), "alice", "secret-password")
	require.NoError(t, err)

	var apply, stats []string
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += fmt.Sprintf(" %s=%v%s", f.Key, f.String, f.Interface)
		}
		require.NotContains(t, line, "secret-", "no value or password in the logs: %s", line)
		switch e.Message {
		case "apply request took too long":
			apply = append(apply, line)
		case "request stats":
			stats = append(stats, line)
		}
	}
	require.NotEmpty(t, apply)
	require.NotEmpty(t, stats)
	require.Contains(t, strings.Join(apply, "\n"), "value_size:12")
	require.Contains(t, strings.Join(apply, "\n"), "auth_user_add:<name:alice>")
	require.Contains(t, strings.Join(stats, "\n"), "/etcdserverpb.KV/Put")
	_, body := httpGet(t, "http://"+ms[0].Srv.ClientAddrs()[0]+"/metrics")
	require.GreaterOrEqual(t, metricValue(body, "etcd_server_slow_apply_total"), 2.0)
}

// The rest of etcd's request-path and mvcc metrics, fed by the events
// they name: request durations by type, compaction (its pauses, total
// time, records deleted, last run), put bytes, the watch send loop by
// response kind, backend snapshots, and the gauges at rest.
func TestMetricsRequestsCompactionWatch(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	url := "http://" + ms[0].Srv.ClientAddrs()[0] + "/metrics"
	putBytes := 0
	for i := range 5 {
		k, v := fmt.Sprint("k", i%2), strings.Repeat("v", i+1)
		putBytes += len(k) + len(v)
		_, err := c.Put(ctx(t), k, v)
		require.NoError(t, err)
	}
	_, err := c.Get(ctx(t), "k0")
	require.NoError(t, err)
	_, err = c.Txn(ctx(t)).Then(clientv3.OpGet("k1")).Commit()
	require.NoError(t, err)
	wctx, stopWatch := context.WithCancel(ctx(t))
	defer stopWatch()
	w := c.Watch(wctx, "k", clientv3.WithPrefix(), clientv3.WithRev(2), clientv3.WithCreatedNotify())
	require.True(t, (<-w).Created)
	require.Len(t, (<-w).Events, 5)
	require.NoError(t, c.RequestProgress(wctx))
	pr := <-w
	require.True(t, pr.IsProgressNotify())
	_, err = c.Compact(ctx(t), 6, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	rc, err := c.Snapshot(ctx(t))
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, rc)
	require.NoError(t, err)
	rc.Close()

	require.Eventually(t, func() bool {
		_, body := httpGet(t, url)
		return metricValue(body, "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds_count") == 1
	}, 10*time.Second, 20*time.Millisecond, "the physical compaction is timed when it finishes")
	_, body := httpGet(t, url)
	count := func(series string) float64 { return metricValue(body, series) }
	require.Equal(t, 5.0, count(`etcd_server_request_duration_seconds_count{success="true",type="Put"}`))
	require.Equal(t, 1.0, count(`etcd_server_request_duration_seconds_count{success="true",type="Range"}`))
	require.Equal(t, 1.0, count(`etcd_server_request_duration_seconds_count{success="true",type="ReadonlyTxn"}`))
	require.Equal(t, 1.0, count(`etcd_server_request_duration_seconds_count{success="true",type="Compaction"}`))
	require.Contains(t, body, `etcd_server_request_duration_seconds_bucket{success="true",type="Put",le="8.192"}`, "etcd's buckets")
	require.Equal(t, float64(putBytes), count("etcd_debugging_mvcc_total_put_size_in_bytes"))
	require.Eventually(t, func() bool {
		_, body := httpGet(t, url)
		return metricValue(body, "etcd_debugging_mvcc_keys_total") == 2
	}, 10*time.Second, 20*time.Millisecond, "k0 and k1, counted once the first scrape asked")
	require.Equal(t, 1.0, count("etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds_count"))
	require.GreaterOrEqual(t, count("etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds_count"), 1.0)
	require.Equal(t, 6.0, count("etcd_debugging_mvcc_db_compaction_keys_total"),
		"k0 and k1's 3 superseded versions, each a version record and a history entry")
	require.InDelta(t, float64(time.Now().Unix()), count("etcd_debugging_mvcc_db_compaction_last"), 30)
	require.Equal(t, 1.0, count("etcd_debugging_server_watch_send_loop_watch_stream_duration_seconds_count"))
	require.Equal(t, 1.0, count("etcd_debugging_server_watch_send_loop_watch_stream_duration_per_event_seconds_count"))
	require.Equal(t, 1.0, count("etcd_debugging_server_watch_send_loop_control_stream_duration_seconds_count"), "the created response")
	require.Equal(t, 1.0, count("etcd_debugging_server_watch_send_loop_progress_duration_seconds_count"))
	require.Equal(t, 1.0, count("etcd_disk_backend_snapshot_duration_seconds_count"))
	for _, zero := range []string{"etcd_mvcc_db_open_read_transactions", "etcd_debugging_mvcc_slow_watcher_total",
		"etcd_debugging_mvcc_pending_events_total", "etcd_server_snapshot_apply_in_progress_total",
		"etcd_server_heartbeat_send_failures_total", "etcd_server_learner_promote_successes"} {
		require.Equal(t, 0.0, count(zero), zero)
	}
}

// MetaStore's own engine metrics: RocksDB's properties under
// metastore_rocksdb_*, read on scrape.
func TestMetricsEngine(t *testing.T) {
	ms := testcluster.Start(t, 1)
	c := testcluster.Client(t, ms[0])
	for i := range 100 {
		_, err := c.Put(ctx(t), fmt.Sprint("k", i), strings.Repeat("v", 1000))
		require.NoError(t, err)
	}
	_, body := httpGet(t, "http://"+ms[0].Srv.ClientAddrs()[0]+"/metrics")
	require.Positive(t, metricValue(body, "metastore_rocksdb_memtable_bytes"), "the puts are in the memtable")
	require.Positive(t, metricValue(body, "metastore_rocksdb_block_cache_capacity_bytes"))
	require.Equal(t, 0.0, metricValue(body, "metastore_rocksdb_write_stopped"))
	for _, name := range []string{"compaction_pending_bytes", "compactions_running", "compaction_pending", "level0_files",
		"memtable_flush_pending", "block_cache_usage_bytes", "table_readers_bytes", "write_delayed_rate_bytes", "live_sst_bytes"} {
		require.GreaterOrEqual(t, metricValue(body, "metastore_rocksdb_"+name), 0.0, name)
	}
	require.Contains(t, body, "# TYPE metastore_rocksdb_compaction_pending_bytes gauge")
}
