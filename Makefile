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

.PHONY: help venv dev demo serve test test-fast test-image image-serving image-sweep lint lock k8s-rules system-deps bench bench-corpus bench-sweep bench-registry bench-real bench-stability bench-serve bench-search clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade "pip==26.3"
	$(PIP) install $(PIP_FLAGS) -c $(LOCK) -e .
	@touch $@

$(DEV_STAMP): $(STAMP)
	$(PIP) install $(PIP_FLAGS) -c $(LOCK) -e '.[dev,ray]'
	@touch $@

venv: $(STAMP)  ## create .venv and install CardFlow (pinned)

dev: $(DEV_STAMP)  ## install CardFlow with the test tools and Ray

system-deps:  ## Debian packages the tests need (installs them with apt when missing)
	@bash .ci/system-deps

demo: $(STAMP)  ## the main job: corpus, training, default sweep, report (no server)
	$(BIN)/cardflow demo --workers $(WORKERS)

serve: $(STAMP)  ## the served pipeline on this machine: step servers, router, Prometheus (cardflow serve up; Ctrl-C stops)
	$(BIN)/cardflow serve up

test: $(DEV_STAMP) system-deps  ## the whole test suite
	$(BIN)/python -m pytest -q --durations=25

# The serving image: podman (with runc and explicit ulimits, as ENVIRONMENT.md measured) on a debootstrapped Debian
# base; the host's CA bundle goes in as a build secret for pip behind a TLS-intercepting proxy (not kept in the image).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
SERVING_IMAGE ?= localhost/cardflow/serving:$(VERSION)
SWEEP_IMAGE ?= localhost/cardflow/sweep:$(VERSION)
BASE_IMAGE ?= localhost/cardflow/bookworm-python:3.11
PODMAN := podman --runtime runc
PODMAN_BUILD_FLAGS ?=
comma := ,
CA_BUNDLE := /etc/ssl/certs/ca-certificates.crt
CA_SECRET := $(if $(wildcard $(CA_BUNDLE)),--secret id=ca_bundle$(comma)src=$(CA_BUNDLE))

image-serving:  ## build the serving image (Dockerfile target serving) with podman on a local Debian base
	bash deploy/base-image.sh $(BASE_IMAGE)
	$(PODMAN) build --format docker --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 $(PODMAN_BUILD_FLAGS) \
	  $(CA_SECRET) \
	  --target serving --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(SERVING_IMAGE) .

test-image: $(DEV_STAMP) image-serving  ## build the serving image, run four step containers and the router, call them
	CARDFLOW_SERVING_IMAGE=$(SERVING_IMAGE) $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/image_serving.py

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

image-sweep:  ## build the Ray sweep image (Dockerfile target sweep: the serving base + the ray extra; serving/k8s/sweep runs it)
	bash deploy/base-image.sh $(BASE_IMAGE)
	$(PODMAN) build --format docker --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 $(PODMAN_BUILD_FLAGS) \
	  $(CA_SECRET) \
	  --target sweep --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(SWEEP_IMAGE) .
k8s-rules: $(STAMP)  ## regenerate serving/k8s/monitoring/prometheusrule.yaml from serving/monitoring/rules
	$(BIN)/python serving/monitoring/render_prometheusrule.py

lock:  ## re-resolve the pinned dependencies into requirements.lock
	rm -rf /tmp/cardflow-lock-venv && $(PYTHON) -m venv /tmp/cardflow-lock-venv
	/tmp/cardflow-lock-venv/bin/python -m pip install $(PIP_FLAGS) -e '.[dev,ray]'
	/tmp/cardflow-lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e' > $(LOCK)

bench-serve: $(DEV_STAMP)  ## in-process pipeline vs the served chain (1/4/8 clients), compute limit, batching on vs off
	$(BIN)/python bench/bench_serve.py

bench-search: $(STAMP)  ## successive halving vs the exhaustive sweep: best per distribution, accuracy gap, share of the work
	$(BIN)/python bench/bench_search.py

bench-registry: $(DEV_STAMP)  ## register the catalog on a real mlflow server + S3: size, register time, cold vs warm loads
	$(BIN)/python bench/bench_registry.py

clean:  ## remove the venv and generated data (keeps nothing generated)
	rm -rf $(VENV) data reports mlruns mlartifacts mlflow.db .pytest_cache
