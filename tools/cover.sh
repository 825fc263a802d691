#!/usr/bin/env bash
# Statement coverage of every module, counted over the whole test suite:
# each module's tests run with -coverpkg over every package of the
# workspace (so services exercised through the server count for the
# services), the counters are merged, and a per-module table is printed
# (and written to COVER_OUT/table.md) with an HTML report in
# COVER_OUT/cover.html. Tests run as in make test (TESTFLAGS, default -short);
# counters are atomic, as -race makes them, so that both kinds of run merge.
# With COVER_REUSE=1 the module tests are not run again where their data
# is in COVER_OUT/data/<module>, which make test's -race runs fill in CI;
# a module without it runs here (compat-tests, whose tests need the
# binaries make test builds after its module runs), as do the endpoint
# suites.
# Usage: tools/cover.sh MODULE...
set -euo pipefail
# failed LOG prints what a failed run's log says went wrong, so that CI's
# output names the test.
failed() {
	grep -E -A1 -- '^(--- FAIL|FAIL|panic:)|Error Trace|Error:|Messages:' "$1" | head -60 >&2 || true
}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${COVER_OUT:-$root/bench-out/cover}
flags=${TESTFLAGS:--short}
reuse=${COVER_REUSE:-}
if [ -n "$reuse" ]; then
	rm -rf "$out/data/"*_metastore "$out/data/compat-tests_fresh"
else
	rm -rf "$out" && mkdir -p "$out/data"
fi
cd "$root"
pkgs=$(go list github.com/metastore/metastore/... | paste -sd, -)
for m in "$@"; do
	[ -n "$reuse" ] && [ -d "$out/data/${m//\//_}" ] && continue
	mkdir -p "$out/data/${m//\//_}"
	echo "==> cover $m" >&2
	(cd "$m" && go test $flags -count=1 -cover -covermode=atomic -coverpkg="$pkgs" ./... \
		-args -test.gocoverdir="$out/data/${m//\//_}" >"$out/${m//\//_}.log" 2>&1) ||
		{ echo "cover: tests of $m failed (see $out/${m//\//_}.log)" >&2; failed "$out/${m//\//_}.log"; exit 1; }
done
# As make test: the endpoint suites also run against bin/metastore.
if [ -x "$root/bin/metastore" ]; then
	for pkg in compat-tests clientsdk/internal/e2e examples; do
		d="$out/data/${pkg//\//_}_metastore"; mkdir -p "$d"
		echo "==> cover $pkg against bin/metastore" >&2
		(cd "$pkg" && "$root/tools/with-metastore.sh" go test -count=1 -cover -covermode=atomic -coverpkg="$pkgs" \
			$( [ "$pkg" = compat-tests ] && echo ./conformance/... ./linearizability/... || echo ./... ) \
			-args -test.gocoverdir="$d" >"$out/${pkg//\//_}_metastore.log" 2>&1) ||
			{ echo "cover: $pkg against bin/metastore failed (see $out/${pkg//\//_}_metastore.log)" >&2; failed "$out/${pkg//\//_}_metastore.log"; exit 1; }
	done
	# The suites that start their own etcd and bin/metastore.
	d="$out/data/compat-tests_fresh"; mkdir -p "$d"
	echo "==> cover compat-tests rbac and gateway on bin/metastore" >&2
	(cd compat-tests && METASTORE_BIN="$root/bin/metastore" go test -count=1 -cover -covermode=atomic -coverpkg="$pkgs" ./rbac/... ./gateway/... \
		-args -test.gocoverdir="$d" >"$out/compat-tests_fresh.log" 2>&1) ||
		{ echo "cover: compat-tests rbac/gateway failed (see $out/compat-tests_fresh.log)" >&2; failed "$out/compat-tests_fresh.log"; exit 1; }
fi
dirs=$(find "$out/data" -mindepth 1 -maxdepth 1 -type d | paste -sd, -)
go tool covdata textfmt -i="$dirs" -o "$out/cover.out"
go tool cover -html="$out/cover.out" -o "$out/cover.html"
# Per module: statements covered by any test / statements, each block once.
modules=$(printf '%s\n' "$@" | sort -r) # longest prefix first (storage/internal/etcdoracle before storage)
awk -v mods="$modules" '
	BEGIN { n = split(mods, ms, "\n") }
	NR == 1 { next }
	{
		split($1, a, ":"); file = a[1]; key = $1
		stmts[key] = $2; if ($3 > 0) hit[key] = 1
		if (!(key in owner)) {
			rel = file; sub("^github.com/metastore/metastore/", "", rel)
			for (i = 1; i <= n; i++) if (index(rel, ms[i] "/") == 1) { owner[key] = ms[i]; break }
		}
	}
	END {
		for (k in stmts) if (k in owner) { m = owner[k]; total[m] += stmts[k]; if (k in hit) cov[m] += stmts[k]; all += stmts[k]; if (k in hit) allc += stmts[k] }
		printf "| module | statements | covered |\n|---|---|---|\n"
		for (i = n; i >= 1; i--) { m = ms[i]; if (total[m] > 0) printf "| %s | %d | %.1f%% |\n", m, total[m], 100 * cov[m] / total[m] }
		printf "| **all** | %d | %.1f%% |\n", all, 100 * allc / all
	}' "$out/cover.out" | tee "$out/table.md"
echo "cover: HTML report in $out/cover.html" >&2
# Every module must have COVER_MIN% (default 80) of its statements covered.
min=${COVER_MIN:-80}
low=$(awk -F'|' -v min="$min" '$2 !~ /module|---|all/ && $4 != "" { v = $4; sub("%", "", v); if (v + 0 < min) printf "%s(%s) ", $2, $4 }' "$out/table.md")
if [ -n "$low" ]; then echo "cover: below ${min}%: $low" >&2; exit 1; fi
