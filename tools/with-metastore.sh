#!/usr/bin/env bash
# Starts bin/metastore on free loopback ports with a throw-away data dir,
# waits until it logs readiness, runs the given command with ETCD_ENDPOINTS
# set to it, then stops the server. Used to run the endpoint-agnostic
# suites (clientsdk e2e) against MetaStore.
# Usage: tools/with-metastore.sh COMMAND [ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/metastore"
[ -x "$bin" ] || { echo "with-metastore: $bin missing (make build)" >&2; exit 1; }
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
client="127.0.0.1:$(port)" peer="127.0.0.1:$(port)"
"$bin" --name with-metastore --data-dir "$dir/data" \
	--listen-client-urls "http://$client" --advertise-client-urls "http://$client" \
	--listen-peer-urls "http://$peer" --initial-advertise-peer-urls "http://$peer" >"$dir/log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
	grep -q "ready to serve client requests" "$dir/log" && break
	kill -0 "$pid" 2>/dev/null || { cat "$dir/log" >&2; exit 1; }
	sleep 0.1
done
grep -q "ready to serve client requests" "$dir/log" || { echo "with-metastore: not ready" >&2; cat "$dir/log" >&2; exit 1; }
echo "with-metastore: serving on $client"
ETCD_ENDPOINTS="$client" "$@"
