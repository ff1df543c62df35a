# CardFlow images, from one Dockerfile:
#   podman build -t cardflow .                                   # the main job (`cardflow demo`), the default
#   podman run --rm cardflow
#   podman build --target serving -t localhost/cardflow/serving:0.1.0 .
#   podman build --target sweep -t localhost/cardflow/sweep:0.1.0 .       # Ray head and workers (serving/k8s/sweep)
#   podman run --rm -e MLFLOW_TRACKING_URI=http://mlflow:5000 -p 8080:8080 localhost/cardflow/serving:0.1.0 \
#       serve step --step ocr --model tesseract --alias champion --host 0.0.0.0
# The serving image runs any step server or the router (the command picks), as a non-root user, with a read-only
# root filesystem (the registry cache and temporary files go to /cache and /tmp: mount volumes or tmpfs there);
# it pulls its version from the registry at start and keeps the verified copy in /cache. `make test-image`
# builds it on a local Debian base (no registry of base images is reachable here) and calls its servers.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PATH=/opt/cardflow/bin:$PATH
# fonts-ocr-b: the MRZ typeface (the generator falls back to a monospace face without it); libfribidi0: Pillow's
# raqm text layout loads it at run time, and without it Pillow lays text out differently (other glyph positions, so
# other generated images than on a machine that has it); libgl1, libglib2.0-0: what OpenCV's wheel links against;
# python3-venv only on a base whose Python has no venv module (Debian's own).
RUN set -eu; pkgs="fonts-ocr-b libfribidi0 libgl1 libglib2.0-0"; \
    python3 -c "import ensurepip, venv" 2>/dev/null || pkgs="$pkgs python3-venv"; \
    apt-get update && apt-get install -y --no-install-recommends $pkgs && rm -rf /var/lib/apt/lists/*; \
    python3 -m venv /opt/cardflow
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
# The dependencies first (their own layer, at the lock's pins), then the code. Behind a TLS-intercepting proxy,
# pass its CA bundle as a build secret (not kept in the image): --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    python -m pip install --upgrade "pip==26.3" && python -m pip install -c requirements.lock $(python -c \
    "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))")
COPY common ./common
COPY corpus ./corpus
COPY steps ./steps
COPY tracking ./tracking
COPY registry ./registry
COPY analysis ./analysis
COPY mlproject ./mlproject
COPY serving ./serving
COPY configs ./configs
COPY MLproject conda.yaml ./
RUN python -m pip install --no-deps --no-build-isolation -e . && python -c "import serving.step_model, mlproject.cli"

FROM base AS serving
ENV HOME=/tmp CARDFLOW_REGISTRY_CACHE=/cache/registry CARDFLOW_MODELS=/cache/models MPLCONFIGDIR=/tmp/matplotlib \
    PORT=8080
RUN useradd --uid 10001 --no-create-home --home-dir /tmp cardflow && mkdir -p /cache && chown 10001 /cache
VOLUME ["/cache"]
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/v2/health/ready', timeout=2)"
ENTRYPOINT ["cardflow"]
CMD ["serve", "--help"]

# The sweep on a Ray cluster (serving/k8s/sweep: a KubeRay RayJob runs `ray start` in it, head and workers): the
# base plus the `ray` extra at the lock's pin. Generated corpora, reports, local MLflow artifacts and the model store
# go to /data (a shared volume; create /data/reports and /data/mlruns on it first); /app/data, /app/reports and
# /app/mlruns point there.
FROM base AS sweep
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    python -m pip install -c requirements.lock $(python -c \
    "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['ray']))")
ENV HOME=/tmp CARDFLOW_MODELS=/data/models MPLCONFIGDIR=/tmp/matplotlib RAY_USAGE_STATS_ENABLED=0
RUN useradd --uid 10001 --no-create-home --home-dir /tmp cardflow && mkdir -p /data && chown 10001 /data \
    && ln -s /data /app/data && ln -s /data/reports /app/reports && ln -s /data/mlruns /app/mlruns \
    && python -c "import ray, mlproject.sweep.execute_ray"
USER 10001

FROM base AS demo
CMD ["cardflow", "demo", "--workers", "2"]
