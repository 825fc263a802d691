#!/usr/bin/env bash
# Prints the path of Prometheus's promtool, from Debian's prometheus
# package: the .deb is downloaded (apt-get download, no install, no
# service started) and unpacked once into ~/.cache/metastore/prometheus.
set -euo pipefail
cache=${METASTORE_CACHE:-$HOME/.cache/metastore}/prometheus
bin=$cache/usr/bin/promtool
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
if command -v promtool >/dev/null 2>&1; then
	command -v promtool
	exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
	# A fresh machine may have no package lists yet.
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
	$sudo apt-get update -qq >&2
	(cd "$tmp" && apt-get download -qq prometheus >/dev/null)
fi
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
mkdir -p "$cache/usr/bin"
cp "$tmp/x/usr/bin/promtool" "$bin.tmp" && mv "$bin.tmp" "$bin"
echo "$bin"
