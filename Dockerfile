# CardFlow: installs the project and runs the main job (`cardflow demo`) by default, so the results can
# be regenerated in a container:  podman build -t cardflow . && podman run --rm cardflow
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

# OCR-B, the MRZ typeface (Debian's fonts-ocr-b). Optional: without it the generator falls back to a
# monospace face and records so in corpus.json.
RUN if command -v apt-get >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends fonts-ocr-b && rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY corpus ./corpus
COPY steps ./steps
COPY registry ./registry
COPY serving ./serving
COPY analysis ./analysis
COPY mlproject ./mlproject
COPY configs ./configs
COPY MLproject conda.yaml ./
RUN python -m pip install -c requirements.lock -e .

CMD ["cardflow", "demo", "--workers", "2"]
