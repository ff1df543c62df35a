# The MLflow tracking + registry server of the team setup (compose.yaml, serving/k8s/registry): MLflow with the
# PostgreSQL driver and boto3 for its S3 (MinIO) artifact destination, every package at requirements.lock's pin.
#   podman build -f registry/server.Dockerfile -t localhost/cardflow/mlflow-server:3.17.2 .
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
COPY requirements.lock /tmp/requirements.lock
RUN python -m pip install --no-cache-dir -c /tmp/requirements.lock mlflow==3.17.2 psycopg2-binary==2.9.13 boto3==1.44.8 \
    && rm /tmp/requirements.lock && useradd --uid 10001 --create-home mlflow
USER 10001
EXPOSE 5000
# Everything else comes from the environment: MLFLOW_BACKEND_STORE_URI, MLFLOW_ARTIFACTS_DESTINATION,
# MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, MLFLOW_SERVER_ALLOWED_HOSTS, MLFLOW_WORKERS.
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=2)"
ENTRYPOINT ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
