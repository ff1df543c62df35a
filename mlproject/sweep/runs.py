"""A sweep in MLflow: the parent run, one run per (configuration, distribution) logged in one transaction,
finished runs found again (resume), runs a dead sweep left RUNNING ended as KILLED.

Tags: cardflow.kind (sweep | run-config | config-run), cardflow.config_id|config_hash|config_label,
cardflow.distribution, cardflow.corpus_sha, cardflow.batch_size, cardflow.code (variant fingerprints +
scoring version), cardflow.sweep_key, cardflow.most_expensive_step, cardflow.sla_verdict (met | uncertain |
missed), cardflow.contention (heavy | light), cardflow.latency_measurements; every run has a description
(mlflow.note.content) saying what it measured, and the parent logs the results as a table (results.json).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

from mlproject.sweep.plan import SweepRequest
from mlproject.sweep.record import RunRecord
from steps.catalog import Catalog, Configuration
from tracking.edge import log_files, log_finished_run, log_params

log = logging.getLogger(__name__)
EXPERIMENT = "cardflow-sweep"


def finished_runs(client, experiment_id: str, corpus_sha: str, batch_size: int) -> dict[tuple[str, str, str], str]:
    """(config hash, distribution, code) → run id of finished config runs on this corpus and batch size."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(f"tags.`cardflow.kind` = 'config-run' and tags.`cardflow.corpus_sha` = '{corpus_sha}' "
                       f"and tags.`cardflow.batch_size` = '{batch_size}' and attributes.status = 'FINISHED'"),
        max_results=50000, order_by=["attributes.start_time ASC"])
    return {(r.data.tags["cardflow.config_hash"], r.data.tags["cardflow.distribution"], r.data.tags["cardflow.code"]):
            r.info.run_id for r in runs if r.data.tags.get("cardflow.search") != "pruned"}  # pruned: a few docs only


def kill_stale(client, experiment_id: str, key: str) -> None:
    """Runs left RUNNING by a sweep process that died (its pid is gone) are ended as KILLED."""
    for run in client.search_runs([experiment_id], filter_string=f"tags.`cardflow.sweep_key` = '{key}' and "
                                  "attributes.status = 'RUNNING'"):
        pid, host = run.data.tags.get("cardflow.pid"), run.data.tags.get("cardflow.host")
        alive = False
        if pid and host == socket.gethostname():
            try:
                os.kill(int(pid), 0)
                alive = True
            except (OSError, ValueError):
                alive = False
        if not alive:
            client.set_terminated(run.info.run_id, status="KILLED")
            log.info("run %s was left RUNNING by a process that is gone; ended as KILLED", run.info.run_id)


def sweep_tags(req: SweepRequest, key: str) -> dict[str, str]:
    return {"cardflow.kind": "sweep" if req.nested else "run-config", "cardflow.sweep_key": key,
            "cardflow.pid": str(os.getpid()), "cardflow.host": socket.gethostname()}


@contextlib.contextmanager
def parent_run(client, experiment_id: str, attached_id: str | None, req: SweepRequest, key: str,
               params: dict[str, Any]) -> Iterator[str | None]:
    """The sweep's parent run (the one `mlflow run` started, or a new one), active for the block and ended
    FINISHED, FAILED, or KILLED on Ctrl-C. run_config outside `mlflow run` has no parent: yields None."""
    import mlflow

    if attached_id is None and not req.nested:
        yield None
        return
    tags = sweep_tags(req, key)
    run = (mlflow.start_run(run_id=attached_id) if attached_id else
           mlflow.start_run(run_name=req.name, experiment_id=experiment_id, tags=tags))
    try:
        mlflow.set_tags(tags)
        log_params(params)
        yield run.info.run_id
    except BaseException as exc:
        while mlflow.active_run() is not None:
            mlflow.end_run("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    mlflow.end_run()


def run_tags(req: SweepRequest, record: RunRecord, code: str, key: str) -> dict[str, str]:
    config = record.config
    return {"cardflow.kind": "config-run", "cardflow.config_id": config.id, "cardflow.config_hash": config.short_hash,
            "cardflow.distribution": record.distribution, "cardflow.corpus_sha": req.corpus.manifest_hash,
            "cardflow.batch_size": str(req.batch_size), "cardflow.code": code, "cardflow.sweep_key": key,
            "cardflow.config_label": config.label, "cardflow.most_expensive_step": record.most_expensive_step,
            **verdict_tags(req, record), **record.search}


def verdict_tags(req: SweepRequest, record: RunRecord) -> dict[str, str]:
    """cardflow.sla_verdict (met | uncertain | missed), cardflow.contention (heavy | light), and
    cardflow.latency_measurements."""
    m = record.metrics
    heavy = m.get("load.other_cpu_share", 0.0) > req.measure.contention
    return {"cardflow.sla_verdict": record.verdict(req.sla), "cardflow.contention": "heavy" if heavy else "light",
            "cardflow.latency_measurements": str(int(m.get("latency_measurements", 1)))}


def run_params(req: SweepRequest, config: Configuration, distribution: str, catalog: Catalog,
               env: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for step, vid in config.as_dict().items():
        variant = catalog.get(vid)
        params[step] = vid
        params[f"{step}.model"] = variant.model
        params[f"{step}.version"] = variant.version
    docs = sum(1 for d in req.corpus if d.distribution == distribution)
    params.update({
        "config_id": config.id, "config_hash": config.short_hash, "corpus": str(req.corpus.root),
        "corpus_manifest_sha256": req.corpus.manifest_hash, "distribution": distribution, "documents": docs,
        "batch_size": req.batch_size, "workers": req.workers, **req.executor.params(),
        "cores": req.workers if req.executor.kind == "ray" else len(os.sched_getaffinity(0)),
        "sla_ms": req.sla.end_to_end_ms, **{f"sla.{s}_ms": v for s, v in req.sla.steps_ms.items()}, **env,
    })
    return params


def log_run(client, experiment_id: str, parent_id: str | None, req: SweepRequest, record: RunRecord,
            catalog: Catalog, env: dict[str, str], code: str, key: str) -> str:
    """One (configuration, distribution) run: nested under the parent in a sweep; in run_config, the entry
    point's own run under `mlflow run`, else a run of its own."""
    import mlflow

    tags = run_tags(req, record, code, key)
    params = run_params(req, record.config, record.distribution, catalog, env)
    params["documents"] = int(record.metrics.get("documents", params["documents"]))  # a pruned run: those it saw
    description = record.description(req.sla)
    if parent_id is not None and not req.nested:  # run_config under `mlflow run`: the entry point's own run
        mlflow.set_tags({**tags, "mlflow.runName": record.name, "mlflow.note.content": description})
        log_params(params)
        mlflow.log_metrics(record.metrics)
        log_files(client, parent_id, record.files)
        return parent_id
    if parent_id is not None:
        tags["mlflow.parentRunId"] = parent_id
    return log_finished_run(client, experiment_id, record.name, tags, params, record.metrics, record.files,
                            description=description)


def update_run(client, run_id: str, req: SweepRequest, record: RunRecord) -> None:
    """A finished run re-measured: its latency metrics (logged again as step 1: MLflow shows the latest), its
    verdict and measurement tags, its description."""
    import time

    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    keys = [k for k in record.metrics if k.startswith(("latency_ms.", "step.", "sla")) or k in (
        "throughput_docs_s", "cpu_utilisation", "cpu_ms_per_doc", "latency_measurements", "latency_settled",
        "load.other_cpu_share")]
    metrics = [Metric(k, float(record.metrics[k]), now, 1) for k in keys]
    tags = [RunTag(k, v) for k, v in {**verdict_tags(req, record),
                                      "mlflow.note.content": record.description(req.sla)}.items()]
    for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 metrics per batch
        client.log_batch(run_id, metrics=metrics[start:start + 900], tags=tags if start == 0 else [])
