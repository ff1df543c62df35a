"""The serving image, run as a user would run it (opt-in: `make test-image` builds the image, then runs this file;
`make test` does not collect it, its name not being test_*.py).

Four step server containers and a router container from localhost/cardflow/serving, each non-root with a
read-only root filesystem (tmpfs on /tmp and /cache), loading their versions at start from a real `mlflow server`
process (artifacts on moto's S3 API server: MinIO cannot be installed here) on 127.0.0.1. A real passport through
the router equals `cardflow predict` on the host with the same variants; the image's health check passes.
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
def containers(trained_store, tmp_path_factory):
    work = tmp_path_factory.mktemp("image")
    s3 = start_s3(work)
    s3.create_bucket("cardflow-image")
    mlflow_server = start_mlflow(work, f"sqlite:///{work / 'mlflow.db'}", s3, "cardflow-image")
    names: list[str] = []
    timings: dict[str, float] = {}
    try:
        register_champions(mlflow_server.url, trained_store, list(CONFIG.values()))
        ports = {}
        started = time.monotonic()
        for step, model in MODELS.items():
            ports[step] = free_port()
            names.append(_run_container(f"cardflow-test-{step}-{os.getpid()}", ports[step], mlflow_server.url,
                                        "serve", "step", "--step", step, "--model", model, "--alias", "champion"))
        for step, name in zip(MODELS, names, strict=True):
            try:
                wait_http(f"http://127.0.0.1:{ports[step]}/v2/health/ready", 60)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{_logs(name)}") from exc
        timings["steps ready (4 containers, s)"] = time.monotonic() - started
        router_port = free_port()
        chain = ",".join(f"{step}=http://127.0.0.1:{port}" for step, port in ports.items())
        names.append(_run_container(f"cardflow-test-router-{os.getpid()}", router_port, mlflow_server.url,
                                    "serve", "router", "--steps", chain))
        wait_http(f"http://127.0.0.1:{router_port}/v2/health/ready", 60)
        yield {"router": f"http://127.0.0.1:{router_port}", "names": names, "timings": timings,
               "env": {**{k: v for k, v in os.environ.items() if k not in S3_KEYS},
                       "MLFLOW_TRACKING_URI": mlflow_server.url, "CARDFLOW_MODELS": str(trained_store.root)},
               "work": work}
    finally:
        for name in names:
            subprocess.run([*PODMAN, "rm", "-f", name], capture_output=True, timeout=60)
        stop(mlflow_server.proc)
        stop(s3.proc)
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
