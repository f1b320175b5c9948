.DEFAULT_GOAL := help
GO ?= go

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: run
run: ## run the service on the embedded SQLite store (./data/recourse.db)
	$(GO) run ./cmd/recourse serve

.PHONY: demo
demo: ## run an embedded instance full of realistic cases (signed Stripe events) and print tokens
	$(GO) run ./cmd/recourse demo

.PHONY: test
test: ## run every test with -race on SQLite and PostgreSQL (starts what it needs)
	./scripts/test.sh

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: build
build: ## build bin/recourse
	$(GO) build -o bin/recourse ./cmd/recourse

.PHONY: bench
bench: ## run the benchmarks against PostgreSQL (see docs/benchmarks.md)
	./scripts/bench.sh

.PHONY: alerts
alerts: ## check the Prometheus alert rules and run their unit tests (promtool on PATH or in GOPATH/bin)
	@p=$$(command -v promtool || echo $$($(GO) env GOPATH)/bin/promtool); \
	$$p check rules deploy/prometheus/alerts.yml && $$p test rules deploy/prometheus/alerts_test.yml

.PHONY: faults
faults: ## run the fault suite: real processes on PostgreSQL, kills, outages, storms; prints the ledger (docs/faults.md)
	./scripts/faults.sh
