# Two commands on a fresh machine: `make run` (the whole stack on embedded defaults) and
# `make test` (lint, types, tests). Both create or update the virtualenv first.
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PORT ?= 8000
DATA_DIR ?= .data

.PHONY: run run-tls test lint typecheck pytest sync uv frontend-assets benchmark benchmark-checks \
	benchmark-wide benchmark-dashboard benchmark-performance screenshots

uv:
	@command -v uv >/dev/null 2>&1 || test -x $(HOME)/.local/bin/uv || \
		python3 -m pip install --quiet --user "uv==$(UV_VERSION)"

sync: uv
	$(UV) sync --frozen

# The dashboard's npm assets (htmx, its SSE extension, uPlot, axe-core for the tests), from
# the committed lockfile; reinstalled only when the lockfile changes.
FRONTEND_STAMP := frontend/node_modules/.package-lock.json

frontend-assets: $(FRONTEND_STAMP)

$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

run: sync frontend-assets
	$(UV) run --frozen drift-monitor-server dev --port $(PORT) --data-dir $(DATA_DIR)

# The same stack behind Traefik over HTTPS (reverse-proxy/ as in compose, a local
# certificate in $(DATA_DIR)/tls): https://localhost:$(HTTPS_PORT)/ (deploy/tls/run_tls.py).
HTTPS_PORT ?= 8443
run-tls: sync frontend-assets
	$(UV) run --frozen python deploy/tls/run_tls.py --port $(PORT) --https-port $(HTTPS_PORT) \
		--data-dir $(DATA_DIR)

lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports

typecheck: sync
	$(UV) run --frozen mypy

pytest: sync frontend-assets
	$(UV) run --frozen pytest

test: lint typecheck pytest

benchmark: sync
	$(UV) run --frozen python benchmarks/api_vs_pymongo.py

# Server-side checks against Evidently (its own venv, benchmarks/.venv-evidently) and scipy.
benchmark-checks: sync
	$(UV) run --frozen python benchmarks/checks_vs_evidently.py

# 10k rows x 1,000 numerical columns against Evidently (QUICK=1: 200 columns).
benchmark-wide: sync
	$(UV) run --frozen python benchmarks/wide_vs_evidently.py $(if $(QUICK),--quick)

# The experiment page and chart routes at 100,000 runs against 100 (QUICK=1: 10,000 runs).
benchmark-dashboard: sync
	$(UV) run --frozen python benchmarks/dashboard_queries.py $(if $(QUICK),--quick)

# 1,000,000 predictions and labels through the API against scikit-learn (QUICK=1: 100,000).
benchmark-performance: sync
	$(UV) run --frozen python benchmarks/performance_ingest.py $(if $(QUICK),--quick)

# The README's dashboard screenshots (docs/screenshots/): a local stack on free ports with the
# sandbox data, chromium at /usr/bin/chromium. Not part of `make test`.
screenshots: sync frontend-assets
	$(UV) run --frozen python scripts/screenshots.py
