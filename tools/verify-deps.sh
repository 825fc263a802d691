#!/usr/bin/env bash
# Fails when a module imports what DESIGN.md §1 / STYLE.md §2 forbid.
# Usage: tools/verify-deps.sh MODULE...
set -euo pipefail
root=github.com/metastore/metastore
cd "$(dirname "$0")/.."

# forbidden MODULE -> extended regexp of import paths it must never reach
forbidden() {
	case "$1" in
	storage)      echo "^$root/(consensus|services|server|clientsdk|compat-tests|bench)(/|$)|^go\.etcd\.io/etcd/(server|client)/|^google\.golang\.org/grpc(/|$)" ;;
	consensus)    echo "^$root/(storage|services|server|clientsdk|compat-tests|bench)(/|$)" ;;
	services/*)   echo "^$root/(server|clientsdk|compat-tests|bench)(/|$)" ;;
	clientsdk)    echo "^$root/(storage|consensus|services|server|compat-tests|bench)(/|$)" ;;
	server)       echo "^$root/(compat-tests|bench)(/|$)" ;;
	compat-tests|bench) echo "^$root/(storage|consensus|services|server)(/|$)" ;;
	*)            echo "" ;;
	esac
}

status=0
for m in "$@"; do
	re=$(forbidden "$m")
	deps=$(cd "$m" && go list -deps -test ./... 2>/dev/null | sort -u)
	if [ -n "$re" ]; then
		bad=$(grep -E "$re" <<<"$deps" || true)
		if [ -n "$bad" ]; then
			echo "verify-deps: module $m imports forbidden packages:"; sed 's/^/  /' <<<"$bad"; status=1
		fi
	fi
	if [ "$m" = storage ]; then
		# grocksdb (cgo) is confined to storage/rocksdb and its tests.
		users=$(cd storage && go list -f '{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
			grep 'github.com/linxGnu/grocksdb' | awk '{print $1}' | grep -vE "^$root/storage/(rocksdb|internal/.*test|cmd/.*)$" || true)
		if [ -n "$users" ]; then
			echo "verify-deps: only storage/rocksdb may import grocksdb, found in:"; sed 's/^/  /' <<<"$users"; status=1
		fi
	fi
done
[ $status = 0 ] && echo "verify-deps: ok ($*)"
exit $status
