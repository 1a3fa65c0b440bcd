# Self-documenting Makefile: `make` (or `make help`) lists every target with
# the `##` comment written beside it.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
export GOTOOLCHAIN := local

# Local services (Postgres 15 with trust auth, Redis 7). The environment wins.
# The service runs on the database `analyses`, as in docker-compose.yml (make
# db creates it); the tests make scratch databases from the server's postgres.
LOCAL_DATABASE_URL := postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
RUN_DATABASE_URL := postgres://postgres@127.0.0.1:5432/analyses?sslmode=disable
LOCAL_REDIS_URL := redis://127.0.0.1:6379/0
DATABASE_URL ?= $(RUN_DATABASE_URL)
REDIS_URL ?= $(LOCAL_REDIS_URL)
# Tests take TEST_DATABASE_URL and TEST_REDIS_URL from the environment (or the
# make command line) when set; else internal/testenv uses the local services
# when they answer, else starts containers with dockertest, else says how to
# provide the servers.

# Packages `make test-docker` runs in containers.
DOCKER_PKGS ?= ./internal/testenv/ ./repository/ ./cache/

# The database DATABASE_URL names, and the same server's maintenance database.
DB_NAME = $(shell printf '%s' '$(DATABASE_URL)' | sed -E 's|^[^/]*//[^/]*/?([^?]*).*|\1|')
DB_ADMIN_URL = $(shell printf '%s' '$(DATABASE_URL)' | sed -E 's|^([^/]*//[^/?]*)/?[^?]*|\1/postgres|')

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

.PHONY: help run db build test test-docker client-test docs-browser-test client-types docs lint up down bench bench-micro bench-compare

help: ## show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: db ## run the service on :8000 against the local Postgres (database analyses, created when missing) and Redis
	DATABASE_URL='$(DATABASE_URL)' REDIS_URL='$(REDIS_URL)' $(GO) run ./cmd/api

db: ## create the database DATABASE_URL names (analyses by default) when it is missing (needs psql)
	@if [ -z '$(DB_NAME)' ]; then :; elif ! command -v psql >/dev/null; then \
		echo "psql not installed: database $(DB_NAME) not checked (apt-get install postgresql-client)"; \
	elif [ "$$(psql '$(DB_ADMIN_URL)' -Atqc "select 1 from pg_database where datname = '$(DB_NAME)'")" != 1 ]; then \
		echo "creating database $(DB_NAME)"; psql '$(DB_ADMIN_URL)' -qc 'create database "$(DB_NAME)"'; \
	fi

build: ## build the service to bin/api (static, trimmed)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/api ./cmd/api

test: ## run every test with -race against real Postgres and Redis: TEST_DATABASE_URL/TEST_REDIS_URL if set, else the local services if they answer, else dockertest
	$(GO) test -race -count=1 -p 2 -timeout 20m ./...

test-docker: ## run DOCKER_PKGS with -race in containers only (dockertest, host network), on Postgres and Redis images built locally from Debian packages (needs root, a Docker engine, debootstrap)
	images=$$(internal/testenv/images/build.sh); \
	TEST_DATABASE_URL= TEST_REDIS_URL= TEST_FORCE_DOCKER=1 TEST_DOCKER_NETWORK=host \
		TEST_POSTGRES_IMAGE="$${images% *}" TEST_REDIS_IMAGE="$${images#* }" \
		$(GO) test -race -count=1 -p 2 -timeout 20m $(DOCKER_PKGS)

client-test: ## only the generated TypeScript client test (part of make test; needs node and npm): npm ci, types from the served /openapi.json, tsc --strict, the flows
	$(GO) test -count=1 -run '^TestTypeScriptClient$$' -v ./cmd/api

docs-browser-test: ## only the docs browser test (part of make test; needs node, npm and chromium): /docs and /redoc in headless Chromium, Try it out, no request to another origin
	$(GO) test -count=1 -run '^TestDocsInBrowser$$' -v ./cmd/api

client-types: ## regenerate clients/typescript/generated/schema.d.ts from a running service (OPENAPI_URL, default http://127.0.0.1:8000/openapi.json)
	cd clients/typescript && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run generate

docs: ## regenerate docs/openapi.json and docs/openapi.yaml from the swag annotations
	$(GO) run ./docs/cmd/openapi-fastapi

lint: ## gofmt check, go vet, staticcheck (pinned in go.mod); docker-compose.yml is validated by TestComposeFile in make test
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

up: ## start api, postgres and redis with docker compose (http://localhost:8000/docs); BuildKit, for the Dockerfile's cache mounts
	DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1 $(COMPOSE) up -d --build

down: ## stop and remove the compose services
	$(COMPOSE) down

bench: build db ## HTTP benchmark with wrk against bin/api and its ceilings, rewrites docs/benchmarks.md (QUICK=1: < 2 min; BENCH_DOCS=dir; PROFILE=1: CPU profiles)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends wrk; }
	DATABASE_URL='$(DATABASE_URL)' REDIS_URL='$(REDIS_URL)' \
		$(GO) run ./cmd/bench -server bin/api $(if $(QUICK),-quick) $(if $(PROFILE),-profile) \
		-out $(BENCH_DOCS)/benchmarks.md -svg $(BENCH_DOCS)/benchmarks.svg

bench-micro: ## record Go micro-benchmarks to bin/bench/NAME.txt (NAME=old|new, BENCH=regex, PKGS, COUNT)
	@mkdir -p bin/bench
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(PKGS) | tee bin/bench/$(NAME).txt

bench-compare: ## benchstat bin/bench/old.txt against bin/bench/new.txt (record each with make bench-micro NAME=...)
	$(GO) tool benchstat bin/bench/old.txt bin/bench/new.txt
