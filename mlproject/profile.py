"""`cardflow profile` (MLproject entry point `profile`): each step variant × CPU cores × batch size.

Reads: a corpus (generated from `distributions`, `n`, `seed` when `corpus` is empty), the pipeline
spec (configs/pipeline.yaml: default configuration, SLA, `profile:` defaults), prices
(configs/prices.yaml), the trained classifiers in the model store.

Does, in order:
1. the per-step breakdown of the default configuration on the corpus at the SLA batch size (one core),
   which names the most expensive steps (`steps=auto` profiles the two that cost most);
2. the accuracy of every configuration the profiled versions form (the other steps at their default),
   with shared-prefix reuse — accuracy does not depend on cores or batch size;
3. every (version, cores, batch size) cell in a process of its own (mlproject/profile_worker.py),
   restricted to that many CPUs with the libraries' thread counts set to match; cells asking for
   more cores than the machine has run on all of them and are marked oversubscribed. A cell crosses
   the process boundary as JSON only: its WorkOrder, the step's inputs as JSON lines in the step's
   wire codec (steps/codec.py), and its Measurements back;
4. the recommendation for the SLA and target load (analysis/recommend.py), the report.

Writes: an MLflow parent run (experiment `cardflow-profile`, tag cardflow.kind=profile) with one
nested run per cell (tag cardflow.kind=profile-cell; params: step, variant, model, version, cores,
batch_size, threads, batching, oversubscribed, corpus hash …; metrics: latency_ms.p50|p95|p99 per
document, batch_latency_ms.*, throughput_docs_s, cpu_utilisation, core_busy_pct, peak_rss_mb,
cost_per_1k_docs, accuracy), profile.json on the parent, and reports/<profile>/.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from analysis.profile import load_profile, profile_table, recommendation, write_profile_report
from analysis.recommend import explain
from common.params import (
    integer,
    names,
    non_negative_float,
    non_negative_int,
    or_default,
    positive_float,
    positive_int,
)
from corpus.records import Corpus, DocumentRef
from corpus.resolve import resolve_corpus
from mlproject.prices import Prices, load_prices
from mlproject.profile_cells import (
    Cell,
    ProfileError,
    cell_metrics,
    plan_cells,
    run_order,
    work_order,
    write_inputs,
)
from mlproject.profile_worker import Measurements
from mlproject.sweep.plan import Executor, executor_param, measure_params
from steps.base import STEPS
from steps.catalog import Catalog, Configuration
from steps.errors import StepError
from steps.latency import MeasureParams
from steps.records import StepFailure
from steps.runner import Pipeline, batched, evaluate_batches
from steps.scoring import Summary
from steps.spec import PipelineSpec, Sla
from tracking.edge import environment_params, experiment_context, log_finished_run, log_params

log = logging.getLogger(__name__)
EXPERIMENT = "cardflow-profile"
@dataclass(frozen=True)
class ProfileRequest:
    corpus: Corpus
    base: Configuration  # the configuration around the profiled steps
    steps: tuple[str, ...] | None  # None: the two most expensive steps, chosen after the breakdown
    versions: dict[str, tuple[str, ...]]  # step -> variant ids
    cores: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    sla: Sla
    load: float
    max_utilisation: float
    max_replicas: int
    warmup: int
    min_batches: int
    prices: Prices
    name: str
    report_root: Path = Path("reports")
    min_seconds: float = 2.0  # of timed work per cell at least
    measure: MeasureParams = MeasureParams()  # the stability rule per cell (max_measure_s: per cell)
    executor: Executor = Executor()  # local: one cell after another here; ray: cells side by side on a cluster


def build_profile_request(*, catalog: Catalog, spec: PipelineSpec, corpus=None, distributions=None, n=None,
                          seed=None, steps=None, versions=None, cores=None, batch_sizes=None, sla_ms=None, load=None,
                          name=None, warmup=None, min_batches=None, min_seconds=None, report_root: Path = Path("reports"),
                          prices: Prices | None = None, latency_repeats=None, stability_pct=None,
                          max_measure_s=None, executor=None, ray_address=None,
                          prepare: Callable[[], object] | None = None) -> ProfileRequest:
    """Validate every parameter before anything runs (None or '' takes the spec's `profile:` value); errors name
    the parameter and the valid choices. `prepare` (training the classifiers) runs once the parameters are valid,
    before the profiled classifiers are loaded."""
    defaults = spec.profile
    measure = measure_params(spec.measure, latency_repeats, stability_pct, max_measure_s)
    where = executor_param(executor, ray_address)
    chosen = _profiled_steps(names(steps) or names(defaults.steps))
    per_step = _profiled_versions(catalog, spec, chosen, names(versions))
    core_list = tuple(positive_int("cores", c) for c in names(cores)) or defaults.cores
    batch_list = tuple(positive_int("batch_sizes", b) for b in names(batch_sizes)) or defaults.batch_sizes
    budget = positive_float("sla_ms", or_default(sla_ms, spec.sla.end_to_end_ms))
    target = positive_float("load", or_default(load, defaults.target_load_docs_s))
    warm = non_negative_int("warmup", or_default(warmup, defaults.warmup_batches))
    min_b = positive_int("min_batches", or_default(min_batches, defaults.min_batches))
    min_s = non_negative_float("min_seconds", or_default(min_seconds, defaults.min_seconds))
    n_docs = positive_int("n", or_default(n, defaults.n))
    seed_n = integer("seed", or_default(seed, defaults.seed))
    loaded, dists = resolve_corpus(corpus, names(distributions), defaults.distributions, n_docs, seed_n, workers=2)
    loaded = dataclasses.replace(loaded, documents=tuple(d for d in loaded if d.distribution in dists))
    if prepare is not None:
        prepare()
    for vid in {v for ids in per_step.values() for v in ids if v.startswith("classify/")} | {spec.default.classify}:
        try:
            catalog.get(vid).load()
        except StepError as exc:
            raise ProfileError(f"parameter versions: {exc}") from exc
    sla = Sla(batch_size=spec.sla.batch_size, end_to_end_ms=budget, steps_ms=dict(spec.sla.steps_ms))
    key = json.dumps([chosen, per_step, core_list, batch_list, loaded.manifest_hash, sorted(loaded.distributions),
                      len(loaded), target, budget], sort_keys=True)
    profile_name = name or f"profile-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return ProfileRequest(loaded, spec.default, chosen, per_step, core_list, batch_list, sla, target,
                          defaults.max_utilisation, defaults.max_replicas, warm, min_b, prices or load_prices(),
                          profile_name, report_root, min_s, measure, where)


def _profiled_steps(step_names: tuple[str, ...]) -> tuple[str, ...] | None:
    """The steps asked for; None for `auto` (the two most expensive, chosen after the breakdown)."""
    step_names = tuple(dict.fromkeys(step_names))
    if "auto" in step_names and len(step_names) > 1:
        raise ProfileError(f"parameter step: 'auto' (the two most expensive steps) cannot be combined with step "
                           f"names, got {','.join(step_names)!r}")
    for step in step_names:
        if step not in (*STEPS, "auto"):
            raise ProfileError(f"parameter step: unknown step {step!r}; valid: auto, {', '.join(STEPS)}")
    return None if step_names in ((), ("auto",)) else step_names


def _profiled_versions(catalog: Catalog, spec: PipelineSpec, chosen: tuple[str, ...] | None,
                       wanted: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Per step, the variant ids to profile: the ones asked for (names are resolved within the one chosen step;
    with several steps each must be a full id) or the spec's `profile.versions`."""
    per_step: dict[str, tuple[str, ...]] = {}
    for step in STEPS:
        if not wanted:
            per_step[step] = spec.profile.versions[step]
            continue
        listed = [v for v in wanted if "/" not in v or v.startswith(step + "/")]
        if chosen and len(chosen) == 1 and step == chosen[0]:
            listed = list(wanted)
        elif not all("/" in v for v in wanted):
            if chosen is None or len(chosen) != 1:
                raise ProfileError("parameter versions: with several steps, give full variant ids "
                                   "(e.g. ocr/tesseract:lstm-fast) so each names its step")
            listed = []
        try:
            per_step[step] = tuple(dict.fromkeys(catalog.resolve(step, nm) for nm in listed)) or (
                getattr(spec.default, step),)
        except StepError as exc:
            raise ProfileError(f"parameter versions: {exc}") from exc
    return per_step


# --- the breakdown and the inputs of each step ---------------------------------------------------

@dataclass
class Staged:
    """The default configuration's records before each step, and the step latencies it measured."""

    inputs: dict[str, list[Any]]  # step -> its input records, in corpus order (failed documents left out)
    step_ms: dict[str, list[float]]  # step -> per-document latency (its batch's wall time), ms


def stage(catalog: Catalog, base: Configuration, docs: list[DocumentRef], batch_size: int) -> Staged:
    """Run the default configuration batch by batch on one core, keeping each step's inputs."""
    pipeline = Pipeline(base, catalog, threads=1)
    staged = Staged({s: [] for s in STEPS}, {s: [] for s in STEPS})
    for batch in batched(docs, batch_size):
        trace = pipeline.trace(batch)
        latency = trace.latency_ms()
        for step, records in (("preprocess", trace.images), ("ocr", trace.pre), ("classify", trace.ocr),
                              ("extract", trace.extract_in)):
            staged.inputs[step] += [r for r in records if not isinstance(r, StepFailure)]
            staged.step_ms[step] += [latency[step]] * len(batch)
    return staged


def breakdown_rows(step_ms: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Per step: mean, p50, p95 per document and share of the end-to-end mean, most expensive first."""
    total = sum(float(np.mean(v)) for v in step_ms.values() if v)
    rows = [{"step": s, "mean_ms": float(np.mean(v)), "p50_ms": float(np.percentile(v, 50)),
             "p95_ms": float(np.percentile(v, 95)), "share": float(np.mean(v)) / total if total else 0.0}
            for s, v in step_ms.items() if v]
    return sorted(rows, key=lambda r: -r["mean_ms"])


# --- accuracy ------------------------------------------------------------------------------------

def accuracy_table(catalog: Catalog, docs: list[DocumentRef], base: Configuration, steps: tuple[str, ...],
                   versions: dict[str, tuple[str, ...]], batch_size: int) -> dict[str, dict[str, float]]:
    """Metrics of every configuration the profiled versions form (other steps at their default)."""
    # Each profiled step's default is in its list too: a version's accuracy is read with every other step
    # at its default.
    grid = {s: (tuple(dict.fromkeys((*versions[s], getattr(base, s)))) if s in steps else (getattr(base, s),))
            for s in STEPS}
    configs = [Configuration(*ids) for ids in itertools.product(*(grid[s] for s in STEPS))]
    batches = [docs[k : k + batch_size] for k in range(0, len(docs), batch_size)]
    result = evaluate_batches(catalog, batches, configs)
    table = {}
    for config in configs:
        summary = Summary()
        for outcome in result.outcomes[config.id]:
            summary.add(outcome)
        table[config.id] = {k: float(v) for k, v in summary.metrics().items() if v is not None}
    return table


def version_accuracy(table: dict[str, dict[str, float]], base: Configuration, step: str, variant: str) -> float:
    return table[Configuration(**(base.as_dict() | {step: variant})).id]["accuracy"]


# --- the run ---------------------------------------------------------------------------------------

@dataclass
class ProfileResult:
    parent_run_id: str
    steps: tuple[str, ...]
    report_dir: Path | None = None
    cells: list[dict[str, Any]] = field(default_factory=list)
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    breakdown_batch1: list[dict[str, Any]] = field(default_factory=list)
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)  # configuration id -> metrics
    wall_s: float = 0.0


def run_profile(req: ProfileRequest, catalog: Catalog, *, progress: bool = True,
                write_report: bool = True) -> ProfileResult:
    """Run a validated profile with the process's one catalog."""
    import mlflow

    client, parent_id, experiment_id = experiment_context(EXPERIMENT)
    docs = list(req.corpus)
    env = environment_params()
    started = time.perf_counter()
    parent = mlflow.start_run(run_id=parent_id) if parent_id else mlflow.start_run(
        run_name=req.name, experiment_id=experiment_id, tags={"cardflow.kind": "profile"})
    try:
        with tempfile.TemporaryDirectory(prefix="cardflow-profile-") as tmp:
            result = _profile(req, catalog, client, experiment_id, parent.info.run_id, docs, env, Path(tmp), progress)
        result.wall_s = time.perf_counter() - started
        mlflow.log_metric("profile_wall_s", result.wall_s)
        mlflow.log_dict(_manifest(req, result, result.accuracy), "profile.json")
        if write_report:
            result.report_dir = write_profile_report(result.parent_run_id, req.report_root / req.name)
            mlflow.log_artifacts(str(result.report_dir), "report")
        mlflow.end_run("FINISHED")
    except BaseException as exc:
        mlflow.end_run("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    return result


def _profile(req: ProfileRequest, catalog: Catalog, client, experiment_id: str, parent_id: str,
             docs: list[DocumentRef], env: dict, tmp: Path, progress: bool) -> ProfileResult:
    import mlflow

    mlflow.set_tags({"cardflow.kind": "profile", "mlflow.runName": req.name})
    staged = stage(catalog, req.base, docs, req.sla.batch_size)
    breakdown = breakdown_rows(staged.step_ms)
    # The default variants also at batch size 1: the recommender's options for the steps not profiled.
    single = breakdown_rows(stage(catalog, req.base, docs, 1).step_ms)
    steps = req.steps or tuple(sorted((r["step"] for r in breakdown[:2]), key=STEPS.index))
    log_params(_profile_params(req, steps, env))
    result = ProfileResult(parent_id, steps, breakdown=breakdown, breakdown_batch1=single)
    result.accuracy = accuracy_table(catalog, docs, req.base, steps, req.versions, req.sla.batch_size)
    cells = plan_cells(req, steps)
    inputs_paths = {}
    for step in steps:
        if not staged.inputs[step]:
            raise ProfileError(f"cannot profile {step}: every document failed before it with the default "
                               f"configuration ({req.base.id}); check the corpus")
        inputs_paths[step] = write_inputs(tmp / f"{step}.jsonl", step, staged.inputs[step])
    bar = tqdm(total=len(cells), desc=req.name, unit="cell", disable=not progress,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} cells [{elapsed}<{remaining}]{postfix}")
    logged: dict[int, dict[str, Any]] = {}

    def log_one(k: int, cell: Cell, measured: Measurements, node: str) -> None:
        metrics = cell_metrics(cell, measured, version_accuracy(result.accuracy, req.base, cell.step, cell.variant),
                               req.prices.price_per_core_hour)
        run_id = _log_cell(client, experiment_id, parent_id, req, catalog, cell, measured, metrics, env, node)
        logged[k] = {"run_id": run_id, "step": cell.step, "variant": cell.variant, "cores": cell.cores,
                     "batch_size": cell.batch_size, "oversubscribed": cell.oversubscribed, "node": node,
                     "batching": measured.batching, "affinity": list(measured.affinity), **metrics}
        bar.set_postfix_str(f"{cell.variant} {cell.cores}c b{cell.batch_size}")
        bar.update(1)

    store = str(catalog.store.root) if catalog.store else ""
    orders = [work_order(cell, inputs_paths[cell.step], req, tmp / f"cell{k}", store) for k, cell in enumerate(cells)]
    if req.executor.kind == "ray":
        from mlproject.profile_ray import run_cells_ray

        if catalog.store is None:
            raise ProfileError("parameter executor: a catalog without a model store cannot be rebuilt on Ray nodes")
        run_cells_ray(cells, orders, {s: p.read_bytes() for s, p in inputs_paths.items()}, store,
                      {c.variant: catalog.get(c.variant).fingerprint() for c in cells}, req.executor.address,
                      log_one)
    else:
        node = os.uname().nodename
        for k, (cell, order) in enumerate(zip(cells, orders, strict=True)):
            workdir = Path(order.out).parent
            workdir.mkdir()
            log_one(k, cell, run_order(order, workdir), node)
    bar.close()
    result.cells = [logged[k] for k in sorted(logged)]  # in the grid's order, whatever order they finished in
    mlflow.log_metrics({"cells": float(len(cells)), **{f"breakdown.{r['step']}.mean_ms": r["mean_ms"] for r in breakdown}})
    return result


def _profile_params(req: ProfileRequest, steps: tuple[str, ...], env: dict) -> dict[str, Any]:
    return {
        "corpus": str(req.corpus.root), "corpus_manifest_sha256": req.corpus.manifest_hash,
        "distributions": ",".join(req.corpus.distributions), "documents": len(req.corpus),
        "steps": ",".join(steps), **{f"versions.{s}": ",".join(req.versions[s]) for s in steps},
        "cores": ",".join(map(str, req.cores)), "batch_sizes": ",".join(map(str, req.batch_sizes)),
        "machine_cores": len(os.sched_getaffinity(0)), "base_configuration": req.base.id,
        "sla_ms": req.sla.end_to_end_ms, "sla_batch_size": req.sla.batch_size,
        **{f"sla.{s}_ms": v for s, v in req.sla.steps_ms.items()},
        "target_load_docs_s": req.load, "max_utilisation": req.max_utilisation, "max_replicas": req.max_replicas,
        "warmup_batches": req.warmup, "min_batches": req.min_batches, "min_seconds": req.min_seconds,
        "price_per_core_hour": req.prices.price_per_core_hour, "currency": req.prices.currency,
        **req.executor.params(), **env,
    }


def _log_cell(client, experiment_id: str, parent_id: str, req: ProfileRequest, catalog: Catalog, cell: Cell,
              measured: Measurements, metrics: dict[str, float], env: dict, node: str) -> str:
    variant = catalog.get(cell.variant)
    name = f"{cell.variant} · {cell.cores} core{'s' if cell.cores > 1 else ''} · batch {cell.batch_size}"
    tags = {"cardflow.kind": "profile-cell", "mlflow.parentRunId": parent_id, "cardflow.step": cell.step,
            "cardflow.variant": cell.variant, "cardflow.oversubscribed": str(cell.oversubscribed).lower()}
    params = {"step": cell.step, "variant": cell.variant, "model": variant.model, "version": variant.version,
              "cores": cell.cores, "batch_size": cell.batch_size, "threads": cell.cores,
              "cpus": ",".join(map(str, measured.affinity)), "node": node, "batching": measured.batching,
              "oversubscribed": cell.oversubscribed, "corpus_manifest_sha256": req.corpus.manifest_hash,
              "warmup_batches": req.warmup, "price_per_core_hour": req.prices.price_per_core_hour, **env}
    span = (measured.started_unix, measured.finished_unix) if measured.finished_unix else None
    return log_finished_run(client, experiment_id, name, tags, params, metrics, span_s=span)


def _manifest(req: ProfileRequest, result: ProfileResult, table: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        "name": req.name, "corpus": str(req.corpus.root), "corpus_manifest_sha256": req.corpus.manifest_hash,
        "documents": len(req.corpus), "distributions": list(req.corpus.distributions),
        "base_configuration": req.base.as_dict(), "steps": list(result.steps),
        "versions": {s: list(req.versions[s]) for s in result.steps},
        "cores": list(req.cores), "batch_sizes": list(req.batch_sizes), "machine_cores": len(os.sched_getaffinity(0)),
        "sla": {"batch_size": req.sla.batch_size, "end_to_end_ms": req.sla.end_to_end_ms, "steps_ms": req.sla.steps_ms},
        "warmup_batches": req.warmup, "min_batches": req.min_batches, "min_seconds": req.min_seconds,
        "measuring": {"max_windows": 1 + req.measure.repeats, "stability_pct": req.measure.stability_pct,
                      "max_seconds_per_cell": req.measure.max_measure_s},
        "load_docs_s": req.load, "max_utilisation": req.max_utilisation, "max_replicas": req.max_replicas,
        "executor": req.executor.params(),
        "prices": {"price_per_core_hour": req.prices.price_per_core_hour, "currency": req.prices.currency,
                   "source": req.prices.source},
        "breakdown": result.breakdown, "breakdown_batch1": result.breakdown_batch1, "accuracy": table,
        "cells": [{k: v for k, v in c.items()} for c in result.cells],
        "wall_s": result.wall_s,
    }



def print_profile_summary(result: ProfileResult) -> None:
    """The per-step breakdown, the table's fastest cells, the recommendation, and where the report is."""
    data = load_profile(result.parent_run_id)
    top = result.breakdown[0]
    print(f"\nprofile: {len(result.cells)} cells in {result.wall_s:.0f} s; parent run {result.parent_run_id}")
    print(f"most expensive step of the default configuration: {top['step']} ({top['share'] * 100:.0f}% of "
          f"{sum(r['mean_ms'] for r in result.breakdown):.0f} ms per document); profiled: {', '.join(result.steps)}")
    print()
    print(profile_table(data).to_string(index=False))
    print()
    m = data.manifest
    print(explain(recommendation(data), end_to_end_ms=m["sla"]["end_to_end_ms"],
                  price_per_core_hour=m["prices"]["price_per_core_hour"], currency=m["prices"]["currency"]))
    if result.report_dir:
        print(f"\nReport: {result.report_dir / 'report.md'} (and report.html)")
