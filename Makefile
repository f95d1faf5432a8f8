# sluice — `make help` lists the targets.

GO          ?= go
BIN         := bin/sluice
CONFIG      ?= config.example.yaml
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X github.com/sluice-dev/sluice/pkg/version.Version=$(VERSION) \
               -X github.com/sluice-dev/sluice/pkg/version.Commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The benchmark harness is a Go module of its own, so that its chart
# libraries stay out of the go.mod of what sluice links.
BENCH_DIR   := cmd/sluice-bench

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/sluice
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sluice

.PHONY: run
run: build ## build, then run sluice in the foreground on config.example.yaml
	./$(BIN) run -c $(CONFIG)

.PHONY: test
test: ## run every test with the race detector (integration tests included)
	$(GO) test -race -count=1 ./...
	$(GO) -C $(BENCH_DIR) test -race -count=1 ./...

.PHONY: lint
lint: ## gofmt check, go vet, staticcheck (pinned)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) -C $(BENCH_DIR) vet ./...
	@# The Linux fast paths are build-tagged; the rest builds anywhere.
	GOOS=darwin $(GO) build ./...
	GOOS=windows $(GO) build ./...
	$(GO) -C $(BENCH_DIR) run $(STATICCHECK) ./...

# Config loading and validation under random input (internal/configfuzz):
# seeded with every example config, it must find no panic and no input
# that takes seconds; -timeout turns a hang into a failure.
# The route handler's ClientHello and HTTP parsers get ROUTE_FUZZTIME
# each: they are small, and a few seconds find what a longer run would.
FUZZTIME ?= 30s
ROUTE_FUZZTIME ?= 5s

.PHONY: fuzz
fuzz: ## fuzz config loading (FUZZTIME, default 30s), the route parsers and the PROXY header framing (ROUTE_FUZZTIME, 5s each)
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -timeout 10m ./internal/configfuzz/
	$(GO) test -run '^$$' -fuzz '^FuzzParseHello$$' -fuzztime $(ROUTE_FUZZTIME) -timeout 10m ./plugins/route/
	$(GO) test -run '^$$' -fuzz '^FuzzParseHost$$' -fuzztime $(ROUTE_FUZZTIME) -timeout 10m ./plugins/route/
	$(GO) test -run '^$$' -fuzz '^FuzzFrame$$' -fuzztime $(ROUTE_FUZZTIME) -timeout 10m ./plugins/proxy_protocol/

.PHONY: clean
clean: ## remove build output
	rm -rf bin dist

# ---- packaging: see packaging/README.md -------------------------------

.PHONY: package
package: ## build dist/*.deb and dist/*.rpm for amd64 and arm64 (nfpm, pinned)
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' LDFLAGS='$(LDFLAGS)' packaging/package.sh

.PHONY: test-package
test-package: ## build the packages, lint them, install the .deb here, test it, purge it (root)
	packaging/test-package.sh

# --- hot reload --------------------------------------------------------------
# Reload latency: from a config save to a new connection served by the new
# chain, with 1,000 connections open; reports p50/p99 (and p99 beyond the
# watcher's 150 ms debounce).

.PHONY: bench-reload
bench-reload: ## benchmark reload latency with 1,000 open connections
	$(GO) test -run '^$$' -bench BenchmarkReloadLatency -benchtime 100x ./pkg/reload/

# --- bench: `make bench` writes docs/benchmarks.{md,json,png} -----
# BENCH_HAPROXY=install apt-get installs haproxy first when it is missing
# (root only; plain `make bench` installs nothing and skips the HAProxy
# comparison with a note). BENCH_FLAGS passes flags to `sluice-bench run`,
# e.g. BENCH_FLAGS='-only echo-pingpong -rounds 3'.
BENCH_BIN     := bin/sluice-bench
BENCH_FLAGS   ?=
BENCH_HAPROXY ?=
BENCH_BEFORE  := $(wildcard docs/benchmarks-before.json)

.PHONY: bench
bench: build ## benchmark sluice against bare Go echo servers and proxies, Tokio and HAProxy (~9 min, more when the host steals CPU time; writes docs/benchmarks.md)
	@if [ "$(BENCH_HAPROXY)" = install ] && ! command -v haproxy >/dev/null 2>&1; then \
	  echo "installing haproxy from Debian"; apt-get update -qq && apt-get install -y haproxy; fi
	$(GO) -C $(BENCH_DIR) build -trimpath -o $(CURDIR)/$(BENCH_BIN) .
	@cmd/sluice-bench/tokio-echo/build.sh bin/tokio-echo
	./$(BENCH_BIN) run -sluice $(BIN) $(if $(BENCH_BEFORE),-before $(BENCH_BEFORE)) $(BENCH_FLAGS)
# --- end bench ---------------------------------------------------------------
