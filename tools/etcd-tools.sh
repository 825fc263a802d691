#!/usr/bin/env bash
# Makes sure etcd, etcdctl and etcdutl v3.7.3 are in the user cache
# ($XDG_CACHE_HOME/metastore/<tool>-<version>/<tool>), building each that
# is missing from the Go module proxy: etcd with the bench tool's
# build-etcd, etcdctl and etcdutl each in a throw-away module (their
# go.mod files have replace directives that forbid `go install`).
# Prints nothing on success; exits non-zero naming the tool that failed.
# Usage: tools/etcd-tools.sh [TOOL...] (default: etcd etcdctl etcdutl)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/metastore
version=v3.7.3
[ $# -gt 0 ] || set -- etcd etcdctl etcdutl
for tool in "$@"; do
	bin=$cache/$tool-$version/$tool
	[ -x "$bin" ] && continue
	case $tool in
	etcd)
		if [ ! -x "$root/bin/metastore-bench" ]; then
			(cd "$root/bench" && go build -o "$root/bin/metastore-bench" ./cmd/metastore-bench)
		fi
		"$root/bin/metastore-bench" build-etcd --etcd-version "$version" >/dev/null
		;;
	etcdctl | etcdutl)
		src=$(mktemp -d)
		printf 'module %sbuild\n\ngo 1.26\n' "$tool" >"$src/go.mod"
		(cd "$src" && GOWORK=off GOFLAGS=-mod=mod go get "go.etcd.io/etcd/$tool/v3@$version" "google.golang.org/grpc@v1.83.2" >/dev/null 2>&1 &&
			mkdir -p "$(dirname "$bin")" && GOWORK=off GOFLAGS=-mod=mod go build -o "$bin.tmp" "go.etcd.io/etcd/$tool/v3" && mv "$bin.tmp" "$bin") || true
		rm -rf "$src"
		;;
	*) echo "etcd-tools: unknown tool $tool" >&2; exit 2 ;;
	esac
	[ -x "$bin" ] || { echo "etcd-tools: could not build $tool $version into $bin" >&2; exit 1; }
done
