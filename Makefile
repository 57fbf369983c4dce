# statemeter — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.deps-installed
SOURCES := $(shell find src python -name '*.rs' -o -name '*.toml' -o -name '*.py' -o -name '*.pyi' 2>/dev/null) Cargo.toml pyproject.toml

.PHONY: help venv build browser test test-rust test-python test-long test-frameworks frameworks-lock format lint bench demo clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	touch $@

venv: $(STAMP) ## Create .venv with the development tools

$(VENV)/.built: $(STAMP) $(SOURCES)
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/maturin develop --release -q
	touch $@

build: $(VENV)/.built ## Build the extension (release) into .venv

test-rust: ## Rust unit tests (no Python needed)
	cargo test -q

browser: ## Headless Chromium (Debian's package) for the report-page test; installed when root
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is not installed (apt-get install chromium as root): the report-page browser test will be skipped"; fi

test-python: build browser ## pytest (without the long variants)
	$(PY) -m pytest -q -m "not long"

test-long: build ## The long variants of the reliability tests (crash trials, load, fuzzing)
	PROPTEST_CASES=10000 cargo test -q --test proptest_parsers
	$(PY) -m pytest -q -m long

test: build test-rust test-python ## Everything: build, Rust tests, pytest

# Agent frameworks traced by their own OpenTelemetry instrumentations, offline against a loopback
# model server (tests/frameworks). One virtual environment per group of frameworks whose
# dependencies agree, installed by uv from the group's lock file; the package is the one
# `make build` put in python/ (a .pth file points there: no second build).
FW_VENVS := .venv-frameworks
FW_GROUPS := openai3 otel144 crewai otelcontrib

$(FW_VENVS)/%/.installed: tests/frameworks/%/requirements.txt $(STAMP)
	rm -rf $(FW_VENVS)/$*
	$(VENV)/bin/uv venv -q --python $(PY) $(FW_VENVS)/$*
	$(VENV)/bin/uv pip install -q --python $(FW_VENVS)/$*/bin/python -r $<
	echo $(abspath python) > "$$($(FW_VENVS)/$*/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/statemeter.pth"
	touch $@

test-frameworks: build $(foreach g,$(FW_GROUPS),$(FW_VENVS)/$(g)/.installed) ## Agent frameworks' own tracing, metered (one venv per group)
	@for g in $(FW_GROUPS); do \
		echo "== tests/frameworks/$$g"; \
		$(FW_VENVS)/$$g/bin/python -m pytest -q -c tests/frameworks/pytest.ini \
			--confcutdir tests/frameworks tests/frameworks/$$g || exit 1; \
	done

frameworks-lock: $(STAMP) ## Re-resolve the framework groups' lock files from their requirements.in
	for g in $(FW_GROUPS); do (cd tests/frameworks/$$g && $(abspath $(VENV))/bin/uv pip compile -q \
		--universal --python-version 3.11 requirements.in -o requirements.txt) || exit 1; done

PY_SOURCES := python tests benches examples

format: $(STAMP) ## Format the Rust and Python sources in place (cargo fmt, ruff format)
	cargo fmt
	$(VENV)/bin/ruff format $(PY_SOURCES)

lint: $(STAMP) ## ruff check and format --check, mypy (python/statemeter), cargo fmt --check, clippy
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)
	$(VENV)/bin/mypy
	cargo fmt --check
	cargo clippy --all-targets --features python -- -D warnings

bench: build ## Benchmarks against the named peers (results in benches/results/)
	$(PY) benches/run.py

demo: build ## Simulate a 30-day fleet into demo/ledger.db; contract report, verify, demo/report.html
	$(PY) examples/demo.py demo/ledger.db

clean: ## Remove build artefacts and the venv
	rm -rf target $(VENV) $(FW_VENVS) demo/ledger.db*
