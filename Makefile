# CardFlow — every command a user needs. `make demo` and `make test` set up everything themselves.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cardflow-installed
DEV_STAMP := $(VENV)/.cardflow-dev-installed
PIP := $(BIN)/python -m pip
PIP_FLAGS := --disable-pip-version-check --quiet
# The full transitive set, pinned (written by `make lock`).
LOCK := requirements.lock
WORKERS ?= 2

.PHONY: help venv dev demo serve test test-fast lint lock k8s-rules system-deps bench bench-corpus bench-sweep bench-registry bench-real bench-stability clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade "pip==26.3"
	$(PIP) install $(PIP_FLAGS) -c $(LOCK) -e .
	@touch $@

$(DEV_STAMP): $(STAMP)
	$(PIP) install $(PIP_FLAGS) -c $(LOCK) -e '.[dev]'
	@touch $@

venv: $(STAMP)  ## create .venv and install CardFlow (pinned)

dev: $(DEV_STAMP)  ## install CardFlow with the test tools

system-deps:  ## Debian packages the tests need (installs them with apt when missing)
	@bash .ci/system-deps

demo: $(STAMP)  ## the main job: corpus, training, default sweep, report (no server)
	$(BIN)/cardflow demo --workers $(WORKERS)

serve: $(STAMP)  ## the served pipeline on this machine: step servers, router, Prometheus (cardflow serve up; Ctrl-C stops)
	$(BIN)/cardflow serve up

test: $(DEV_STAMP) system-deps  ## the whole test suite
	$(BIN)/python -m pytest -q

test-fast: $(DEV_STAMP)  ## tests not marked slow
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(DEV_STAMP)  ## ruff, and the layer contracts (import-linter: pyproject.toml [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: bench-corpus bench-sweep bench-registry bench-real  ## every benchmark

bench-corpus: $(STAMP)  ## corpus generation rate, 1 vs 2 workers
	$(BIN)/python bench/bench_corpus.py

bench-sweep: $(STAMP)  ## sweep vs its floor vs a naive sweep, and reuse honesty (BENCH_N docs per distribution)
	$(BIN)/python bench/bench_sweep.py

bench-stability: $(STAMP)  ## the same sweep 3× measured the old and the new way: p95 spread, verdict flips, cost
	$(BIN)/python bench/bench_stability.py --workers $(WORKERS)

bench-real: $(STAMP)  ## real documents (../shared/data/real-dev): exact MRZ, all fields, s/doc vs SLA per configuration
	$(BIN)/python bench/bench_real.py --workers $(WORKERS)

k8s-rules: $(STAMP)  ## regenerate serving/k8s/monitoring/prometheusrule.yaml from serving/monitoring/rules
	$(BIN)/python serving/monitoring/render_prometheusrule.py

lock:  ## re-resolve the pinned dependencies into requirements.lock
	rm -rf /tmp/cardflow-lock-venv && $(PYTHON) -m venv /tmp/cardflow-lock-venv
	/tmp/cardflow-lock-venv/bin/python -m pip install $(PIP_FLAGS) -e '.[dev]'
	/tmp/cardflow-lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e' > $(LOCK)

bench-registry: $(DEV_STAMP)  ## register the catalog on a real mlflow server + S3: size, register time, cold vs warm loads
	$(BIN)/python bench/bench_registry.py

clean:  ## remove the venv and generated data (keeps nothing generated)
	rm -rf $(VENV) data reports mlruns mlartifacts mlflow.db .pytest_cache
