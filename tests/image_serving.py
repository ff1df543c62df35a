"""The serving image, run as a user would run it (opt-in: `make test-image` builds the image, then runs this file;
`make test` does not collect it, its name not being test_*.py).

Four step server containers and a router container from localhost/cardflow/serving, each non-root with a
read-only root filesystem (tmpfs on /tmp and /cache), loading their versions at start from a real `mlflow server`
process (artifacts on moto's S3 API server: MinIO cannot be installed here) on 127.0.0.1. A real passport through
the router equals `cardflow predict` on the host with the same variants; the image's health check passes. And
`cardflow registry image` builds a modelcar whose files have the registry's sha256, which the serving container
then serves with `--model-dir`, the modelcar mounted as KServe mounts it.
Containers share the host's network (podman with runc here: no slirp/pasta port forwarding needed)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from servers import S3_KEYS, free_port, register_champions, start_mlflow, start_s3, stop, wait_http

from tests.conftest import REAL_DEV, ROOT

IMAGE = os.environ.get("CARDFLOW_SERVING_IMAGE", "localhost/cardflow/serving:0.1.0")
PODMAN = ["podman", "--runtime", "runc"]
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
CONFIG = {"preprocess": "preprocess/channel:gray", "ocr": "ocr/tesseract:lstm-fast",
          "classify": "classify/tfidf-logreg:l2", "extract": "extract/mrz-first:v1"}
MODELS = {"preprocess": "channel", "ocr": "tesseract", "classify": "tfidf-logreg", "extract": "mrz-first"}
PASSPORT = REAL_DEV / "mrz_more" / "images" / "usa_passport_nelson_sample.jpg"


def _run_container(name: str, port: int, tracking_uri: str, *command: str) -> str:
    """A detached container on the host's network; removed by the fixture (kept until then for its logs)."""
    args = [*PODMAN, "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
            "--tmpfs", "/cache:rw,U", *LIMITS, "-e", f"MLFLOW_TRACKING_URI={tracking_uri}", "-e", f"PORT={port}", IMAGE,
            *command, "--port", str(port)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return name


def _logs(name: str) -> str:
    done = subprocess.run([*PODMAN, "logs", name], capture_output=True, text=True, timeout=30)
    return (done.stdout + done.stderr)[-3000:]


@pytest.fixture(scope="module")
def registry(trained_store, tmp_path_factory):
    """A real mlflow server (artifacts on moto S3) with the configuration's variants registered and champion."""
    work = tmp_path_factory.mktemp("image")
    s3 = start_s3(work)
    s3.create_bucket("cardflow-image")
    mlflow_server = start_mlflow(work, f"sqlite:///{work / 'mlflow.db'}", s3, "cardflow-image")
    try:
        registered = register_champions(mlflow_server.url, trained_store, list(CONFIG.values()))
        yield {"url": mlflow_server.url, "work": work, "registered": registered,
               "env": {**{k: v for k, v in os.environ.items() if k not in S3_KEYS},
                       "MLFLOW_TRACKING_URI": mlflow_server.url, "CARDFLOW_MODELS": str(trained_store.root),
                       "CARDFLOW_REGISTRY_CACHE": str(work / "host-cache")}}
    finally:
        stop(mlflow_server.proc)
        stop(s3.proc)


@pytest.fixture(scope="module")
def containers(registry):
    names: list[str] = []
    timings: dict[str, float] = {}
    try:
        ports = {}
        started = time.monotonic()
        for step, model in MODELS.items():
            ports[step] = free_port()
            names.append(_run_container(f"cardflow-test-{step}-{os.getpid()}", ports[step], registry["url"],
                                        "serve", "step", "--step", step, "--model", model, "--alias", "champion"))
        for step, name in zip(MODELS, names, strict=True):
            try:
                wait_http(f"http://127.0.0.1:{ports[step]}/v2/health/ready", 60)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{_logs(name)}") from exc
        timings["steps ready (4 containers, s)"] = time.monotonic() - started
        router_port = free_port()
        chain = ",".join(f"{step}=http://127.0.0.1:{port}" for step, port in ports.items())
        names.append(_run_container(f"cardflow-test-router-{os.getpid()}", router_port, registry["url"],
                                    "serve", "router", "--steps", chain))
        wait_http(f"http://127.0.0.1:{router_port}/v2/health/ready", 60)
        yield {"router": f"http://127.0.0.1:{router_port}", "names": names, "timings": timings,
               "env": registry["env"], "work": registry["work"]}
    finally:
        for name in names:
            subprocess.run([*PODMAN, "rm", "-f", name], capture_output=True, timeout=60)
        for key, value in timings.items():
            print(f"{key}: {value:.1f}")


def test_the_image_runs_non_root_read_only_and_its_health_check_passes(containers) -> None:
    for name in containers["names"]:
        user = subprocess.run([*PODMAN, "exec", name, "id", "-u"], capture_output=True, text=True, timeout=30)
        assert user.stdout.strip() == "10001", user.stderr
        write = subprocess.run([*PODMAN, "exec", name, "touch", "/app/x"], capture_output=True, text=True, timeout=30)
        assert write.returncode != 0 and "Read-only file system" in write.stderr
    health = subprocess.run([*PODMAN, "image", "inspect", IMAGE, "--format", "{{json .HealthCheck}}"],
                            capture_output=True, text=True, timeout=30)
    check = json.loads(health.stdout)["Test"]
    assert check[0] == "CMD-SHELL" and "/v2/health/ready" in check[1]
    for name in containers["names"]:  # the image's own health check command, run inside each container
        ran = subprocess.run([*PODMAN, "exec", name, "sh", "-c", check[1]], capture_output=True, text=True, timeout=30)
        assert ran.returncode == 0, (name, ran.stderr)


def test_a_real_passport_through_the_containers_equals_cardflow_predict(containers) -> None:
    body = {"inputs": [{"name": "doc_id", "datatype": "BYTES", "shape": [1], "data": [PASSPORT.stem]},
                       {"name": "image_b64", "datatype": "BYTES", "shape": [1],
                        "data": [base64.b64encode(PASSPORT.read_bytes()).decode()]}]}
    request = urllib.request.Request(f"{containers['router']}/v2/models/cardflow/infer", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=120) as answer:
        result = json.loads(answer.read())
    containers["timings"]["first passport through the router (s)"] = time.monotonic() - started
    outputs = {o["name"]: o["data"][0] for o in result["outputs"]}
    assert outputs["error"] == ""
    steps = json.loads(result["parameters"]["cardflow.steps"])
    assert [(s["step"], s["version"]) for s in steps] == [(step, "1") for step in MODELS]
    out = containers["work"] / "predictions.jsonl"
    config = " | ".join(vid.split("/", 1)[1] for vid in CONFIG.values())
    done = subprocess.run([sys.executable, "-m", "mlproject.cli", "predict", str(PASSPORT), "--out", str(out),
                           "--config", config], env=containers["env"], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    want = json.loads(Path(out).read_text().splitlines()[0])
    assert json.loads(outputs["extraction_json"]) == want["extraction"]
    assert json.loads(outputs["classification_json"]) == want["classification"]


def test_a_modelcar_image_holds_the_registered_files_with_the_registrys_sha256(registry) -> None:
    """`cardflow registry image` packages a version under /models (KServe's modelcar layout); every file in the
    image has the sha256 the registry recorded for it, and the labels say which version it is."""
    from mlflow.tracking import MlflowClient

    from registry.register import TAG_FILES

    entry = next(e for e in registry["registered"] if e.variant_id == CONFIG["classify"])
    tag = f"localhost/cardflow/models/{entry.name}:test-{os.getpid()}"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mlproject.cli", "registry", "image", entry.name, "--version",
                           entry.version, "--tag", tag], env=registry["env"], capture_output=True, text=True, cwd=ROOT,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"modelcar build ({entry.name}): {time.monotonic() - started:.1f} s")
    try:
        recorded = json.loads(MlflowClient(registry["url"]).get_model_version(entry.name, entry.version)
                              .tags[TAG_FILES])
        listed = subprocess.run([*PODMAN, "run", "--rm", *LIMITS, "--entrypoint", "sh", tag, "-c",
                                 "cd /models && find . -type f -exec sha256sum {} +"],
                                capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr
        in_image = {line.split(None, 1)[1].removeprefix("./"): line.split()[0] for line in listed.stdout.splitlines()}
        assert recorded and all(in_image[f"artifacts/store/{rel}"] == sha for rel, sha in recorded.items())
        assert "MLmodel" in in_image
        labels = json.loads(subprocess.run([*PODMAN, "image", "inspect", tag, "--format", "{{json .Labels}}"],
                                           capture_output=True, text=True, timeout=60).stdout)
        assert labels["cardflow.model"] == entry.name and labels["cardflow.version"] == entry.version
        assert labels["cardflow.variant"] == CONFIG["classify"]
        assert json.loads(labels["cardflow.files"]) == {f"artifacts/store/{k}": v for k, v in recorded.items()}

        # the packaged folder on the host: served as it is, refused when a file changed or for another step
        from registry.errors import RegistryError
        from registry.loader import load_model_dir

        copied = registry["work"] / f"modelcar-{os.getpid()}"
        box = subprocess.run([*PODMAN, "create", tag], capture_output=True, text=True, timeout=60).stdout.strip()
        try:
            subprocess.run([*PODMAN, "cp", f"{box}:/models", str(copied)], check=True, capture_output=True, timeout=120)
        finally:
            subprocess.run([*PODMAN, "rm", "-f", box], capture_output=True, timeout=60)
        assert load_model_dir(copied, "classify").registered.version == entry.version
        with pytest.raises(RegistryError, match="not a ocr model"):
            load_model_dir(copied, "ocr")
        victim = copied / "artifacts" / "store" / sorted(recorded)[0]
        victim.write_bytes(victim.read_bytes() + b"x")
        with pytest.raises(RegistryError, match=r"has sha256 .* the registry recorded"):
            load_model_dir(copied, "classify")

        # served from the image, as KServe mounts a modelcar: the serving container with the modelcar's root
        # mounted at /mnt/modelcar (no registry: MLFLOW_TRACKING_URI points nowhere), checked, then answering
        port = free_port()
        name = f"cardflow-test-modelcar-{os.getpid()}"
        ran = subprocess.run([*PODMAN, "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs",
                              "/tmp", "--tmpfs", "/cache:rw,U", *LIMITS, "-e", "MLFLOW_TRACKING_URI=http://127.0.0.1:9",
                              "--mount", f"type=image,source={tag},destination=/mnt/modelcar", IMAGE, "serve", "step",
                              "--step", "classify", "--model", "tfidf-logreg", "--model-dir", "/mnt/modelcar/models",
                              "--port", str(port)], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        try:
            try:
                wait_http(f"http://127.0.0.1:{port}/v2/health/ready", 60)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{_logs(name)}") from exc
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/cardflow-classify", timeout=10) as answer:
                meta = json.loads(answer.read())
            assert meta["parameters"]["cardflow.version"] == entry.version
            assert meta["parameters"]["cardflow.model"] == entry.name
        finally:
            subprocess.run([*PODMAN, "rm", "-f", name], capture_output=True, timeout=60)
    finally:
        subprocess.run([*PODMAN, "rmi", "-f", tag], capture_output=True, timeout=120)


def test_registry_image_names_a_bad_model_name(registry) -> None:
    done = subprocess.run([sys.executable, "-m", "mlproject.cli", "registry", "image", "tesseract", "--version", "1"],
                          env=registry["env"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "parameter model" in done.stderr and "Traceback" not in done.stderr
