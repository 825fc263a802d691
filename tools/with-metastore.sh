#!/usr/bin/env bash
# Starts bin/metastore — one member, or METASTORE_MEMBERS members as one
# cluster — on free loopback ports with throw-away data dirs, waits until
# every member logs readiness, runs the given command with ETCD_ENDPOINTS
# set to their client addresses, then stops them. Used to run the
# endpoint-agnostic suites (clientsdk e2e, compat-tests) against MetaStore.
# Usage: [METASTORE_MEMBERS=3] tools/with-metastore.sh COMMAND [ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/metastore"
[ -x "$bin" ] || { echo "with-metastore: $bin missing (make build)" >&2; exit 1; }
n=${METASTORE_MEMBERS:-1}
dir=$(mktemp -d)
# port prints a port in 20000-31999 (below Linux's ephemeral range) that
# nothing listens on.
port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
}
clients=() peers=() initial=""
for i in $(seq 0 $((n - 1))); do
	clients+=("127.0.0.1:$(port)")
	peers+=("127.0.0.1:$(port)")
	initial+="${initial:+,}m$i=http://${peers[$i]}"
done
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
for i in $(seq 0 $((n - 1))); do
	"$bin" --name "m$i" --data-dir "$dir/m$i" --initial-cluster "$initial" \
		--listen-client-urls "http://${clients[$i]}" --advertise-client-urls "http://${clients[$i]}" \
		--listen-peer-urls "http://${peers[$i]}" --initial-advertise-peer-urls "http://${peers[$i]}" >"$dir/m$i.log" 2>&1 &
	pids+=($!)
done
for i in $(seq 0 $((n - 1))); do
	for _ in $(seq 1 300); do
		grep -q "ready to serve client requests" "$dir/m$i.log" && break
		kill -0 "${pids[$i]}" 2>/dev/null || { cat "$dir/m$i.log" >&2; exit 1; }
		sleep 0.1
	done
	grep -q "ready to serve client requests" "$dir/m$i.log" || { echo "with-metastore: m$i not ready" >&2; cat "$dir/m$i.log" >&2; exit 1; }
done
eps=$(IFS=,; echo "${clients[*]}")
echo "with-metastore: $n member(s) serving on $eps"
ETCD_ENDPOINTS="$eps" "$@"
