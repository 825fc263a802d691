#!/usr/bin/env bash
# Proves that outsiders can depend on MetaStore's modules (docs/RELEASING.md):
# zips every module at the version its siblings require (RELEASE_VERSION,
# default the one in clientsdk/internal/e2e/go.mod) into a file-system
# module proxy — from the working tree, no tags needed — then, in
# temporary modules outside the workspace (GOWORK=off, that proxy first),
# `go get`s clientsdk alone and storage alone, builds and runs a small
# program on each.
# Usage: tools/release-check.sh MODULE_DIR...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${RELEASE_VERSION:-$(awk '$1 == "github.com/metastore/metastore/clientsdk" {print $2; exit}' "$root/clientsdk/internal/e2e/go.mod")}
[ -n "$version" ] || { echo "release-check: no sibling version found" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dirs=()
for m in "$@"; do dirs+=("$root/$m"); done
(cd "$root/tools/modcheck" && GOWORK=off go run . proxy "$work/proxy" "$version" "${dirs[@]}")
echo "release-check: $# modules zipped at $version into a file-system proxy"
export GOWORK=off GOFLAGS=-mod=mod GONOSUMDB=github.com/metastore/metastore GONOSUMCHECK=1
export GOPROXY="file://$work/proxy,$(go env GOPROXY)"
run() { # run NAME MODULE PACKAGES...
	local name=$1 mod=$2; shift 2
	mkdir -p "$work/$name"
	cp "$root/tools/modcheck/testdata/$name/main.go" "$work/$name/"
	(cd "$work/$name" && go mod init example.com/"$name" >"$work/$name.log" 2>&1 &&
		go get "$mod@$version" "$@" >>"$work/$name.log" 2>&1 &&
		go mod tidy >>"$work/$name.log" 2>&1 &&
		go build -o "$work/$name/bin" . >>"$work/$name.log" 2>&1) || {
		echo "release-check: $name: go get $mod@$version outside the workspace failed:" >&2
		cat "$work/$name.log" >&2
		exit 1
	}
	"$work/$name/bin"
	echo "release-check: $name: go get $mod@$version, build and run: ok"
}
run storage-user github.com/metastore/metastore/storage
run clientsdk-user github.com/metastore/metastore/clientsdk go.etcd.io/etcd/server/v3@v3.7.3
