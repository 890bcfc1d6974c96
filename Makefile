# Developer entry points. `make dev` and `make test` work on a fresh Debian 12 as root.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := dev

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
# Touched after a successful install; reinstalls only when pyproject.toml changes.
INSTALLED := $(VENV)/.installed

.PHONY: venv system-deps dev test lint bench clean

# redis-server, postgresql, wrk, chromium (and python3-venv, which `venv` needs), each only
# when missing. Stdlib-only module, so the system Python runs it before the venv exists.
system-deps:
	$(PYTHON) -m devtools.services apt

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml | system-deps
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

# Starts (or reuses) Redis and the local S3 endpoint, migrates, creates the buckets, runs
# an RQ worker and the ConversationRelay process (ws://127.0.0.1:8001) and serves on
# http://127.0.0.1:8000. Ctrl-C stops what it started.
dev: system-deps venv
	$(VENV)/bin/python -m devtools.services run -- $(VENV)/bin/callgateway serve --port 8000

test: system-deps venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: system-deps venv
	$(VENV)/bin/python -m bench
	$(VENV)/bin/python -m bench.llm
	$(VENV)/bin/python -m bench.relay

# Removes the venv, caches and local service state (var/ holds the dev database too).
clean:
	rm -rf $(VENV) var build dist *.egg-info .pytest_cache .ruff_cache .hypothesis test-artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
