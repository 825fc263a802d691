#!/usr/bin/env bash
# Put and range throughput over plain text and over client TLS (mutual,
# etcd's test certificates), etcd 3.7.3 and bin/metastore side by side on
# this machine (one member each, fresh data dirs, the same load from
# bin/metastore-bench).
# Usage: tools/bench-tls.sh [ROUNDS] (default 3; the median is printed)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
rounds=${1:-3}
fx=$(GOWORK=off GOFLAGS=-mod=mod go env GOMODCACHE)/go.etcd.io/etcd/tests/v3@v3.7.3/fixtures
[ -f "$fx/server.crt" ] || { echo "bench-tls: $fx missing (make compat-upstream fetches it)" >&2; exit 1; }
tlsflags=(--cert-file "$fx/server.crt" --key-file "$fx/server.key.insecure" --trusted-ca-file "$fx/ca.crt" --client-cert-auth)
clientflags=(--cacert "$fx/ca.crt" --cert "$fx/server.crt" --key "$fx/server.key.insecure")
declare -A result
for target in etcd metastore; do
	for _ in $(seq "$rounds"); do
		for mode in plain tls; do
			if [ "$mode" = plain ]; then
				start "$target" http
				common=(--endpoints "$client" --clients 100 --conns 10)
			else
				start "$target" https "${tlsflags[@]}"
				common=(--endpoints "https://$client" --clients 100 --conns 10 "${clientflags[@]}")
			fi
			"$bench" put "${common[@]}" --total 2000 >/dev/null # warm up
			result[$target,put,$mode]+="$(rps put "${common[@]}" --total 40000) "
			result[$target,range,$mode]+="$(rps range foo "${common[@]}" --total 60000 --consistency s) "
			stop
		done
	done
done
table plain tls "medians of $rounds rounds, $(nproc) CPUs; mutual TLS with etcd's test certificates"
