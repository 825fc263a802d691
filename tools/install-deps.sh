#!/usr/bin/env bash
# Installs what building and testing MetaStore needs on a fresh Debian
# machine and is missing: RocksDB's headers and library (librocksdb-dev,
# 7.8.3 on bookworm), and the openssl and curl commands the operator
# guide's test runs (examples/opsguide).
set -euo pipefail
missing=()
[ -f /usr/include/rocksdb/c.h ] || missing+=(librocksdb-dev)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} = 0 ]; then
	exit 0
fi
echo "installing ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
