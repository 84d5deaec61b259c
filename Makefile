# dialoq: every target works on a fresh machine with Go; `test` needs Redis and
# PostgreSQL on 127.0.0.1 (.ci/run installs and starts them when missing).
GO ?= go
STATICCHECK_VERSION ?= v0.8.2

.PHONY: run test lint fmt bench fuzz flows-lint

run:
	$(GO) run ./cmd/dialoq bot --fake

test:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run ./cmd/dialoq flows lint
	$(GO) test -race -count=1 -timeout 30m ./...

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run ./cmd/dialoq flows lint

fmt:
	gofmt -w $$(git ls-files '*.go')

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz:
	$(GO) test ./flows -run '^$$' -fuzz FuzzEngine -fuzztime 60s
	$(GO) test ./flows -run '^$$' -fuzz FuzzLoad -fuzztime 60s
	$(GO) test ./flows/expr -run '^$$' -fuzz FuzzParseEval -fuzztime 60s

flows-lint:
	$(GO) run ./cmd/dialoq flows lint

# Load, fault and soak runs of bot/loadtest (docs/benchmarks.md, docs/reliability.md).
# They need Redis on 127.0.0.1 and redis-server on the PATH, take minutes, and are
# not part of `make test`. LOADTEST_ARGS adds flags, e.g. LOADTEST_ARGS="--users 2000".
LOADTEST_BIN ?= $(CURDIR)/bin/dialoq-loadtest
LOADTEST_ARGS ?=
SOAK ?= 10m

.PHONY: loadtest chaos soak loadtest-bin

loadtest-bin:
	$(GO) build -o $(LOADTEST_BIN) ./cmd/dialoq

loadtest: loadtest-bin
	$(LOADTEST_BIN) loadtest $(LOADTEST_ARGS)

chaos: loadtest-bin
	$(LOADTEST_BIN) loadtest --chaos all --bin $(LOADTEST_BIN) $(LOADTEST_ARGS)

soak: loadtest-bin
	$(LOADTEST_BIN) loadtest --soak $(SOAK) --exec --bin $(LOADTEST_BIN) --users 300 --sample 15s $(LOADTEST_ARGS)
