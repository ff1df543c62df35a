"""MLflow at the edge: the tracking store, clients and health checks, MLflow errors as CardFlow errors,
experiments (tagged with MLflow's experiment kind), and whole runs logged at once.

Everything here is what several layers need (registry, mlproject, serving, analysis); nothing below it
(`steps`, `corpus`, `common`) imports MLflow.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from common.errors import BadInput, NotFound, Unavailable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # the embedded default: no server to start
PACKAGES = ("mlflow", "numpy", "opencv-python", "tesserocr", "onnxruntime", "rapidocr-onnxruntime",
            "scikit-learn", "skl2onnx")
# The experiment kind, as MLflow 3 defines it for classic model development. MLflow 3.17.2's UI does not read it
# to choose the landing page (its sidebar's GenAI / Model training switch decides; checked in headless Chromium,
# tests/test_mlflow_ui.py): the README's link to `#/experiments/<id>/runs` opens the runs table whatever the switch.
# The tag still says what these experiments are, for the UI versions and tools that read it.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
# Fail over in seconds, not minutes, when a tracking server goes away mid-call: MLflow's own defaults retry
# for minutes. Only for processes that load registered versions and have a verified cache to fall back on (the
# registry's load and promotion commands, the step servers), once, before any thread starts; a user's own
# settings win. Sweeps, training and registering keep MLflow's patient defaults (slow uploads, big searches).
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


class TrackingError(BadInput):
    """MLflow refused a request; the message names the tracking URI (the MLflow error is the cause)."""


class TrackingNotFound(NotFound, TrackingError):
    """MLflow has no such run, experiment, model or version at that tracking URI."""


class TrackingUnavailable(Unavailable, TrackingError):
    """The MLflow tracking server (or its artifact store) does not answer."""


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def fail_over_fast() -> None:
    """Few retries and short timeouts for MLflow's HTTP calls in this process (see HTTP_DEFAULTS); call it once,
    from an entry point, before threads start."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def client_for(uri: str | None = None):
    """An MLflow client whose tracking and registry are both `uri` (default: the configured one)."""
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def health_problem(uri: str) -> str | None:
    """Why an HTTP tracking server does not answer its health check (None when it does, or is not HTTP)."""
    if not uri.startswith(("http://", "https://")):
        return None
    import requests

    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=5)
    except requests.RequestException as exc:
        text = str(exc)
        return ("connection refused" if "refused" in text else "timed out" if "timed out" in text.lower()
                else f"{type(exc).__name__}: {text[:200]}")
    return f"/health answered {response.status_code}" if response.status_code >= 500 else None


def probe(uri: str) -> None:
    """Fail at once, naming the URI, when an HTTP tracking server does not answer its health check."""
    problem = health_problem(uri)
    if problem is not None:
        raise TrackingUnavailable(f"cannot reach the MLflow tracking server at {uri} ({problem})")


def is_connection_error(exc: BaseException) -> bool:
    """Whether an MLflow or HTTP error means the server (or its S3 store) did not answer."""
    text = str(exc)
    return any(s in text for s in ("Max retries exceeded", "Connection refused", "ConnectionError", "Read timed out"))


def as_cardflow_error(exc: BaseException, uri: str, what: str = "") -> TrackingError:
    """An MLflow or HTTP error as the CardFlow error of its kind, naming the URI (and what was asked)."""
    from mlflow.exceptions import MlflowException

    where = f"MLflow at {uri}" + (f" ({what})" if what else "")
    first = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    if is_connection_error(exc) or isinstance(exc, OSError):
        return TrackingUnavailable(f"cannot reach the MLflow tracking server at {uri} ({type(exc).__name__}: "
                                   f"{first[:200]})")
    if isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return TrackingNotFound(f"{where}: {first}")
    if isinstance(exc, MlflowException) and exc.error_code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE"):
        return TrackingUnavailable(f"{where}: {first}")
    return TrackingError(f"{where}: {first}")


@contextlib.contextmanager
def tracked(what: str = "") -> Iterator[str]:
    """For a command that logs to MLflow: the tracking server answers first (else Unavailable naming the URI,
    before any work), and MLflow errors inside become CardFlow errors naming it. Yields the URI."""
    uri = tracking_uri()
    probe(uri)
    with mlflow_errors(uri, what):
        yield uri


@contextlib.contextmanager
def mlflow_errors(uri: str, what: str = "") -> Iterator[None]:
    """MLflow and HTTP failures inside the block re-raised as CardFlow errors naming the URI, the original
    error as their cause."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, requests.RequestException) as exc:
        raise as_cardflow_error(exc, uri, what) from exc


def experiment_id(client, name: str) -> str:
    """The id of experiment `name`, created when missing; tagged with the experiment kind (EXPERIMENT_TAGS)."""
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name, tags=EXPERIMENT_TAGS)
    for key, value in EXPERIMENT_TAGS.items():
        if found.tags.get(key) != value:
            client.set_experiment_tag(found.experiment_id, key, value)
    return found.experiment_id


def use_experiment(name: str) -> str:
    """Make `name` the active experiment of the fluent API (created and tagged when missing)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    found = experiment_id(client_for(), name)
    mlflow.set_experiment(experiment_id=found)
    return found


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


def experiment_context(experiment: str) -> tuple[Any, str | None, str]:
    """(client, the run `mlflow run` started for this entry point or None, the experiment to log in)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    client = client_for()
    parent_id = os.environ.get("MLFLOW_RUN_ID")
    if parent_id:
        return client, parent_id, client.get_run(parent_id).info.experiment_id
    return client, None, use_experiment(experiment)


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


def log_files(client, run_id: str, files: dict[str, bytes], artifact_path: str | None = None) -> None:
    """Artifacts from memory (name -> content) in one upload."""
    if not files:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for filename, content in files.items():
            (Path(tmp) / filename).write_bytes(content)
        client.log_artifacts(run_id, tmp, artifact_path)


def log_finished_run(client, experiment: str, name: str, tags: dict[str, str], params: dict[str, Any],
                     metrics: dict[str, float], artifacts: dict[str, bytes] | None = None,
                     description: str | None = None, span_s: tuple[float, float] | None = None) -> str:
    """One whole run in as few calls as MLflow allows (create with tags, one batch of params and metrics,
    the artifacts, terminate); a failure or Ctrl-C half way ends it FAILED or KILLED, never RUNNING. `span_s`:
    when the work the run records began and ended (time.time()), as the run's start and end times."""
    from mlflow.entities import Metric, Param

    if description:
        tags = {**tags, "mlflow.note.content": description}
    start, end = (int(t * 1000) for t in span_s) if span_s else (None, None)
    run = client.create_run(experiment, run_name=name, tags=tags, start_time=start)
    try:
        stamp = end or int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
                         params=[Param(k, str(v)) for k, v in params.items()])
        log_files(client, run.info.run_id, artifacts or {})
        client.set_terminated(run.info.run_id, "FINISHED", end_time=end)
    except BaseException as exc:
        client.set_terminated(run.info.run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    return run.info.run_id
