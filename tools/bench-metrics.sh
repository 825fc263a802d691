#!/usr/bin/env bash
# Put and range throughput with --metrics basic and --metrics extensive
# (the gRPC handling-time histograms), etcd 3.7.3 and bin/metastore side
# by side on this machine (one member each, fresh data dirs, the same
# load from bin/metastore-bench): what the extensive metrics cost.
# Usage: tools/bench-metrics.sh [ROUNDS] (default 3; the median is printed)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
rounds=${1:-3}
declare -A result
for target in etcd metastore; do
	for _ in $(seq "$rounds"); do
		for mode in basic extensive; do
			start "$target" http --metrics "$mode"
			common=(--endpoints "$client" --clients 100 --conns 10)
			"$bench" put "${common[@]}" --total 2000 >/dev/null # warm up
			result[$target,put,$mode]+="$(rps put "${common[@]}" --total 40000) "
			result[$target,range,$mode]+="$(rps range foo "${common[@]}" --total 60000 --consistency s) "
			stop
		done
	done
done
table basic extensive "medians of $rounds rounds, $(nproc) CPUs; cost = throughput change with --metrics extensive"
