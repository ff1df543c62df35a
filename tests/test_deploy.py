"""The team registry's deployment files: compose.yaml and the Kubernetes manifests under serving/k8s.

No container engine nor Kubernetes API server runs here, so these are checked offline: compose.yaml
structurally (services, health checks, named volumes, secrets only from the git-ignored env file), the
manifests rendered by `kubectl kustomize` and validated against the Kubernetes 1.32 schemas (strict)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / "deploy" / "registry.env.example"


def _example_keys() -> set[str]:
    return {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def _lock_pins() -> dict[str, str]:
    return dict(line.split("==", 1) for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line)


def test_compose_runs_mlflow_on_postgres_and_minio_with_health_checks_and_named_volumes() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"minio", "minio-init", "postgres", "mlflow"}
    for name in ("minio", "postgres", "mlflow"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["env_file"] == [".env"], name
    assert set(compose["volumes"]) == {"minio-data", "postgres-data"}
    assert services["minio"]["volumes"] == ["minio-data:/data"]
    assert services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    env = services["mlflow"]["environment"]
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://") and "@postgres:5432/" in env["MLFLOW_BACKEND_STORE_URI"]
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert services["mlflow"]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                                 "minio-init": {"condition": "service_completed_successfully"}}
    # Every published port is on this host only; every variable comes from the env file's example.
    ports = [p for s in services.values() for p in s.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text)) | set(re.findall(r"\$\$(\w+)", text))
    assert used and used <= _example_keys()
    # No secret in the committed file; the env file itself is ignored by git.
    assert "change-me" not in text and "password" not in text.lower().replace("postgres_password", "").replace(
        "minio_root_password", "")
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_the_server_image_pins_what_the_lock_file_pins() -> None:
    dockerfile = (ROOT / "registry" / "server.Dockerfile").read_text()
    pins = dict(re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s\\]*)", dockerfile))
    lock = _lock_pins()
    assert set(pins) == {"mlflow", "psycopg2-binary", "boto3"}
    assert all(lock[name] == version for name, version in pins.items())
    assert "-c /tmp/requirements.lock" in dockerfile  # their dependencies at the lock's pins too


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[dict]:
    """`kubectl kustomize serving/k8s` with the example credentials in place of the git-ignored env file."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render the Kubernetes manifests (it is installed on these machines)"
    work = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(ROOT / "serving" / "k8s", work)
    shutil.copyfile(ENV_EXAMPLE, work / "registry" / "registry.env")
    out = subprocess.run([kubectl, "kustomize", str(work)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_kubernetes_manifests_render_and_validate_strictly(rendered: list[dict]) -> None:
    import kubernetes_validate

    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
    assert [k for k, _ in kinds].count("Deployment") == 2
    assert ("StatefulSet", "postgres") in kinds and ("Job", "minio-create-bucket") in kinds
    assert {name for kind, name in kinds if kind == "Service"} == {"minio", "postgres", "mlflow"}
    for doc in rendered:
        kubernetes_validate.validate(doc, "1.32.0", strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "cardflow", doc["metadata"]["name"]


def test_kubernetes_secrets_come_from_the_generated_secret(rendered: list[dict]) -> None:
    secret = next(d for d in rendered if d["kind"] == "Secret")
    assert secret["metadata"]["name"].startswith("registry-credentials-")  # name hash: pods roll on a change
    assert set(secret["data"]) == _example_keys()
    refs = set()
    for doc in rendered:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"]
                    refs.add(ref["key"])
            assert "resources" in container and "readinessProbe" in container or doc["kind"] == "Job"
    assert refs == _example_keys()
    mlflow = next(d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow")
    container = mlflow["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@postgres")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://$(CARDFLOW_BUCKET)/mlflow"
    assert container["image"] == "localhost/cardflow/mlflow-server:3.17.2"
