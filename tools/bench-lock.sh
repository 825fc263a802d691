#!/usr/bin/env bash
# Lock latency through the server-side Lock service (v3lockpb Lock then
# Unlock, what non-Go clients and /v3/lock use), side by side: etcd 3.7.3
# and bin/metastore, one member each on a fresh data dir. Uncontended: one
# client; under contention: 10 clients on one lock, so each Lock waits for
# the handover from the previous holder. The client-side mutex (etcd's
# concurrency.Mutex, what etcdctl lock and clientsdk use) for reference.
# Usage: tools/bench-lock.sh [TOTAL] (default 1000 acquire+release per row)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
total=${1:-1000}
# lat WORKLOAD-ARGS... -> "p50 ms | p99 ms | ops/s" of one bench run
lat() {
	"$bench" "$@" --output json | tr -d ' \n' |
		sed -n 's/.*"throughput_ops_per_sec":\([0-9.]*\).*"percentiles_ns":{\([^}]*\)}.*/\1 \2/p' |
		awk '{n = split($2, kv, ","); for (i = 1; i <= n; i++) {split(kv[i], p, ":"); gsub(/"/, "", p[1]); v[p[1]] = p[2]}
			printf "%.2f | %.2f | %.0f", v["50"]/1e6, v["99"]/1e6, $1}'
}
echo "| server | lock | clients | p50 ms | p99 ms | acquire+release/s |"
echo "|---|---|---|---|---|---|"
for target in etcd metastore; do
	start "$target" http
	for mode in server-side client-side; do
		flag=()
		[ "$mode" = server-side ] && flag=(--server-side)
		for clients in 1 10; do
			echo "| $target | $mode | $clients | $(lat lock "${flag[@]}" --endpoints "$client" --clients "$clients" --conns "$clients" --total "$total" --name "lock-$mode-$clients") |"
		done
	done
	stop
done
echo "($(nproc) CPUs; one run; $total acquire+release per row; each client has its own lease / session)"
