"""Real servers on 127.0.0.1 for the registry tests: moto's S3 API server (MinIO cannot be installed
here, so moto stands in for it: the same S3 API through boto3), a private PostgreSQL cluster,
`mlflow server` processes proxying artifacts to S3 (`--artifacts-destination`), and Prometheus (Debian's)
with serving/monitoring's config and rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

S3_KEYS = {"AWS_ACCESS_KEY_ID": "cardflow-test", "AWS_SECRET_ACCESS_KEY": "cardflow-test-secret",
           "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before {url} answered:\n"
                               + (log.read_text()[-3000:] if log and log.is_file() else ""))
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s"
                       + (f":\n{log.read_text()[-3000:]}" if log and log.is_file() else ""))


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@dataclass
class S3Server:
    url: str
    proc: subprocess.Popen

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client("s3", endpoint_url=self.url, **_boto_keys()).create_bucket(Bucket=name)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, **_boto_keys())


def _boto_keys() -> dict[str, str]:
    return {"aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
            "region_name": S3_KEYS["AWS_DEFAULT_REGION"]}


def start_s3(log_dir: Path) -> S3Server:
    """moto's S3 API server as a process of its own, on a free loopback port."""
    port = free_port()
    log = log_dir / "moto.log"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/moto-api/", 30, proc, log)
    return S3Server(url, proc)


@dataclass
class MlflowServer:
    url: str
    proc: subprocess.Popen
    log: Path
    args: list[str]
    env: dict[str, str]

    def restart(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=self.log.open("a"), stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True, cwd=self.log.parent)
        wait_http(f"{self.url}/health", 90, self.proc, self.log)


def start_mlflow(work: Path, backend_uri: str, s3: S3Server, bucket: str) -> MlflowServer:
    """`mlflow server` on a free loopback port with S3 as its artifact destination (it proxies artifacts,
    so clients need no S3 credentials)."""
    port = free_port()
    env = {**os.environ, **S3_KEYS, "MLFLOW_S3_ENDPOINT_URL": s3.url}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", backend_uri, "--artifacts-destination", f"s3://{bucket}/mlflow",
            "--workers", "1"]
    log = work / f"mlflow-{port}.log"
    proc = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
                            cwd=work)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", 90, proc, log)
    return MlflowServer(url, proc, log, args, env)


@dataclass
class Postgres:
    uri: str
    data: Path
    bin: Path

    def stop(self) -> None:
        _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], check=False)


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: [int(x) for x in p.parent.parent.name.split(".") if x.isdigit()])
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql "
                           "(`make system-deps` installs Debian's postgresql)")
    return found[-1].parent


def _as_postgres(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)


def start_postgres(work: Path) -> Postgres:
    """A private cluster in `work` on a free loopback port, with a database `mlflow`."""
    bin_dir = postgres_bin()
    data = work / "pgdata"
    sock = work / "pgsock"
    sock.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
        shutil.chown(sock, "postgres")
    _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust", "-E", "UTF8"])
    port = free_port()
    _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(work / "postgres.log"), "-w", "-t", "60",
                  "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"])
    _as_postgres([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"])
    return Postgres(f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow", data, bin_dir)


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen

    def api(self, path: str, **params: str):
        from urllib.parse import urlencode

        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{urlencode(params)}", timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]


def start_prometheus(work: Path, targets: dict[str, str]) -> Prometheus:
    """The config `cardflow serve up` writes (serving/monitoring's prometheus.yml and rules, the targets file naming
    this test's servers, {server: host:port}), unchanged but for two things a test cannot wait for: scrapes and rule
    evaluations every second (not 15 s), and alerts firing without their `for:` hold (promtool's unit tests,
    serving/monitoring/tests, check the holds)."""
    from serving.up import prometheus_config

    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: run `make system-deps` (Debian package prometheus)"
    config_file = prometheus_config(work, targets)
    text = config_file.read_text()
    config_file.write_text(re.sub(r"(scrape|evaluation)_interval: \S+", r"\1_interval: 1s", text))
    alerts = config_file.parent / "rules" / "alerts.yml"
    alerts.write_text(re.sub(r"\bfor: \S+", "for: 0s", alerts.read_text()))
    port = free_port()
    log = work / "prometheus.log"
    proc = subprocess.Popen([binary, f"--config.file={config_file}",
                             f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/-/ready", 30, proc, log)
    return Prometheus(url, proc)


def register_champions(tracking_uri: str, store, champions: list[str], also: list[str] = (), env: dict | None = None):
    """Register `champions` (variant ids) then `also` on the registry at `tracking_uri`, and point each champion's
    model's `champion` alias at its version. Returns the registered entries, in that order."""
    import pytest
    from mlflow.tracking import MlflowClient

    from registry.register import register_all
    from steps.catalog import default_catalog

    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**(env or {}), "MLFLOW_TRACKING_URI": tracking_uri, "CARDFLOW_MODELS": str(store.root)}.items():
            mp.setenv(key, value)
        registered = register_all(default_catalog(store), store, variant_ids=[*champions, *also])
        client = MlflowClient(tracking_uri)
        for entry in registered:
            if entry.variant_id in champions:
                client.set_registered_model_alias(entry.name, "champion", entry.version)
    return registered
