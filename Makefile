# Every target runs in one isolated virtual environment: $(VENV), default .venv in the repo.
# `make install VENV=` (empty) installs into, and runs with, the Python already on PATH instead
# (your own activated environment).
VENV ?= .venv
SYSTEM_PYTHON ?= python3
DEMO_HOME ?= $(CURDIR)/.demo

ifeq ($(strip $(VENV)),)
PYTHON := $(SYSTEM_PYTHON)
STAMP := .install-stamp-active-env
RUNPATH := $(PATH)
else
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.lstmcast-installed
RUNPATH := $(abspath $(VENV))/bin:$(PATH)
endif

.PHONY: install test demo lint bench samples wheel-check clean

install: $(STAMP)

ifneq ($(strip $(VENV)),)
$(VENV)/bin/python:
	$(SYSTEM_PYTHON) -m venv $(VENV)
endif

# Re-installs only when pyproject.toml changed (a second `make install` is a no-op).
# torch first, pinned: on these machines 2.13.0 is a CPU build on disk; an unpinned torch
# would pull gigabytes of CUDA packages.
$(STAMP): pyproject.toml $(if $(strip $(VENV)),$(VENV)/bin/python)
	$(PYTHON) -m pip install --disable-pip-version-check -q torch==2.13.0
	$(PYTHON) -m pip install --disable-pip-version-check -q -e '.[dev,ray]'
	touch $(STAMP)

test: $(STAMP)
	$(PYTHON) -m pytest -q

demo: $(STAMP)
	rm -rf $(DEMO_HOME)
	PATH="$(RUNPATH)" LSTMCAST_HOME=$(DEMO_HOME) bash scripts/demo.sh

lint: $(STAMP)
	$(PYTHON) -m ruff check src tests scripts bench
	$(PYTHON) -m deptry src
	PATH="$(RUNPATH)" lint-imports

bench: $(STAMP)
	$(PYTHON) bench/bench_train.py
	$(PYTHON) bench/bench_backtest.py
	$(PYTHON) bench/bench_predict.py
	$(PYTHON) bench/bench_executor.py

# Build a wheel and install it, non-editable, into a throw-away venv; then use it from outside the repo.
wheel-check: $(STAMP)
	PYTHON=$(PYTHON) bash scripts/check_wheel.sh

samples: $(STAMP)
	$(PYTHON) scripts/make_samples.py

clean:
	rm -rf $(DEMO_HOME) build dist .pytest_cache
