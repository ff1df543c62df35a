"""A sweep's tasks as Ray tasks (`--executor ray [--ray-address HOST:PORT]`): the same (distribution,
preprocessing prefix) chunks the local pool runs, so shared-prefix reuse is kept, on an engine users already run.

- Ray is optional (`pip install 'cardflow[ray]'`); without it, `--executor ray` is a parameter error saying so.
- No address: a Ray instance on this machine with `--workers` CPUs; an address: that cluster (`ray start --head`,
  a KubeRay RayCluster / RayJob).
- A worker builds its catalog once, from the model store at the path the driver names (or $CARDFLOW_MODELS on
  the worker): every model file is checked against the store's sha256 manifest as in the local pool, and each
  variant's fingerprint must equal the driver's, so a worker with other models fails the sweep, naming the
  variant, instead of logging other results. Nothing is read from the driver's working tree: the documents'
  image bytes travel with their task (in Ray's object store) and are written to a node-local folder.
- A worker lost mid-task (process killed, node gone) has its task retried by Ray (`max_retries`); the driver
  hands each chunk to the sweep once, so the sweep ends with exactly one run per configuration × distribution.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common.errors import BadInput, Internal
from common.params import ParameterError
from mlproject.sweep import execute
from mlproject.sweep.plan import Task
from steps.catalog import Catalog, default_catalog
from steps.modelstore import MODELS_ENV, ModelStore

MAX_RETRIES = 3  # per task, on a worker or node lost (never on an error the task itself raises)
INSTALL_HINT = "install it with `pip install 'cardflow[ray]'` (`make dev` does)"


def require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ParameterError(f"parameter executor: 'ray' needs Ray, which is not installed; {INSTALL_HINT}") from exc
    return ray


def _local_cluster() -> str | None:
    """The address of a cluster `ray start` left running on this machine, if any (ray.init() would join it and
    refuse `num_cpus`)."""
    try:
        from ray._private.services import find_gcs_addresses
    except ImportError:
        return None
    found = sorted(find_gcs_addresses())
    return found[0] if found else None


def connect(address: str | None, workers: int) -> dict[str, Any]:
    """Join the cluster at `address` ($RAY_ADDRESS, or one `ray start` runs on this machine), else start one here
    with `workers` CPUs; returns what it has."""
    ray = require_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not address and not ray.is_initialized():
        address = _local_cluster()
    if address and not ray.is_initialized():
        _reachable(address)
        _token_auth_if_available()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=workers, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BadInput(f"parameter ray_address: cannot join a Ray cluster at {address or 'a new local instance'}"
                           f" ({type(exc).__name__}: {exc})") from exc
    resources = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {"address": address or "local", "cpus": int(resources.get("CPU", 0)), "nodes": len(nodes)}


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse an address nothing listens on before Ray's own connection retries (minutes) begin."""
    import socket

    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise BadInput(f"parameter ray_address: {address!r} is not HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise BadInput(f"parameter ray_address: cannot join a Ray cluster at {address}: nothing answers there "
                       f"({exc.strerror or exc}); start one with `ray start --head` or check the address") from exc


def _token_auth_if_available() -> None:
    """Ray ≥ 2.5x clusters started by `ray start` use token authentication (~/.ray/auth_token, $RAY_AUTH_TOKEN);
    `ray start` switches it on when a token exists, but `ray.init(address=…)` does not. Do what `ray start` does,
    unless $RAY_AUTH_MODE says otherwise."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


_CATALOG: dict[str, Catalog] = {}


def _catalog(store_root: str) -> Catalog:
    root = os.environ.get(MODELS_ENV) or store_root
    if root not in _CATALOG:
        if not Path(root).is_dir():
            raise BadInput(f"model store {root} is not on this Ray node ({os.uname().nodename}); mount it there or "
                           f"set {MODELS_ENV} on the workers")
        _CATALOG[root] = default_catalog(ModelStore(Path(root)))
        execute._WORKER["catalog"] = _CATALOG[root]  # the load meter counts the node's workers as the sweep's
    return _CATALOG[root]


def _images_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / f"cardflow-ray-images-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _materialise(task: Task, images: dict[str, bytes]) -> Task:
    """The task with its documents' paths pointing at node-local copies of the bytes the driver sent."""
    folder = _images_dir()
    docs = []
    for doc in task.docs:
        data = images[str(doc.path)]
        local = folder / f"{hashlib.sha256(data).hexdigest()}{doc.path.suffix}"
        if not local.exists():
            part = local.with_name(f"{local.name}.{os.getpid()}.part")
            part.write_bytes(data)
            part.replace(local)
        docs.append(dataclasses.replace(doc, path=local))
    return dataclasses.replace(task, docs=tuple(docs))


def evaluate_remote(task_json: str, image_refs: dict[str, Any], store_root: str,
                    fingerprints: dict[str, str]) -> execute.ChunkResult:
    """One task on a Ray worker (module-level so Ray ships it by reference to this module)."""
    import ray

    paths = list(image_refs)
    images = dict(zip(paths, ray.get([image_refs[p] for p in paths]), strict=True))
    catalog = _catalog(store_root)
    for vid, expected in fingerprints.items():
        found = catalog.get(vid).fingerprint()
        if found != expected:
            raise BadInput(f"variant {vid} on Ray node {os.uname().nodename} is not the driver's (fingerprint "
                           f"{found} ≠ {expected}): the node's model store or code differs")
    task = Task.from_json(task_json)
    local = _materialise(task, images)
    result = execute.evaluate(local, catalog)
    original = {str(mine.path): str(theirs.path) for mine, theirs in zip(local.docs, task.docs, strict=True)}
    for outcomes in result.outcomes.values():  # the documents as the driver knows them, not the node's copies
        for outcome in outcomes:
            outcome.source = original.get(outcome.source, outcome.source)
    return result


def run_tasks_ray(tasks: Sequence[Task], catalog: Catalog, on_result: Callable[[execute.ChunkResult], None],
                  address: str | None, workers: int) -> None:
    """Every task as a Ray task (one CPU each), each result handed to `on_result` as it arrives."""
    ray = require_ray()
    if catalog.store is None:
        raise Internal("a catalog built by hand (no model store) cannot be rebuilt on Ray workers")
    connect(address, workers)
    remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(evaluate_remote)
    store_root = str(catalog.store.root)
    images: dict[str, Any] = {}  # each document's bytes put in the object store once, whatever the tasks sharing it
    pending = {}
    for task in tasks:
        for doc in task.docs:
            if str(doc.path) not in images:
                images[str(doc.path)] = ray.put(doc.read_bytes())
        configs = [cid.split("|") for cid in task.config_ids]
        fingerprints = {vid: catalog.get(vid).fingerprint() for ids in configs for vid in ids}
        ref = remote.remote(task.to_json(), {str(d.path): images[str(d.path)] for d in task.docs}, store_root,
                            fingerprints)
        pending[ref] = task
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            results = []
            for ref in done:
                task = pending.pop(ref)
                try:
                    results.append(ray.get(ref))
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, BadInput):  # the worker's own error (a store missing, a model differing)
                        raise cause from None
                    raise Internal(f"Ray task for {task.group[0]} / {task.group[1]} chunk {task.chunk} failed: "
                                   f"{exc}") from exc
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
                    raise Internal(f"Ray task for {task.group[0]} / {task.group[1]} chunk {task.chunk} was lost "
                                   f"{MAX_RETRIES + 1} times ({type(exc).__name__}): {exc}") from exc
            for result in sorted(results, key=lambda r: (r.group, r.chunk)):
                on_result(result)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
