#!/usr/bin/env bash
# Put and range throughput with auth off and on, etcd 3.7.3 and
# bin/metastore side by side on this machine (one member each, fresh data
# dirs, the same load from bin/metastore-bench): what checking a token and
# a permission on every request costs each server.
# Usage: tools/bench-auth.sh [ROUNDS] (default 3; the median is printed)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
rounds=${1:-3}
declare -A result
for target in etcd metastore; do
	for _ in $(seq "$rounds"); do
		start "$target" http
		common=(--endpoints "$client" --clients 100 --conns 10)
		"$bench" put "${common[@]}" --total 2000 >/dev/null # warm up
		result[$target,put,off]+="$(rps put "${common[@]}" --total 40000) "
		result[$target,range,off]+="$(rps range foo "${common[@]}" --total 60000 --consistency s) "
		"$etcdctl" --endpoints "$client" user add root:rootpw >/dev/null
		"$etcdctl" --endpoints "$client" user grant-role root root >/dev/null
		"$etcdctl" --endpoints "$client" auth enable >/dev/null
		result[$target,put,on]+="$(rps put "${common[@]}" --total 40000 --user root:rootpw) "
		result[$target,range,on]+="$(rps range foo "${common[@]}" --total 60000 --consistency s --user root:rootpw) "
		stop
	done
done
table off on "medians of $rounds rounds, $(nproc) CPUs; cost = throughput change with auth on"
