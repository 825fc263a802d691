# MetaStore — one Makefile for every module of the workspace.
# `make` alone prints the targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# MODULES drives every per-module loop below. Keep it in sync with go.work
# (`make verify` checks).
MODULES := storage storage/internal/etcdoracle consensus services/rpcerr services/kv services/lease services/watch services/maintenance services/cluster services/auth server clientsdk clientsdk/internal/e2e compat-tests examples bench tools/etcdtest tools/modcheck

GO        ?= go
GOFLAGS   ?=
RACE      ?= -race
TESTFLAGS ?= -short
COUNT     ?= 10
BENCH     ?= .
FUZZTIME  ?= 30s
RUNS      ?= 1
# make robustness: about 15-25 s per run, 50 runs per round of the fault table.
ROBUSTNESS_TIMEOUT ?= $(shell echo $$(( 20 + $(RUNS) * 20 )))m
BIN       := $(CURDIR)/bin
# Where make cover (and, in CI, make test's module runs) put coverage data.
COVER_DIR := $(CURDIR)/bench-out/cover
# The compat-tests packages that run against given endpoints; robustness
# starts fresh clusters of its own (make robustness).
COMPAT_ENDPOINT_PKGS := ./conformance/... ./linearizability/...
DATA_DIR  ?= $(CURDIR)/default.metastore

export PATH := $(PATH):/usr/local/go/bin

.PHONY: help
help: ## show this help
	@echo "MetaStore — etcd-compatible key-value store"
	@echo
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'
	@echo
	@echo "Modules: $(MODULES)"

.PHONY: deps
deps: ## install what a fresh Debian machine lacks (librocksdb-dev)
	@tools/install-deps.sh

.PHONY: build
build: deps ## build every module (binaries go to bin/)
	@for m in $(MODULES); do echo "==> build $$m"; (cd $$m && $(GO) build -o /dev/null ./...); done
	@mkdir -p $(BIN)
	cd server && $(GO) build -o $(BIN)/metastore ./cmd/metastore
	cd server && $(GO) build -tags failpoints -o $(BIN)/metastore-failpoints ./cmd/metastore # gofail failpoints, for make robustness
	cd storage && $(GO) build -o $(BIN)/storage-demo ./cmd/storage-demo
	cd bench && $(GO) build -o $(BIN)/metastore-bench ./cmd/metastore-bench

.PHONY: run
run: deps ## start a single-node MetaStore on localhost:2379 with its data in ./default.metastore
	@mkdir -p $(BIN)
	@cd server && $(GO) build -o $(BIN)/metastore ./cmd/metastore # only what changed: go build caches the rest
	$(BIN)/metastore --data-dir $(DATA_DIR)

.PHONY: test
test: deps ## run every module's tests (-race -short), then the endpoint suites (clientsdk e2e, compat-tests) against bin/metastore
	@fail=0; covpkgs=; \
	if [ -n "$${CI:-}" ]; then rm -rf $(COVER_DIR) && covpkgs=$$($(GO) list github.com/metastore/metastore/... | paste -sd, -); fi; \
	for m in $(MODULES); do \
		echo "==> test $$m"; \
		if [ -n "$$covpkgs" ] && [ $$m != compat-tests ]; then \
			d=$(COVER_DIR)/data/$$(echo $$m | tr / _); mkdir -p $$d; \
			(cd $$m && $(GO) test $(RACE) $(TESTFLAGS) -count=1 -cover -covermode=atomic -coverpkg=$$covpkgs ./... -args -test.gocoverdir=$$d 2>&1; \
				echo "exit $$?") | sed -E 's/(of statements) in .*/\1 (make cover has the table)/' | tee $$d.log | grep -v -e '^exit ' -e '^warning: no packages being tested depend on'; \
			grep -qx 'exit 0' $$d.log || fail=1; \
		else \
			(cd $$m && $(GO) test $(RACE) $(TESTFLAGS) -count=1 ./...) || fail=1; \
		fi; \
	done; \
	$(MAKE) --no-print-directory build >/dev/null || fail=1; \
	echo "==> etcd, etcdctl and etcdutl v3.7.3 (tools/etcd-tools.sh)"; \
	tools/etcd-tools.sh || fail=1; \
	echo "==> test clientsdk/internal/e2e against bin/metastore"; \
	(cd clientsdk/internal/e2e && ../../../tools/with-metastore.sh $(GO) test -count=1 ./...) || fail=1; \
	echo "==> test examples against bin/metastore"; \
	(cd examples && ../tools/with-metastore.sh $(GO) test -count=1 ./...) || fail=1; \
	echo "==> test bench compare: etcd vs bin/metastore"; \
	(cd bench && METASTORE_BIN=$(BIN)/metastore $(GO) test -count=1 -run TestCompareEndToEnd ./cmd/metastore-bench) || fail=1; \
	echo "==> test compat-tests against bin/metastore, 1 member"; \
	(cd compat-tests && ../tools/with-metastore.sh $(GO) test -count=1 $(COMPAT_ENDPOINT_PKGS)) || fail=1; \
	echo "==> test compat-tests against bin/metastore, 3 members"; \
	(cd compat-tests && METASTORE_MEMBERS=3 ../tools/with-metastore.sh $(GO) test -count=1 $(COMPAT_ENDPOINT_PKGS)) || fail=1; \
	echo "==> the authorization matrix on etcd and bin/metastore"; \
	$(MAKE) --no-print-directory rbac || fail=1; \
	echo "==> the request-field matrix on etcd and bin/metastore"; \
	$(MAKE) --no-print-directory fields || fail=1; \
	echo "==> etcd's metric set against bin/metastore's"; \
	$(MAKE) --no-print-directory metrics-diff || fail=1; \
	echo "==> the etcd mixin's queries on etcd and bin/metastore"; \
	$(MAKE) --no-print-directory mixin || fail=1; \
	echo "==> the JSON gateway on etcd and bin/metastore"; \
	$(MAKE) --no-print-directory gateway || fail=1; \
	echo "==> the fault-injection suite on bin/metastore, each fault once (etcd: two of them) (make robustness)"; \
	ROBUSTNESS_DURATION=$${ROBUSTNESS_DURATION:-5s} ROBUSTNESS_ETCD=$${ROBUSTNESS_ETCD:-kill-leader,partition-leader} ROBUSTNESS_PARALLEL=$${ROBUSTNESS_PARALLEL:-2} \
		$(MAKE) --no-print-directory robustness || fail=1; \
	if [ -n "$${CI:-}" ]; then \
		echo "==> etcd's own e2e tests that pass on MetaStore (compat-tests/upstream/passing.txt)"; \
		UPSTREAM_ONLY=metastore tools/compat-upstream.sh compat-tests/upstream/passing.txt /dev/null || fail=1; \
		echo "==> statement coverage per module over the whole suite (make cover, on the module runs above)"; \
		COVER_REUSE=1 $(MAKE) --no-print-directory cover || fail=1; \
		echo "==> outsiders can go get clientsdk and storage (make release-check)"; \
		$(MAKE) --no-print-directory release-check || fail=1; \
		echo "==> nothing left behind in the working tree"; \
		$(MAKE) --no-print-directory verify-clean || fail=1; \
	fi; \
	exit $$fail

.PHONY: bench-auth
bench-auth: build ## put/range throughput with auth off vs on, etcd 3.7.3 and bin/metastore side by side (docs/benchmarks.md)
	@tools/bench-auth.sh 3

.PHONY: gateway
gateway: build ## the /v3/ JSON gateway (compat-tests/gateway): the same JSON requests to etcd 3.7.3 and bin/metastore, identical answers
	@cd compat-tests && METASTORE_BIN=$(BIN)/metastore $(GO) test -count=1 ./gateway

.PHONY: bench-tls
bench-tls: build ## put/range throughput plain vs mutual client TLS, etcd 3.7.3 and bin/metastore side by side (docs/benchmarks.md)
	@tools/bench-tls.sh 3

.PHONY: bench-metrics
bench-metrics: build ## put/range throughput with --metrics basic vs extensive, etcd 3.7.3 and bin/metastore side by side (docs/benchmarks.md)
	@tools/bench-metrics.sh 3

.PHONY: bench-snapshot
bench-snapshot: build ## snapshot save and restore times and sizes, etcd 3.7.3 and bin/metastore side by side (KEYS=100000; docs/benchmarks.md)
	@tools/bench-snapshot.sh $(or $(KEYS),100000)

.PHONY: bench-lock
bench-lock: build ## Lock+Unlock latency through the server's Lock service and the client-side mutex, 1 and 10 clients, etcd 3.7.3 and bin/metastore side by side (docs/benchmarks.md)
	@tools/bench-lock.sh $(or $(TOTAL),1000)

.PHONY: fields
fields: build ## the request-field matrix (compat-tests/fields): every documented Range and Watch field combination, on etcd 3.7.3 and bin/metastore
	@cd compat-tests && METASTORE_BIN=$(BIN)/metastore $(GO) test -count=1 -run TestMatrix ./fields

.PHONY: metrics-diff
metrics-diff: build ## etcd 3.7.3's metric names and labels that bin/metastore lacks, against the documented list (compat-tests/metrics)
	@cd compat-tests && METASTORE_BIN=$(BIN)/metastore $(GO) test -count=1 -v -run TestMetricSetMatchesEtcd ./metrics

.PHONY: mixin
mixin: build ## the etcd mixin (compat-tests/mixin): its rules pass promtool check and its test.yaml; promtool evaluates them on series scraped from three etcd 3.7.3 and three bin/metastore members; dashboard queries resolve
	@cd compat-tests && METASTORE_BIN=$(BIN)/metastore $(GO) test -count=1 -v -run TestMixin ./mixin

.PHONY: rbac
rbac: build ## the authorization matrix (compat-tests/rbac): every request kind x every principal, on etcd 3.7.3 and bin/metastore
	@cd compat-tests && METASTORE_BIN=$(BIN)/metastore $(GO) test -count=1 -run TestMatrix ./rbac

.PHONY: compat-upstream
compat-upstream: build ## run etcd's own e2e tests (compat-tests/upstream/tests.txt) on etcd 3.7.3 and MetaStore; updates docs/compatibility.md
	@tools/compat-upstream.sh

.PHONY: compat
compat: ## run the conformance suite against ENDPOINTS=host:port[,...] (default: an embedded etcd 3.7.3)
	@cd compat-tests && ETCD_ENDPOINTS="$(ENDPOINTS)" $(GO) test -count=1 -v $(COMPAT_ENDPOINT_PKGS) 2>&1 | tee /dev/stderr | \
		awk '/^--- PASS/{p++} /^--- SKIP/{s++} /^--- FAIL/{f++} END{printf "compat: %d passed, %d skipped, %d failed\n", p, s, f; exit f>0}' 

.PHONY: funcs
funcs: ## function sizes per module (median, p90, longest; tests excluded)
	@cd tools/modcheck && GOWORK=off $(GO) run . funcs $(addprefix ../../,$(MODULES))

.PHONY: cover
cover: deps ## statement coverage per module over the whole suite (-coverpkg across the workspace); table + HTML in bench-out/cover
	@tools/cover.sh $(MODULES)

.PHONY: robustness
robustness: build ## the fault-injection suite (compat-tests/robustness): etcd's robustness traffic and validators on fresh etcd 3.7.3 and bin/metastore clusters under each fault (RUNS=N runs of each; ROBUSTNESS_DURATION=20s a run; ROBUSTNESS_TARGET=etcd|metastore; ROBUSTNESS_ETCD=fault,... for the reference; ROBUSTNESS_PARALLEL=N runs at once, for a quicker check, not for the figures; results table: ROBUSTNESS_RESULTS=file)
	@tools/etcd-tools.sh etcd
	@cd compat-tests && METASTORE_BIN=$(BIN)/metastore ROBUSTNESS_RUNS=$(RUNS) $(GO) test -count=1 -timeout $(ROBUSTNESS_TIMEOUT) -parallel $${ROBUSTNESS_PARALLEL:-1} -run 'TestRobustness|TestDiskFull|TestPowerLoss|TestRestartedMemberNeverGoesBack' -v ./robustness

.PHONY: test-long
test-long: deps ## run every module's tests without -short (crash and long randomized tests)
	@$(MAKE) test TESTFLAGS=

.PHONY: fuzz
fuzz: deps ## run every fuzz target for FUZZTIME each (default 30s)
	@for m in $(MODULES); do \
		(cd $$m && for pkg in $$($(GO) list ./...); do \
			for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
				echo "==> $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
			done; done) || exit 1; \
	done

.PHONY: verify
verify: deps verify-fmt verify-vet verify-tidy verify-deps verify-work verify-files verify-modzip verify-versions ## gofmt, vet, go mod tidy, dependency directions, go.work, no large tracked files, module zips, aligned versions

.PHONY: verify-fmt
verify-fmt:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: verify-vet
verify-vet:
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

.PHONY: verify-tidy
verify-tidy:
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) mod tidy -diff) || { echo "go mod tidy needed in $$m"; exit 1; }; done

.PHONY: verify-deps
verify-deps: ## fail on any forbidden import edge between modules
	@tools/verify-deps.sh $(MODULES)

# MAX_FILE_BYTES bounds a tracked file (1 MiB): test data and generated
# artefacts belong in t.TempDir() or a cache, not in every clone.
MAX_FILE_BYTES ?= 1048576

.PHONY: verify-files
verify-files: ## fail on a tracked file over MAX_FILE_BYTES
	@bad=0; while IFS= read -r -d '' f; do \
		if [ -f "$$f" ] && [ $$(stat -c %s "$$f") -gt $(MAX_FILE_BYTES) ]; then \
			echo "verify-files: $$f is $$(stat -c %s "$$f") bytes, over $(MAX_FILE_BYTES): keep it out of git"; bad=1; fi; \
	done < <(git ls-files -z); exit $$bad

.PHONY: verify-modzip
verify-modzip: ## fail on a module the go command could not zip (reserved names like aux.go, case collisions)
	@cd tools/modcheck && GOWORK=off $(GO) run . zip-check $(addprefix $(CURDIR)/,$(MODULES))

.PHONY: verify-versions
verify-versions: ## fail when modules require one dependency directly at different versions
	@cd tools/modcheck && GOWORK=off $(GO) run . versions $(addprefix ../../,$(MODULES))

.PHONY: release-check
release-check: ## zip every module at its release version into a file-system proxy; go get clientsdk alone and storage alone outside the workspace, build and run a program on each
	@tools/release-check.sh $(MODULES)

.PHONY: verify-clean
verify-clean: ## fail on untracked files in the tree (what a test run must never leave behind)
	@left=$$(git status --porcelain --untracked-files=all | grep '^??' || true); \
	if [ -n "$$left" ]; then echo "verify-clean: files left in the working tree (tests write under t.TempDir() only):"; echo "$$left"; exit 1; fi

.PHONY: verify-work
verify-work:
	@for m in $(MODULES); do grep -qE "^\s*\./$$m\s*$$|use \./$$m\s*$$" go.work || { echo "module $$m missing from go.work"; exit 1; }; done

.PHONY: bench
bench: deps ## run benchmarks (COUNT=10), output in bench-out/<sha>.txt
	@mkdir -p bench-out
	@sha=$$(git rev-parse --short HEAD 2>/dev/null || echo dev); \
	for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) ./...); done | tee bench-out/$$sha.txt

ROUNDS         ?= 3
BENCH_DURATION ?= 5s
WORKLOADS      ?= all

.PHONY: bench-compare
bench-compare: build ## etcd 3.7.3 vs bin/metastore, standard workloads A/B for ROUNDS rounds of BENCH_DURATION; updates docs/benchmarks.md
	@rm -rf $(CURDIR)/.bench-compare
	$(BIN)/metastore-bench --plot docs/benchmarks-compare.svg compare --metastore-bin $(BIN)/metastore \
		--rounds $(ROUNDS) --duration $(BENCH_DURATION) --workloads $(WORKLOADS) --data-dir $(CURDIR)/.bench-compare \
		--update-doc docs/benchmarks.md --record-command "make bench-compare ROUNDS=$(ROUNDS) BENCH_DURATION=$(BENCH_DURATION) WORKLOADS=$(WORKLOADS)"
	@rm -rf $(CURDIR)/.bench-compare

.PHONY: clean
clean: ## remove build output and the local data dir
	rm -rf $(BIN) bench-out $(DATA_DIR) .bench-compare
