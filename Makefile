# palisade — hardened containerd shim. `make help` lists the targets.

GO          ?= go
BIN         ?= bin
DIST        ?= dist
PREFIX      ?= /usr/local
CACHE       ?= $(or $(PALISADE_CACHE),$(HOME)/.cache/palisade)
GOLANGCI    := $(CACHE)/tools/golangci-lint-$(shell awk '$$1=="golangci-lint"{print $$2}' testing/harness/tools.txt)/golangci-lint
export PALISADE_CACHE := $(CACHE)

.DEFAULT_GOAL := help
.PHONY: help build deps demo test unit e2e lint fuzz bench install clean release release-check test-arm64 test-install critest

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build containerd-shim-palisade-v2 (static, pure Go), palisade-init (static, C + Go + libseccomp) and palisade into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/containerd-shim-palisade-v2
	$(GO) build -trimpath -o $(BIN)/ ./cmd/palisade
	CGO_ENABLED=1 $(GO) build -trimpath -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o $(BIN)/ ./cmd/palisade-init

deps: ## install what tests and demo need (apt packages; containerd, runc, golangci-lint cached by version)
	bash testing/setup.sh

demo: deps ## start a private containerd and run a real container under palisade, showing what was hardened and refused
	$(GO) run ./testing/cmd/demo

test: deps lint ## run every unit and end-to-end test (as root); fails instead of skipping when a prerequisite is missing
	@mkdir -p $(BIN); rm -f $(BIN)/skipped.txt
	# the shim's build has no libseccomp (cgo off): its seccomp package answers from the generated table
	CGO_ENABLED=0 $(GO) test -count=1 ./seccomp/
	PALISADE_E2E_REQUIRED=1 PALISADE_SKIPS=$(abspath $(BIN))/skipped.txt $(GO) test -count=1 ./...; status=$$?; \
		if [ -s $(BIN)/skipped.txt ]; then echo "skipped: this host lacks what these tests need:"; sed 's/^/  /' $(BIN)/skipped.txt; fi; exit $$status
	# fuzz smoke runs by count, not by time: Go 1.26's fuzzer can report a
	# "context deadline exceeded" failure at the end of a -fuzztime window on
	# a loaded machine, with no failing input (golang/go#75804, fixed in 1.27)
	$(GO) test -run XXX -fuzz 'FuzzAnnotations$$' -fuzztime 100000x ./libshim/policy/
	$(GO) test -run XXX -fuzz 'FuzzExecArgs$$' -fuzztime 150000x ./cmd/palisade-init/
	$(GO) test -run XXX -fuzz 'FuzzMemfdPID$$' -fuzztime 50000x ./cmd/palisade-init/
	$(GO) test -run XXX -fuzz 'FuzzParseNormalizedNamed$$' -fuzztime 50000x ./libshim/imageref/

unit: ## run the unit tests only (no root needed)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /testing/e2e)

e2e: deps ## run the end-to-end tests only, containerd API and CRI (as root)
	PALISADE_E2E_REQUIRED=1 $(GO) test -count=1 -v ./testing/e2e/ ./testing/cri/

critest: ## CRI conformance (critest) against the runc and palisade handlers; writes docs/kubernetes.md's table (root; not in make test)
	start=$$(date +%s) && bash testing/setup.sh && bash testing/setup-critest.sh && \
		$(GO) run ./testing/cmd/critest -started $$start $(if $(FOCUS),-focus '$(FOCUS)')

lint: deps ## gofmt, go vet and golangci-lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GOLANGCI) run ./...

fuzz: ## fuzz the pipeline (whole specs, every field), workload annotations, palisade-init's C parsers and the image reference parser, a minute each
	$(GO) test -run XXX -fuzz 'FuzzSpec$$' -fuzztime 60s ./libshim/harden/
	$(GO) test -run XXX -fuzz 'FuzzSpecFields$$' -fuzztime 60s ./libshim/harden/
	$(GO) test -run XXX -fuzz 'FuzzAnnotations$$' -fuzztime 60s ./libshim/policy/
	$(GO) test -run XXX -fuzz 'FuzzExecArgs$$' -fuzztime 60s ./cmd/palisade-init/
	$(GO) test -run XXX -fuzz 'FuzzInterp$$' -fuzztime 60s ./cmd/palisade-init/
	$(GO) test -run XXX -fuzz 'FuzzMemfdPID$$' -fuzztime 60s ./cmd/palisade-init/
	$(GO) test -run XXX -fuzz 'FuzzParseNormalizedNamed$$' -fuzztime 60s ./libshim/imageref/

bench: deps ## benchmarks: Go (pipeline, create rewrite, exec helper) and palisade vs the stock runc shim (root; writes docs/benchmarks.md)
	@mkdir -p $(BIN)
	$(GO) test -run XXX -bench . -benchmem -count 6 ./libshim/harden ./libshim/service ./seccomp ./cmd/palisade-init > $(BIN)/bench.txt; \
		status=$$?; grep -E '^(Benchmark|ok|FAIL)' $(BIN)/bench.txt; exit $$status
	@command -v crun >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq crun >/dev/null || echo "crun could not be installed: the report says so"
	$(GO) run ./testing/cmd/bench

install: build ## install the binaries into $(PREFIX)/bin
	install -m 0755 $(BIN)/containerd-shim-palisade-v2 $(BIN)/palisade-init $(BIN)/palisade $(PREFIX)/bin/

release: ## release tarballs for linux/amd64 and arm64, SPDX SBOMs and SHA256SUMS into dist/, from HEAD, reproducibly (root: installs the cross toolchain)
	bash testing/setup-cross.sh
	rm -rf $(DIST)
	$(GO) run ./testing/cmd/release -out $(DIST)

release-check: ## build the release of HEAD twice (two paths, once from an empty build cache) and compare every byte
	bash testing/setup-cross.sh
	$(GO) run ./testing/cmd/release -check

test-install: deps release ## contrib/install.sh end to end: the release tarball into a private prefix and a private containerd (root)
	PALISADE_E2E_REQUIRED=1 PALISADE_RELEASE=$(abspath $(DIST))/palisade-$$(cat VERSION)-linux-$$($(GO) env GOARCH).tar.gz \
		$(GO) test -count=1 -v -run 'TestInstallRelease' ./testing/e2e/

test-arm64: release ## every package's unit tests as arm64 code under qemu, and the arm64 release binaries' CLI
	timeout 20m bash testing/arm64.sh

clean: ## remove build output
	rm -rf $(BIN) $(DIST)
