#!/usr/bin/env bash
# Installs what building MetaStore needs on a fresh Debian machine and is
# missing: RocksDB's headers and library (librocksdb-dev, 7.8.3 on bookworm).
set -euo pipefail
if [ -f /usr/include/rocksdb/c.h ]; then
	exit 0
fi
echo "installing librocksdb-dev (RocksDB headers and library)"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq librocksdb-dev >/dev/null
