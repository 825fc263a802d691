# Shared by tools/bench-auth.sh and tools/bench-tls.sh (sourced): start
# one etcd 3.7.3 or bin/metastore member on free loopback ports with a
# fresh data dir, measure a bin/metastore-bench workload, take medians.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/metastore
etcd=$cache/etcd-v3.7.3/etcd
etcdctl=$cache/etcdctl-v3.7.3/etcdctl
bench=$root/bin/metastore-bench
etcdutl=$cache/etcdutl-v3.7.3/etcdutl
"$root/tools/etcd-tools.sh" || exit 1
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

# port prints a free port below Linux's ephemeral range.
port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
}

# start TARGET SCHEME EXTRA-FLAGS... starts etcd or metastore, sets
# $client (host:port) and $pid, and waits until it serves; on a fresh
# data dir unless keep_data is set.
start() {
	local target=$1 scheme=$2 bin=$etcd
	shift 2
	[ "$target" = metastore ] && bin=$root/bin/metastore
	client=127.0.0.1:$(port)
	local peer=127.0.0.1:$(port)
	[ -n "${keep_data:-}" ] || rm -rf "$work/data"
	"$bin" --data-dir "$work/data" --listen-client-urls "$scheme://$client" --advertise-client-urls "$scheme://$client" \
		--listen-peer-urls "http://$peer" --initial-advertise-peer-urls "http://$peer" --initial-cluster "default=http://$peer" \
		"$@" >"$work/$target.log" 2>&1 &
	pid=$!
	for _ in $(seq "${start_tries:-100}"); do grep -q "ready to serve client requests" "$work/$target.log" && return; sleep 0.1; done
	echo "bench: $target did not start:" >&2
	tail -5 "$work/$target.log" >&2
	exit 1
}

stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

# rps WORKLOAD ARGS... -> requests per second of one bench run
rps() {
	"$bench" "$@" --output json | sed -n 's/.*"throughput_ops_per_sec": *\([0-9.]*\).*/\1/p' | cut -d. -f1
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# cost OFF ON -> the relative throughput change
cost() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f%%", (b-a)*100/a}'; }

# table COL-A COL-B NOTE: the markdown table of result[TARGET,WORKLOAD,MODE]
# for modes A and B (named by the header words), with the change from A to B.
table() {
	local a=$1 b=$2 note=$3
	echo "| workload (100 clients / 10 conns) | etcd $a | etcd $b | etcd cost | MetaStore $a | MetaStore $b | MetaStore cost |"
	echo "|---|---|---|---|---|---|---|"
	for w in put range; do
		local row="| $w"
		if [ "$w" = range ]; then row+=" (serializable)"; fi
		for target in etcd metastore; do
			local off on
			off=$(echo "${result[$target,$w,$a]}" | median)
			on=$(echo "${result[$target,$w,$b]}" | median)
			row+=" | $off | $on | $(cost "$off" "$on")"
		done
		echo "$row |"
	done
	echo "($note)"
}
