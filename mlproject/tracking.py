"""MLflow at the edge: the tracking store, runs, and what every run records about where it ran."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # the embedded default: no server to start
PACKAGES = ("mlflow", "numpy", "opencv-python", "tesserocr", "onnxruntime", "rapidocr-onnxruntime",
            "scikit-learn", "skl2onnx")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


@contextlib.contextmanager
def attached_run() -> Iterator[Any | None]:
    """The MLflow run `mlflow run` created for this entry point (MLFLOW_RUN_ID), or None outside `mlflow run`."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        yield None
        return
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    with mlflow.start_run(run_id=run_id) as run:
        yield run


@contextlib.contextmanager
def run_for(experiment: str, run_name: str, tags: dict[str, str] | None = None) -> Iterator[Any]:
    """The run `mlflow run` started, else a new run in `experiment` on the configured tracking store."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    if os.environ.get("MLFLOW_RUN_ID"):
        with mlflow.start_run(run_id=os.environ["MLFLOW_RUN_ID"]) as run:
            mlflow.set_tags({"mlflow.runName": run_name, **(tags or {})})
            yield run
        return
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        yield run


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{commit}-dirty" if dirty else commit
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment_params() -> dict[str, str]:
    """What a run ran on: git commit, Python, CPU count, package versions."""
    params = {"git_commit": git_commit(), "python": platform.python_version(), "cpu_count": str(os.cpu_count())}
    for package in PACKAGES:
        try:
            params[f"pkg.{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            params[f"pkg.{package}"] = "absent"
    return params


def log_params(params: dict[str, Any]) -> None:
    """Log params to the active run. Under `mlflow run` the entry point's raw parameters are already there
    (e.g. ocr=''); a resolved value that differs is logged as `effective.<name>` (MLflow forbids changes)."""
    import mlflow

    existing = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    fresh = {}
    for key, value in params.items():
        text = str(value)
        if key not in existing:
            fresh[key] = text
        elif existing[key] != text:
            fresh[f"effective.{key}"] = text
    mlflow.log_params(fresh)


def experiment_context(experiment: str) -> tuple[Any, str | None, str]:
    """(client, the run `mlflow run` started for this entry point or None, the experiment to log in)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    parent_id = os.environ.get("MLFLOW_RUN_ID")
    experiment_id = (client.get_run(parent_id).info.experiment_id if parent_id
                     else mlflow.set_experiment(experiment).experiment_id)
    return client, parent_id, experiment_id


def log_finished_run(client, experiment_id: str, name: str, tags: dict[str, str], params: dict[str, Any],
                     metrics: dict[str, float], artifacts: dict[str, bytes] | None = None) -> str:
    """One whole run in as few calls as MLflow allows (create with tags, one batch of params and metrics,
    the artifacts, terminate); a failure or Ctrl-C half way ends it FAILED or KILLED, never RUNNING."""
    import tempfile
    import time

    from mlflow.entities import Metric, Param

    run = client.create_run(experiment_id, run_name=name, tags=tags)
    try:
        stamp = int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
                         params=[Param(k, str(v)) for k, v in params.items()])
        if artifacts:
            with tempfile.TemporaryDirectory() as tmp:
                for filename, content in artifacts.items():
                    (Path(tmp) / filename).write_bytes(content)
                client.log_artifacts(run.info.run_id, tmp)
        client.set_terminated(run.info.run_id, "FINISHED")
    except BaseException as exc:
        client.set_terminated(run.info.run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    return run.info.run_id
