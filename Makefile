# starttls — build, test, demo, interop.
GO          ?= go
BIN         := bin/starttls
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOBIN       := $(shell $(GO) env GOPATH)/bin

.PHONY: all build test lint demo interop fuzz bench bench-peers bench-audit bench-proxy clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/starttls

# The whole unit and loopback suite, with the race detector, after the linters.
test: lint
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install $(STATICCHECK)
	$(GOBIN)/staticcheck ./...

# Build, start the built-in lab on loopback and check every endpoint.
demo: build
	./$(BIN) check --lab

# Real servers (Postfix, Dovecot) and real clients (openssl, curl, swaks,
# Python) on loopback; installs what it needs from Debian's packages.
interop:
	bash scripts/interop.sh

# A short run of every fuzz target (FUZZTIME each).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# starttls against openssl s_client, posttls-finger and testssl.sh on the
# lab, side by side (installs them from Debian's packages as root; ~1.5 min).
bench-peers:
	bash scripts/bench.sh

# The TLS audit (check) against testssl.sh --full and sslscan on one real
# Postfix (interop module "audit"): time, CPU, connections, findings.
bench-audit:
	bash scripts/bench-audit.sh

# starttls proxy (TLS termination) against stunnel and HAProxy on loopback:
# throughput, handshakes/s, added latency, memory per idle connection, CPU
# per GB; one table, also written to BENCH_OUT (installs both from Debian's
# packages as root when missing; ~8 min).
bench-proxy:
	bash scripts/bench-proxy.sh

clean:
	rm -rf bin
