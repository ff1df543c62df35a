"""`cardflow sweep` / `cardflow run-config` (MLproject entry points `sweep`, `run_config`).

Reads: a corpus (generated from `distributions`, `n`, `seed` when `corpus` is empty), the pipeline
spec (configs/pipeline.yaml: default grid, SLA), the trained classifiers in the model store.
Writes: an MLflow parent run (experiment `cardflow-sweep`, tag cardflow.kind=sweep) with one nested
run per (configuration, distribution) (tag cardflow.kind=config-run; params: the four variant ids
and versions, corpus manifest hash, distribution, batch size, workers, cores, SLA budgets, git commit,
package versions; metrics: accuracy, assert.*, l1/l2 accuracy, field.*.exact, cer, latency_ms.*,
step.*.latency_ms.*, throughput_docs_s, cpu_utilisation, peak_rss_mb, sla_met; artifacts:
predictions.jsonl, step_latency.csv, confusion_l2.png), and reports/<sweep>/ (also on the parent run).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.errors import BadInput
from corpus.capture import get_preset
from corpus.errors import CorpusError
from corpus.generate import GenerateSpec, generate
from corpus.loaders import load
from corpus.records import Corpus, DocumentRef
from steps.base import STEPS
from steps.catalog import Catalog, Configuration, default_catalog
from steps.errors import StepError
from steps.runner import DocumentOutcome, Grid, evaluate_batches
from steps.scoring import Summary, latency_metrics
from steps.spec import PipelineSpec, Sla, load_spec
from tracking.edge import (
    environment_params,
    experiment_context,
    log_finished_run,
    log_params,
    tracking_uri,
)

log = logging.getLogger(__name__)
EXPERIMENT = "cardflow-sweep"
SCORING_VERSION = "1"  # bump when the assertions or metrics change meaning: finished runs are then redone


class SweepError(BadInput):
    """A sweep parameter is wrong; the message names it and lists the valid choices."""


@dataclass(frozen=True)
class SweepRequest:
    """A validated sweep: grid × distributions on one corpus at one batch size."""

    corpus: Corpus
    distributions: tuple[str, ...]
    grid: Grid
    batch_size: int
    workers: int
    sla: Sla
    name: str
    reuse: bool = True
    report_root: Path = Path("reports")
    nested: bool = True  # False: run_config, one top-level run

    @property
    def configurations(self) -> list[Configuration]:
        return self.grid.configurations()


def _split(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    return tuple(value)


def _positive(name: str, value: Any, kind=int) -> Any:
    try:
        number = kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError) as exc:
        raise SweepError(f"parameter {name}: expected a number, got {value!r}") from exc
    if kind is int and float(value) != number:
        raise SweepError(f"parameter {name}: expected an integer, got {value!r}")
    if number <= 0:
        raise SweepError(f"parameter {name} must be positive, got {value!r}")
    return number


def corpus_for(distributions: tuple[str, ...], n: int, seed: int, workers: int, root: Path = Path("data/corpora")) -> Path:
    """The corpus generated for (distributions, n, seed), made once and reused."""
    out = root / f"n{n}-seed{seed}-{'-'.join(distributions)}"
    generate(GenerateSpec(out=out, n=n, seed=seed, distributions=distributions), workers=workers)
    return out


def resolve_corpus(corpus: str | Path | None, dists: tuple[str, ...], default_dists: Sequence[str], n: int, seed: int,
                   workers: int) -> tuple[Corpus, tuple[str, ...]]:
    """The corpus a run works on and its distributions: `corpus` loaded (all its distributions unless some
    are named, each of which it must have), else one generated from the named or default distributions."""
    if corpus not in (None, ""):
        path = Path(corpus)
        if not path.exists():
            raise SweepError(f"parameter corpus: {path} does not exist")
        loaded = load(path)
        dists = dists or loaded.distributions
        missing = [d for d in dists if d not in loaded.distributions]
        if missing:
            raise SweepError(f"parameter distributions: corpus {path} has no {', '.join(missing)}; "
                             f"it has: {', '.join(loaded.distributions)}")
        return loaded, tuple(dists)
    dists = dists or tuple(default_dists)
    for dist in dists:
        try:
            get_preset(dist)
        except CorpusError as exc:
            raise SweepError(f"parameter distributions: {exc}") from exc
    return load(corpus_for(dists, n, seed, workers)), tuple(dists)


def build_request(*, corpus: str | Path | None, distributions: str | Sequence[str] | None, n: Any = 30, seed: Any = 7,
                  batch_size: Any = None, workers: Any = 2, sla_ms: Any = None, preprocess=None, ocr=None,
                  classify=None, extract=None, name: str | None = None, reuse: bool = True,
                  catalog: Catalog | None = None, spec: PipelineSpec | None = None, nested: bool = True,
                  report_root: Path = Path("reports")) -> SweepRequest:
    """Validate every parameter before anything runs; errors name the parameter and the valid choices."""
    catalog = catalog or default_catalog()
    spec = spec or load_spec(catalog)
    grid_ids = {}
    for step, value in zip(STEPS, (preprocess, ocr, classify, extract), strict=True):
        names = _split(value) or spec.grid[step]
        try:
            grid_ids[step] = tuple(dict.fromkeys(catalog.resolve(step, nm) for nm in names))
        except StepError as exc:
            raise SweepError(f"parameter {step}: {exc}") from exc
    batch = _positive("batch_size", batch_size if batch_size not in (None, "") else spec.sla.batch_size)
    workers_n = _positive("workers", workers)
    n_docs, seed_n = _positive("n", n), int(float(seed))
    budget = spec.sla.end_to_end_ms if sla_ms in (None, "") else _positive("sla_ms", sla_ms, float)
    sla = Sla(batch_size=batch, end_to_end_ms=budget, steps_ms=dict(spec.sla.steps_ms))
    loaded, dists = resolve_corpus(corpus, _split(distributions), spec.distributions, n_docs, seed_n, workers_n)
    grid = Grid(**grid_ids)
    for vid in grid.classify:  # a missing trained model must stop us before any run starts
        try:
            catalog.get(vid).load()
        except StepError as exc:
            raise SweepError(f"parameter classify: {exc}") from exc
    sweep_name = name or f"sweep-{hashlib.sha256(json.dumps([grid.as_dict(), dists, loaded.manifest_hash, batch]).encode()).hexdigest()[:8]}"
    return SweepRequest(loaded, dists, grid, batch, workers_n, sla, sweep_name, reuse, report_root, nested)


# --- worker processes ---------------------------------------------------------------------------

_CATALOG: dict[str, Catalog] = {}


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    _CATALOG["catalog"] = default_catalog()


@dataclass
class RunPayload:
    """Everything one (configuration, distribution) run logs, built in the worker that computed it."""

    config_id: str
    distribution: str
    metrics: dict[str, float]
    files: dict[str, bytes]  # artifact name -> content
    mean_latency_ms: float
    most_expensive_step: str = ""


@dataclass
class Task:
    """Some whole batches of one distribution through one preprocessing prefix, for the configurations under it."""

    group: tuple[str, str]  # (distribution, preprocessing variant)
    chunk: int  # position of these batches within the group's documents
    docs: list[DocumentRef]
    config_ids: list[str]
    batch_size: int
    reuse: bool


@dataclass
class ChunkResult:
    group: tuple[str, str]
    chunk: int
    outcomes: dict[str, list[DocumentOutcome]]  # configuration id -> outcomes, documents in order
    node_seconds: dict[str, float]  # unique computation -> wall seconds
    peak_mb: float


def _payload(config: Configuration, distribution: str, outcomes: list[DocumentOutcome], sla: Sla,
             peak_mb: float) -> RunPayload:
    from analysis.plots import confusion_png

    summary = Summary()
    lines = []
    for outcome in outcomes:
        assertions = summary.add(outcome)
        row = {**outcome.to_json(), "assertions": assertions, "truth_l2": outcome.truth.l2 if outcome.truth else None}
        lines.append(json.dumps(row, ensure_ascii=False))
    metrics = {**summary.metrics(), **latency_metrics(outcomes, sla), "peak_rss_mb": peak_mb}
    files = {"predictions.jsonl": ("\n".join(lines) + "\n").encode(),
             "step_latency.csv": _step_latency_csv(outcomes).encode()}
    labelled = [(o.truth.l2, (o.classification.l2 if o.classification else None) or "none")
                for o in outcomes if o.truth and o.truth.l2]
    if labelled:
        with tempfile.TemporaryDirectory() as tmp:
            png = confusion_png([t for t, _ in labelled], [p for _, p in labelled], Path(tmp) / "c.png",
                                title=f"level 2 — {config.label} @ {distribution}")
            files["confusion_l2.png"] = png.read_bytes()
    mean = sum(o.end_to_end_ms for o in outcomes) / len(outcomes)
    means = {s: metrics[f"step.{s}.latency_ms.mean"] for s in STEPS if f"step.{s}.latency_ms.mean" in metrics}
    top = max(means, key=means.get) if means else ""
    return RunPayload(config.id, distribution, {k: float(v) for k, v in metrics.items() if v is not None}, files, mean,
                      top)


def _evaluate(task: Task) -> ChunkResult:
    """Run a task's batches through the tree of its configurations (each shared prefix once per batch)."""
    import resource

    catalog = _CATALOG.get("catalog") or _CATALOG.setdefault("catalog", default_catalog())
    configs = [Configuration(*cid.split("|")) for cid in task.config_ids]
    outcomes: dict[str, list[DocumentOutcome]] = {c.id: [] for c in configs}
    node_seconds: dict[str, float] = {}
    batches = [task.docs[k : k + task.batch_size] for k in range(0, len(task.docs), task.batch_size)]
    # Naive (benchmarks): every configuration from scratch, nothing shared.
    parts = [evaluate_batches(catalog, batches, configs)] if task.reuse else [
        evaluate_batches(catalog, batches, [c]) for c in configs]
    for k, part in enumerate(parts):
        for cid, found in part.outcomes.items():
            outcomes[cid].extend(found)
        for node, t in part.nodes.items():
            key = f"{task.group[0]}#{node}" if task.reuse else f"{task.group[0]}#{configs[k].id}#{node}"
            node_seconds[key] = node_seconds.get(key, 0.0) + t.wall_ms / 1000.0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return ChunkResult(task.group, task.chunk, outcomes, node_seconds, peak_mb)


def plan_tasks(req: SweepRequest, todo: dict[str, list[Configuration]]) -> list[Task]:
    """One group per (distribution, preprocessing variant): its documents go through preprocessing once
    and the tree of configurations under it. Groups are cut into chunks of whole batches so that about
    8 tasks per worker keep every core busy to the end (a chunk never splits a batch)."""
    groups = [(dist, prefix) for dist, configs in todo.items() for prefix in dict.fromkeys(c.preprocess for c in configs)]
    per_group = max(1, -(-8 * req.workers // max(1, len(groups)))) if req.workers > 1 else 1
    tasks = []
    for dist, prefix in groups:
        docs = [d for d in req.corpus if d.distribution == dist]
        ids = [c.id for c in todo[dist] if c.preprocess == prefix]
        n_batches = -(-len(docs) // req.batch_size)
        chunks = min(per_group, n_batches)
        step = -(-n_batches // chunks) * req.batch_size
        for k, first in enumerate(range(0, len(docs), step)):
            tasks.append(Task((dist, prefix), k, docs[first : first + step], ids, req.batch_size, req.reuse))
    return tasks


# --- tracking -----------------------------------------------------------------------------------

def code_version(catalog: Catalog, config: Configuration) -> str:
    parts = [catalog.get(vid).fingerprint() for vid in config.ids()] + [SCORING_VERSION]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def _finished_runs(client, experiment_id: str, corpus_sha: str, batch_size: int) -> dict[tuple[str, str, str], str]:
    """(config hash, distribution, code) → run id of finished config runs on this corpus and batch size."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(f"tags.`cardflow.kind` = 'config-run' and tags.`cardflow.corpus_sha` = '{corpus_sha}' "
                       f"and tags.`cardflow.batch_size` = '{batch_size}' and attributes.status = 'FINISHED'"),
        max_results=50000, order_by=["attributes.start_time ASC"])
    return {(r.data.tags["cardflow.config_hash"], r.data.tags["cardflow.distribution"], r.data.tags["cardflow.code"]):
            r.info.run_id for r in runs}


def _kill_stale(client, experiment_id: str, key: str) -> None:
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


def _run_params(req: SweepRequest, config: Configuration, distribution: str, catalog: Catalog, env: dict) -> dict:
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
        "batch_size": req.batch_size, "workers": req.workers, "cores": len(os.sched_getaffinity(0)),
        "sla_ms": req.sla.end_to_end_ms, **{f"sla.{s}_ms": v for s, v in req.sla.steps_ms.items()}, **env,
    })
    return params


def _step_latency_csv(outcomes: list[DocumentOutcome]) -> str:
    import numpy as np

    lines = ["step,p50_ms,p95_ms,p99_ms,mean_ms"]
    for step in [*STEPS, "end_to_end"]:
        values = np.array([o.end_to_end_ms if step == "end_to_end" else o.latency_ms.get(step, np.nan) for o in outcomes])
        lines.append(f"{step},{np.percentile(values, 50):.3f},{np.percentile(values, 95):.3f},"
                     f"{np.percentile(values, 99):.3f},{values.mean():.3f}")
    return "\n".join(lines) + "\n"


def _log_payload(req: SweepRequest, payload: RunPayload, catalog: Catalog, env: dict, code: str, key: str) -> str:
    """One (configuration, distribution) run in MLflow: tags, params, metrics, artifacts."""
    import mlflow

    config = Configuration(*payload.config_id.split("|"))
    tags = {"cardflow.kind": "config-run", "cardflow.config_id": config.id, "cardflow.config_hash": config.short_hash,
            "cardflow.distribution": payload.distribution, "cardflow.corpus_sha": req.corpus.manifest_hash,
            "cardflow.batch_size": str(req.batch_size), "cardflow.code": code, "cardflow.sweep_key": key,
            "cardflow.config_label": config.label, "cardflow.most_expensive_step": payload.most_expensive_step}
    name = f"{config.label} @ {payload.distribution}"
    params = _run_params(req, config, payload.distribution, catalog, env)
    active = mlflow.active_run()
    if not req.nested:  # run_config: one run, with its per-step breakdown drawn
        payload.files["step_breakdown.png"] = _breakdown_png(payload, config)
    if active is not None and not req.nested:  # run_config under `mlflow run`: the entry point's own run
        mlflow.set_tags({**tags, "mlflow.runName": name})
        log_params(params)
        mlflow.log_metrics(payload.metrics)
        _log_files(mlflow.log_artifacts, payload.files)
        return active.info.run_id
    # As few calls as possible per run: hundreds of runs are logged per sweep.
    from mlflow.tracking import MlflowClient

    if active is not None:
        tags["mlflow.parentRunId"] = active.info.run_id
    experiment_id = active.info.experiment_id if active else mlflow.set_experiment(EXPERIMENT).experiment_id
    return log_finished_run(MlflowClient(), experiment_id, name, tags, params, payload.metrics, payload.files)


def _breakdown_png(payload: RunPayload, config: Configuration) -> bytes:
    from analysis.plots import step_breakdown_png

    means = {s: payload.metrics[f"step.{s}.latency_ms.mean"] for s in STEPS
             if f"step.{s}.latency_ms.mean" in payload.metrics}
    with tempfile.TemporaryDirectory() as tmp:
        path = step_breakdown_png({f"{config.label} @ {payload.distribution}": means}, Path(tmp) / "b.png",
                                  f"where the time goes — most expensive step: {payload.most_expensive_step}")
        return path.read_bytes()


def breakdown_text(metrics: dict[str, float]) -> str:
    """One line per step: mean latency per document and its share, the most expensive first."""
    means = {s: metrics[f"step.{s}.latency_ms.mean"] for s in STEPS if f"step.{s}.latency_ms.mean" in metrics}
    total = sum(means.values()) or 1.0
    return "\n".join(f"  {s:<10} {v:8.1f} ms/doc  {v / total * 100:5.1f}%" + ("  ← most expensive" if k == 0 else "")
                     for k, (s, v) in enumerate(sorted(means.items(), key=lambda kv: -kv[1])))


def _log_files(log_folder, files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for filename, content in files.items():
            (Path(tmp) / filename).write_bytes(content)
        log_folder(tmp)


@dataclass
class SweepResult:
    parent_run_id: str
    report_dir: Path | None
    runs: dict[tuple[str, str], str] = field(default_factory=dict)  # (config id, distribution) → run id
    logged: int = 0
    skipped: int = 0
    wall_s: float = 0.0
    unique_compute_s: float = 0.0
    logging_s: float = 0.0  # main process: building run payloads and logging them to MLflow
    node_seconds: dict[str, float] = field(default_factory=dict)
    mean_latency_ms: dict[tuple[str, str], float] = field(default_factory=dict)  # end to end, per document


def run_sweep(req: SweepRequest, *, progress: bool = True, write_report: bool = True) -> SweepResult:
    """Run the sweep (resuming: finished configuration runs are skipped). Ctrl-C ends open runs as KILLED."""
    import mlflow

    catalog = default_catalog()
    client, parent_id, experiment_id = experiment_context(EXPERIMENT)
    configs = req.configurations
    codes = {c.id: code_version(catalog, c) for c in configs}
    key = hashlib.sha256(json.dumps([req.name, sorted(codes.items()), req.distributions, req.corpus.manifest_hash,
                                     req.batch_size]).encode()).hexdigest()[:16]
    _kill_stale(client, experiment_id, key)
    finished = _finished_runs(client, experiment_id, req.corpus.manifest_hash, req.batch_size)
    result = SweepResult(parent_run_id="", report_dir=None)
    todo: dict[str, list[Configuration]] = {}
    for dist in req.distributions:
        for config in configs:
            done = finished.get((config.short_hash, dist, codes[config.id]))
            if done:
                result.runs[(config.id, dist)] = done
                result.skipped += 1
            else:
                todo.setdefault(dist, []).append(config)
    env = environment_params()
    tags = {"cardflow.kind": "sweep" if req.nested else "run-config", "cardflow.sweep_key": key,
            "cardflow.pid": str(os.getpid()), "cardflow.host": socket.gethostname()}
    started = time.perf_counter()
    run_ctx = (mlflow.start_run(run_id=parent_id) if parent_id else
               mlflow.start_run(run_name=req.name, tags=tags) if req.nested else None)
    try:
        if run_ctx is not None:
            parent = run_ctx.__enter__()
            result.parent_run_id = parent.info.run_id
            mlflow.set_tags(tags)
            log_params(_sweep_params(req, env))
        _execute(req, todo, codes, catalog, env, key, result, progress)
        result.wall_s = time.perf_counter() - started
        if run_ctx is not None:
            mlflow.log_metrics(_sweep_metrics(req, result))
            mlflow.log_dict(_sweep_manifest(req, result, codes), "sweep.json")
            if write_report and req.nested:
                from analysis.report import write_sweep_report

                result.report_dir = write_sweep_report(result.parent_run_id, req.report_root / req.name)
                mlflow.log_artifacts(str(result.report_dir), "report")
            run_ctx.__exit__(None, None, None)
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        while mlflow.active_run() is not None:
            mlflow.end_run(status=status)
        raise
    return result


def _execute(req: SweepRequest, todo: dict[str, list[Configuration]], codes: dict[str, str], catalog: Catalog,
             env: dict, key: str, result: SweepResult, progress: bool) -> None:
    """Evaluate the missing (configuration, distribution) pairs on the pool (see plan_tasks); a group's
    runs are logged as soon as its last chunk is in, while the other tasks compute."""
    tasks = plan_tasks(req, todo)
    expected: dict[tuple[str, str], int] = {}
    for task in tasks:
        expected[task.group] = expected.get(task.group, 0) + 1
    arrived: dict[tuple[str, str], list[ChunkResult]] = {}
    total = len(req.configurations) * len(req.distributions)
    bar = tqdm(total=total, initial=result.skipped, desc=f"{req.name}", unit="run", disable=not progress,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}<{remaining}]{postfix}")
    bar.set_postfix_str(f"skipped {result.skipped} finished")

    def collect(chunk: ChunkResult) -> None:
        for node, seconds in chunk.node_seconds.items():
            result.node_seconds[node] = result.node_seconds.get(node, 0.0) + seconds
        parts = arrived.setdefault(chunk.group, [])
        parts.append(chunk)
        if len(parts) < expected[chunk.group]:
            return
        parts.sort(key=lambda c: c.chunk)
        distribution = chunk.group[0]
        peak_mb = max(c.peak_mb for c in parts)
        started = time.perf_counter()
        for config_id in parts[0].outcomes:
            outcomes = [o for c in parts for o in c.outcomes[config_id]]
            payload = _payload(Configuration(*config_id.split("|")), distribution, outcomes, req.sla, peak_mb)
            run_id = _log_payload(req, payload, catalog, env, codes[payload.config_id], key)
            result.runs[(payload.config_id, payload.distribution)] = run_id
            result.mean_latency_ms[(payload.config_id, payload.distribution)] = payload.mean_latency_ms
            result.logged += 1
            bar.update(1)
        result.logging_s += time.perf_counter() - started
        del arrived[chunk.group]

    if req.workers <= 1:
        _worker_init_inline()
        for task in tasks:
            collect(_evaluate(task))
    else:
        with ProcessPoolExecutor(req.workers, initializer=_worker_init) as pool:
            futures: set[Future] = {pool.submit(_evaluate, task) for task in tasks}
            try:
                while futures:
                    done, futures = wait(futures, return_when=FIRST_COMPLETED)
                    for future in sorted(done, key=lambda f: (f.result().group, f.result().chunk)):
                        collect(future.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    bar.close()
    result.unique_compute_s = sum(result.node_seconds.values())


def compute_only(req: SweepRequest) -> tuple[float, float]:
    """The sweep's unique step computations alone, on the same tasks and pool, with nothing logged and no
    run payloads built (benchmarks: the floor). Returns (wall seconds, summed wall seconds of the unique
    computations)."""
    tasks = plan_tasks(req, {dist: req.configurations for dist in req.distributions})
    started = time.perf_counter()
    if req.workers <= 1:
        _worker_init_inline()
        chunks = [_evaluate(task) for task in tasks]
    else:
        with ProcessPoolExecutor(req.workers, initializer=_worker_init) as pool:
            chunks = list(pool.map(_evaluate, tasks))
    wall = time.perf_counter() - started
    return wall, sum(s for chunk in chunks for s in chunk.node_seconds.values())


def _worker_init_inline() -> None:
    _CATALOG.setdefault("catalog", default_catalog())


def _sweep_params(req: SweepRequest, env: dict) -> dict[str, Any]:
    from steps.catalog import default_catalog as _catalog

    catalog = _catalog()
    return {
        "corpus": str(req.corpus.root), "corpus_manifest_sha256": req.corpus.manifest_hash,
        "distributions": ",".join(req.distributions), "batch_size": req.batch_size, "workers": req.workers,
        "sla_ms": req.sla.end_to_end_ms, **{f"sla.{s}_ms": v for s, v in req.sla.steps_ms.items()},
        **{f"grid.{step}": ",".join(ids) for step, ids in req.grid.as_dict().items()},
        "configurations": len(req.configurations),
        "configurations_possible": _possible(catalog), "reuse": req.reuse, **env,
    }


def _possible(catalog: Catalog) -> int:
    total = 1
    for step in STEPS:
        total *= len(catalog.ids(step))
    return total


def _sweep_metrics(req: SweepRequest, result: SweepResult) -> dict[str, float]:
    return {"sweep_wall_s": result.wall_s, "unique_compute_s": result.unique_compute_s,
            "floor_s": result.unique_compute_s / req.workers, "runs_logged": float(result.logged),
            "runs_skipped": float(result.skipped)}


def _sweep_manifest(req: SweepRequest, result: SweepResult, codes: dict[str, str]) -> dict[str, Any]:
    return {
        "name": req.name, "corpus": str(req.corpus.root), "corpus_manifest_sha256": req.corpus.manifest_hash,
        "distributions": list(req.distributions), "batch_size": req.batch_size,
        "sla": {"end_to_end_ms": req.sla.end_to_end_ms, "steps_ms": req.sla.steps_ms},
        "grid": {k: list(v) for k, v in req.grid.as_dict().items()},
        "runs": [{"config_id": cid, "distribution": dist, "run_id": run_id, "code": codes[cid]}
                 for (cid, dist), run_id in sorted(result.runs.items())],
    }


def print_summary(result: SweepResult, rows: int = 12) -> None:
    """The top of the results table, where the report is, and how to browse the runs."""
    from analysis.sweep import best_per_distribution, load_sweep, robustness

    data = load_sweep(result.parent_run_id)
    print(f"\nsweep: {result.logged} runs logged, {result.skipped} already finished (skipped), "
          f"{result.wall_s:.0f} s; parent run {result.parent_run_id}")
    print("\nBest configuration per distribution (within the SLA):")
    print(best_per_distribution(data.runs).to_string(index=False))
    print("\nMost robust configurations (worst case across distributions):")
    print(robustness(data.runs).head(rows).to_string())
    if result.report_dir:
        print(f"\nReport: {result.report_dir / 'report.md'} (and report.html)")
    uri = tracking_uri()
    print(f"Browse the runs: mlflow ui --backend-store-uri {uri}" if not uri.startswith("http")
          else f"Browse the runs: {uri}")
