# statemeter — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.deps-installed
SOURCES := $(shell find src python -name '*.rs' -o -name '*.toml' -o -name '*.py' -o -name '*.pyi' 2>/dev/null) Cargo.toml pyproject.toml

.PHONY: help venv build docs browser test test-rust test-python test-long test-frameworks frameworks-lock format lint bench demo clean

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

PY_SOURCES := python tests benches examples notebooks/render.py

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

docs: build ## Execute the notebooks and render them with their outputs to docs/notebooks/*.html
	$(PY) notebooks/render.py docs/notebooks

# The demo needs only the package and its analysis and plot extras: its own venv, not the
# development set of .venv. maturin (the build tool) builds the extension in release mode and
# installs statemeter[analysis,plot] into it; cargo prints each crate as it compiles.
DEMO_VENV := .venv-demo
DEMO_PY := $(DEMO_VENV)/bin/python

$(DEMO_VENV)/.built: pyproject.toml $(SOURCES)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	@echo "==> [1/3] $(DEMO_VENV): a virtual environment with pip and maturin"
	@test -x $(DEMO_PY) || $(PYTHON) -m venv $(DEMO_VENV)
	@$(DEMO_PY) -m pip install -q --disable-pip-version-check --upgrade pip 'maturin>=1.7,<2'
	@echo "==> [2/3] building statemeter (Rust, release: several minutes the first time) and installing statemeter[analysis,plot]"
	VIRTUAL_ENV=$(abspath $(DEMO_VENV)) PATH=$(abspath $(DEMO_VENV))/bin:$$PATH $(DEMO_VENV)/bin/maturin develop --release --extras analysis,plot
	@touch $@

demo: $(DEMO_VENV)/.built ## Build into .venv-demo (statemeter[analysis,plot] only), simulate a 30-day fleet: report, verify, demo/report.html
	@echo "==> [3/3] the demo: a month of a simulated agent fleet, judged, priced and verified"
	MPLBACKEND=Agg $(DEMO_PY) examples/demo.py demo/ledger.db

clean: ## Remove build artefacts and the venv
	rm -rf target $(VENV) $(FW_VENVS) $(DEMO_VENV) demo/ledger.db*
