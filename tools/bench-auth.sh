#!/usr/bin/env bash
# Put and range throughput with auth off and on, etcd 3.7.3 and
# bin/metastore side by side on this machine (one member each, fresh data
# dirs, the same load from bin/metastore-bench): what checking a token and
# a permission on every request costs each server.
# Usage: tools/bench-auth.sh [ROUNDS] (default 3; the median is printed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/metastore
etcd=$cache/etcd-v3.7.3/etcd
etcdctl=$cache/etcdctl-v3.7.3/etcdctl
bench=$root/bin/metastore-bench
[ -x "$etcd" ] || "$bench" build-etcd --etcd-version v3.7.3 >/dev/null
[ -x "$etcdctl" ] || { echo "bench-auth: $etcdctl missing (make test builds it)" >&2; exit 1; }
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
}
# rps WORKLOAD ARGS... -> requests per second of one bench run
rps() {
	"$bench" "$@" --output json | sed -n 's/.*"throughput_ops_per_sec": *\([0-9.]*\).*/\1/p' | cut -d. -f1
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A result
for target in etcd metastore; do
	bin=$etcd
	[ "$target" = metastore ] && bin=$root/bin/metastore
	for r in $(seq "$rounds"); do
		c=127.0.0.1:$(port) p=127.0.0.1:$(port)
		rm -rf "$work/data"
		"$bin" --data-dir "$work/data" --listen-client-urls "http://$c" --advertise-client-urls "http://$c" \
			--listen-peer-urls "http://$p" --initial-advertise-peer-urls "http://$p" --initial-cluster "default=http://$p" \
			>"$work/$target.log" 2>&1 &
		pid=$!
		for _ in $(seq 100); do grep -q "ready to serve client requests" "$work/$target.log" && break; sleep 0.1; done
		common=(--endpoints "$c" --clients 100 --conns 10)
		"$bench" put "${common[@]}" --total 2000 >/dev/null # warm up
		result[$target,put,off]+="$(rps put "${common[@]}" --total 40000) "
		result[$target,range,off]+="$(rps range foo "${common[@]}" --total 60000 --consistency s) "
		"$etcdctl" --endpoints "$c" user add root:rootpw >/dev/null
		"$etcdctl" --endpoints "$c" user grant-role root root >/dev/null
		"$etcdctl" --endpoints "$c" auth enable >/dev/null
		result[$target,put,on]+="$(rps put "${common[@]}" --total 40000 --user root:rootpw) "
		result[$target,range,on]+="$(rps range foo "${common[@]}" --total 60000 --consistency s --user root:rootpw) "
		kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
	done
done
echo "| workload (100 clients / 10 conns) | etcd off | etcd on | etcd cost | MetaStore off | MetaStore on | MetaStore cost |"
echo "|---|---|---|---|---|---|---|"
for w in put range; do
	row="| $w"
	if [ "$w" = range ]; then row+=" (serializable)"; fi
	for target in etcd metastore; do
		off=$(echo "${result[$target,$w,off]}" | tr ' ' '\n' | grep . | median)
		on=$(echo "${result[$target,$w,on]}" | tr ' ' '\n' | grep . | median)
		cost=$(awk -v a="$off" -v b="$on" 'BEGIN {printf "%+.1f%%", (b-a)*100/a}')
		row+=" | $off | $on | $cost"
	done
	echo "$row |"
done
echo "(medians of $rounds rounds, $(nproc) CPUs; cost = throughput change with auth on)"
