#!/usr/bin/env bash
# Backup and restore side by side: etcd 3.7.3 and bin/metastore, one member
# each on a fresh data dir, loaded with the same KEYS distinct keys (16 B
# keys, 256 B values, bin/metastore-bench put, 100 clients / 10 conns);
# then `etcdctl snapshot save` (time, file size), `etcdutl snapshot status`,
# and the restore each server's users run: `etcdutl snapshot restore` for
# etcd, `metastore snapshot restore` for MetaStore (time). Every snapshot
# is also restored by the other tool, so the numbers say both files work.
# bin/metastore is also started on the stopped etcd member's own data dir
# (the in-place migration): the time until it serves.
# Usage: tools/bench-snapshot.sh [KEYS] (default 100000)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
keys=${1:-100000}
secs() { local t0=$1; awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b-a}'; }
mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN {printf "%.1f", b/1048576}'; }
echo "| server | keys | snapshot save | file | MB/s | server CPU s | peak RSS MB | put/s alone | put/s during save | etcdutl restore | metastore snapshot restore | metastore on the stopped member's data dir |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for target in etcd metastore; do
	start "$target" http
	"$bench" put --endpoints "$client" --clients 100 --conns 10 --total "$keys" --key-space-size "$keys" \
		--sequential-keys --key-size 16 --val-size 256 >/dev/null
	snap=$work/$target.db
	load=(put --endpoints "$client" --clients 10 --conns 2 --total 20000 --key-size 16 --val-size 256 --key-space-size 1000)
	alone=$(rps "${load[@]}")
	# The save, with the same write load running and the server's RSS
	# sampled and CPU counted meanwhile.
	cpu0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	(while kill -0 "$pid" 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$pid/status"; sleep 0.2; done) >"$work/rss" 2>/dev/null &
	sampler=$!
	rps "${load[@]}" >"$work/during" &
	loader=$!
	t0=$(date +%s.%N)
	"$etcdctl" --endpoints "$client" snapshot save "$snap" >/dev/null 2>&1
	save=$(secs "$t0")
	cpu=$(awk -v a="$cpu0" -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15-a)/hz}' "/proc/$pid/stat")
	wait "$loader"
	kill "$sampler" 2>/dev/null || true
	rss=$(sort -n "$work/rss" | tail -1 | awk '{printf "%.0f", $1/1024}')
	stop
	adopt="-"
	if [ "$target" = etcd ]; then
		# bin/metastore started on the stopped etcd member's own data dir
		# imports it: the time until it serves.
		t0=$(date +%s.%N)
		keep_data=1 start_tries=6000 start metastore http
		adopt="$(secs "$t0") s"
		stop
	fi
	rm -rf "$work/r1" "$work/r2"
	t0=$(date +%s.%N)
	"$etcdutl" snapshot restore "$snap" --data-dir "$work/r1" >/dev/null 2>&1
	r1=$(secs "$t0")
	t0=$(date +%s.%N)
	"$root/bin/metastore" snapshot restore "$snap" --data-dir "$work/r2" >/dev/null 2>&1
	r2=$(secs "$t0")
	rate=$(awk -v m="$(mb "$snap")" -v s="$save" 'BEGIN {printf "%.0f", m/s}')
	echo "| $target | $keys | ${save} s | $(mb "$snap") MB | $rate | $cpu | $rss | $alone | $(cat "$work/during") | ${r1} s | ${r2} s | $adopt |"
done
echo "($(nproc) CPUs; one run; wall times of etcdctl, etcdutl and metastore; server CPU during the save, peak RSS until the write load that ran with it (20,000 puts, 10 clients) ended)"
