# Courier — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY := .venv/bin/python
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTEST := $(PY) -m pytest
export PREFECT_HOME ?= $(CURDIR)/.prefect
# Tests and one-off runs must not reach a server you left running.
TEST_ENV := env -u PREFECT_API_URL PREFECT_HOME=$(CURDIR)/.prefect-test COURIER_REQUIRE_PRISM=1

.PHONY: help setup demo run dashboard deploy stop test test-unit test-integration test-e2e check lint typecheck fmt

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --frozen --python python3
	@touch $@

.run/system-deps: scripts/system-deps.sh
	scripts/system-deps.sh
	@mkdir -p .run && touch $@

# Stoplight Prism (npm) checks the Twilio adapter and sandbox against Twilio's OpenAPI.
tools/conformance/node_modules/.installed: tools/conformance/package.json tools/conformance/package-lock.json
	cd tools/conformance && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: .venv/.synced .run/system-deps  ## create the environment (Python from uv.lock, fonts, poppler)

demo: setup  ## generate data, start sandbox + Prefect server, run the nightly send, print a summary
	scripts/demo.sh

run: setup  ## run the nightly send once more against the running services
	source scripts/credentials.sh && PREFECT_API_URL=http://127.0.0.1:4200/api $(PY) -m courier run

dashboard: setup  ## the Send to Buyer dashboard on http://127.0.0.1:8501
	source scripts/credentials.sh && PREFECT_API_URL=http://127.0.0.1:4200/api \
	$(PY) -m streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port 8501 \
		--server.headless true --browser.gatherUsageStats false

deploy: setup  ## register the 02:00 Asia/Bangkok deployment with the running Prefect server
	PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/prefect work-pool create courier-local \
		--type process 2>/dev/null || true
	COURIER_HOME=$(CURDIR) PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/prefect --no-prompt \
		deploy --all

stop:  ## stop the sandbox and Prefect server started by `make demo`
	scripts/services.sh stop

test: setup tools/conformance/node_modules/.installed  ## every test tier: unit, integration, e2e
	$(TEST_ENV) $(PYTEST) tests/unit tests/integration tests/e2e

test-unit: setup  ## pure tests (milliseconds)
	$(TEST_ENV) $(PYTEST) tests/unit

test-integration: setup tools/conformance/node_modules/.installed  ## real DuckDB files, sandboxes on loopback, WeasyPrint
	$(TEST_ENV) $(PYTEST) tests/integration

test-e2e: setup  ## the nightly flow under Prefect against the sandboxes
	$(TEST_ENV) $(PYTEST) tests/e2e

check: lint typecheck  ## ruff + mypy

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: setup
	$(PY) -m mypy

fmt: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
