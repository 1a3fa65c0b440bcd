# Self-documenting Makefile: `make` (or `make help`) lists every target with
# the `##` comment written beside it.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
export GOTOOLCHAIN := local

# Local services (Postgres 15 with trust auth, Redis 7). The environment wins.
LOCAL_DATABASE_URL := postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
LOCAL_REDIS_URL := redis://127.0.0.1:6379/0
DATABASE_URL ?= $(LOCAL_DATABASE_URL)
REDIS_URL ?= $(LOCAL_REDIS_URL)
TEST_DATABASE_URL ?= $(LOCAL_DATABASE_URL)
TEST_REDIS_URL ?= $(LOCAL_REDIS_URL)

# `docker compose` (plugin) when present, else the Debian `docker-compose`.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

# Root installs packages directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Where make bench writes benchmarks.md and benchmarks.svg.
BENCH_DOCS ?= docs

# Go micro-benchmarks for bench-compare: regex, packages, repetitions.
BENCH ?= .
PKGS ?= ./...
COUNT ?= 6
NAME ?= new

.PHONY: help run build test client-test client-types docs lint up down bench bench-micro bench-compare

help: ## show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## run the service on :8000 against the local Postgres and Redis
	DATABASE_URL='$(DATABASE_URL)' REDIS_URL='$(REDIS_URL)' $(GO) run ./cmd/api

build: ## build the service to bin/api (static, trimmed)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/api ./cmd/api

test: ## run every test with -race against real Postgres and Redis (TEST_DATABASE_URL, TEST_REDIS_URL)
	TEST_DATABASE_URL='$(TEST_DATABASE_URL)' TEST_REDIS_URL='$(TEST_REDIS_URL)' \
		$(GO) test -race -count=1 -p 2 -timeout 20m ./...

client-test: ## only the generated TypeScript client test (part of make test; needs node and npm): npm ci, types from the served /openapi.json, tsc --strict, the flows
	TEST_DATABASE_URL='$(TEST_DATABASE_URL)' TEST_REDIS_URL='$(TEST_REDIS_URL)' \
		$(GO) test -count=1 -run '^TestTypeScriptClient$$' -v ./cmd/api

client-types: ## regenerate clients/typescript/generated/schema.d.ts from a running service (OPENAPI_URL, default http://127.0.0.1:8000/openapi.json)
	cd clients/typescript && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run generate

docs: ## regenerate docs/openapi.json and docs/openapi.yaml from the swag annotations
	$(GO) run ./docs/cmd/openapi-fastapi

lint: ## gofmt check, go vet, staticcheck (pinned in go.mod), and docker-compose config check when docker-compose is installed
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@if command -v docker-compose >/dev/null 2>&1; then \
		echo "docker-compose config -q"; docker-compose config -q; \
	else echo "docker-compose not installed: compose file not checked"; fi

up: ## start api, postgres and redis with docker compose (http://localhost:8000/docs)
	$(COMPOSE) up -d --build

down: ## stop and remove the compose services
	$(COMPOSE) down

bench: build ## HTTP benchmark with wrk against bin/api and its ceilings, rewrites docs/benchmarks.md (QUICK=1: < 2 min; BENCH_DOCS=dir; PROFILE=1: CPU profiles)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends wrk; }
	DATABASE_URL='$(DATABASE_URL)' REDIS_URL='$(REDIS_URL)' \
		$(GO) run ./cmd/bench -server bin/api $(if $(QUICK),-quick) $(if $(PROFILE),-profile) \
		-out $(BENCH_DOCS)/benchmarks.md -svg $(BENCH_DOCS)/benchmarks.svg

bench-micro: ## record Go micro-benchmarks to bin/bench/NAME.txt (NAME=old|new, BENCH=regex, PKGS, COUNT)
	@mkdir -p bin/bench
	TEST_DATABASE_URL='$(TEST_DATABASE_URL)' TEST_REDIS_URL='$(TEST_REDIS_URL)' \
		$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(PKGS) | tee bin/bench/$(NAME).txt

bench-compare: ## benchstat bin/bench/old.txt against bin/bench/new.txt (record each with make bench-micro NAME=...)
	$(GO) tool benchstat bin/bench/old.txt bin/bench/new.txt
