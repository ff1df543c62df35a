"""`cardflow sweep` / `cardflow run-config` (MLproject entry points `sweep`, `run_config`).

Reads: a corpus (generated from `distributions`, `n`, `seed` when `corpus` is empty), the pipeline
spec (configs/pipeline.yaml: default grid, SLA), the trained classifiers in the model store (trained on
first use when missing).
Writes: an MLflow parent run (experiment `cardflow-sweep`, tag cardflow.kind=sweep) with one nested
run per (configuration, distribution) (tag cardflow.kind=config-run; params: the four variant ids
and versions, corpus manifest hash, distribution, batch size, workers, cores, SLA budgets, git commit,
package versions; metrics: accuracy, assert.*, l1/l2 accuracy, field.*.exact, cer, latency_ms.*,
step.*.latency_ms.*, throughput_docs_s, cpu_utilisation, peak_rss_mb, sla_met; artifacts:
predictions.jsonl, step_latency.csv, confusion_l2.png), the parent's results table (results.json) and
sweep.json, and reports/<sweep>/ (also on the parent run).

The modules: plan (the request and its tasks), execute (tasks on the pool), record (what a run logs),
runs (MLflow), summary (what is printed); the report is analysis/report.py's.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from analysis.report import write_sweep_report
from mlproject.sweep.execute import ChunkResult, run_tasks
from mlproject.sweep.halving import HalvingResult, run_halving
from mlproject.sweep.plan import SweepRequest, Task, build_request, code_version, plan_tasks
from mlproject.sweep.record import RunRecord, breakdown_text, build_record
from mlproject.sweep.remeasure import Remeasured, remeasure
from mlproject.sweep.runs import EXPERIMENT, finished_runs, kill_stale, log_run, parent_run, update_run
from mlproject.sweep.summary import print_summary
from mlproject.train import ensure_trained
from steps.base import STEPS
from steps.catalog import Catalog, Configuration
from steps.spec import PipelineSpec
from tracking.edge import environment_params, experiment_context

__all__ = ["EXPERIMENT", "SweepRequest", "SweepResult", "Task", "breakdown_text", "build_request", "compute_only",
           "plan_tasks", "print_summary", "run_sweep"]


@dataclass
class SweepResult:
    parent_run_id: str
    report_dir: Path | None
    runs: dict[tuple[str, str], str] = field(default_factory=dict)  # (config id, distribution) → run id
    logged: int = 0
    skipped: int = 0
    wall_s: float = 0.0
    unique_compute_s: float = 0.0
    logging_s: float = 0.0  # main process: building run records and logging them to MLflow
    node_seconds: dict[str, float] = field(default_factory=dict)
    node_docs: dict[str, int] = field(default_factory=dict)  # unique step computation -> documents computed
    pruned: dict[tuple[str, str], str] = field(default_factory=dict)  # --search halving: pruned runs
    search: HalvingResult | None = None
    mean_latency_ms: dict[tuple[str, str], float] = field(default_factory=dict)  # end to end, per document
    warmup_ms: dict[str, list[float]] = field(default_factory=dict)  # variant id → its warm-up run per worker
    verdicts: dict[tuple[str, str], str] = field(default_factory=dict)  # (config id, distribution) → SLA verdict
    remeasured: Remeasured = field(default_factory=Remeasured)


def run_sweep(req: SweepRequest, catalog: Catalog, *, spec: PipelineSpec | None = None, progress: bool = True,
              write_report: bool = True) -> SweepResult:
    """Run the sweep (resuming: finished configuration runs are skipped). Ctrl-C ends open runs as KILLED.
    Classifiers the grid needs are trained first when they never were (with `spec`'s training section)."""
    import mlflow

    ensure_trained(catalog, req.grid.classify, workers=req.workers, spec=spec)
    req = on_executor(req)
    client, attached_id, experiment_id = experiment_context(EXPERIMENT)
    configs = req.configurations
    codes = {c.id: code_version(catalog, c) for c in configs}
    key = hashlib.sha256(json.dumps([req.name, sorted(codes.items()), req.distributions, req.corpus.manifest_hash,
                                     req.batch_size]).encode()).hexdigest()[:16]
    kill_stale(client, experiment_id, key)
    finished = finished_runs(client, experiment_id, req.corpus.manifest_hash, req.batch_size)
    result = SweepResult(parent_run_id="", report_dir=None)
    todo: dict[str, list[Configuration]] = {}
    for dist in req.distributions:
        for config in configs:
            done = finished.get((config.short_hash, dist, codes[config.id]))
            if done and req.search.kind == "exhaustive":  # a search ranks every configuration afresh
                result.runs[(config.id, dist)] = done
                result.skipped += 1
            else:
                todo.setdefault(dist, []).append(config)
    env = environment_params()
    started = time.perf_counter()
    with parent_run(client, experiment_id, attached_id, req, key, _sweep_params(req, catalog, env)) as parent_id:
        result.parent_run_id = parent_id or ""
        records: list[RunRecord] = []

        def log_one(record: RunRecord) -> None:
            run_id = log_run(client, experiment_id, parent_id, req, record, catalog, env, codes[record.config.id], key)
            result.runs[(record.config.id, record.distribution)] = run_id
            result.mean_latency_ms[(record.config.id, record.distribution)] = record.mean_latency_ms
            result.verdicts[(record.config.id, record.distribution)] = record.verdict(req.sla)
            result.logged += 1
            records.append(record)

        def log_pruned(record: RunRecord) -> None:
            run_id = log_run(client, experiment_id, parent_id, req, record, catalog, env, codes[record.config.id], key)
            result.pruned[(record.config.id, record.distribution)] = run_id

        def update_one(record: RunRecord) -> None:
            update_run(client, result.runs[(record.config.id, record.distribution)], req, record)
            result.verdicts[(record.config.id, record.distribution)] = record.verdict(req.sla)

        if req.search.kind == "halving":
            _execute_halving(req, todo, catalog, result, log_one, log_pruned, progress)
        else:
            _execute(req, todo, catalog, result, log_one, progress)
        result.remeasured = remeasure(req, records, catalog, update_one,
                                      (lambda text: tqdm.write(text)) if progress else None)
        for record in records:
            record.outcomes = None  # measured: the outcomes are in the runs' predictions.jsonl
        result.wall_s = time.perf_counter() - started
        if parent_id is not None:
            mlflow.log_metrics(_sweep_metrics(req, result))
            mlflow.log_dict(_sweep_manifest(req, result, codes), "sweep.json")
            if req.nested:
                _log_results_table(records, result, req.sla)
            if write_report and req.nested:
                result.report_dir = write_sweep_report(result.parent_run_id, req.report_root / req.name, catalog,
                                                       client)
                mlflow.log_artifacts(str(result.report_dir), "report")
    return result


def on_executor(req: SweepRequest) -> SweepRequest:
    """The request as it runs: on Ray, `workers` becomes the cluster's CPUs (the tasks are cut for them)."""
    if req.executor.kind != "ray":
        return req
    import dataclasses

    from mlproject.sweep.execute_ray import connect

    cluster = connect(req.executor.address, req.workers)
    print(f"Ray cluster at {cluster['address']}: {cluster['nodes']} node(s), {cluster['cpus']} CPUs")
    return dataclasses.replace(req, workers=max(1, cluster["cpus"]))


def _execute(req: SweepRequest, todo: dict[str, list[Configuration]], catalog: Catalog, result: SweepResult,
             log_one, progress: bool) -> None:
    """Evaluate the missing (configuration, distribution) pairs (see plan_tasks); a group's runs are logged as
    soon as its last chunk is in, while the other tasks compute."""
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
        _absorb(result, chunk)
        parts = arrived.setdefault(chunk.group, [])
        parts.append(chunk)
        if len(parts) < expected[chunk.group]:
            return
        parts.sort(key=lambda c: c.chunk)
        distribution = chunk.group[0]
        peak_mb = max(c.peak_mb for c in parts)
        share = sum(c.other_cpu_share for c in parts) / len(parts)
        started = time.perf_counter()
        for config_id in parts[0].outcomes:
            outcomes = [o for c in parts for o in c.outcomes[config_id]]
            log_one(build_record(Configuration(*config_id.split("|")), distribution, outcomes, req.sla, peak_mb,
                                 breakdown_plot=not req.nested, measure=req.measure, other_cpu_share=share))
            bar.update(1)
        result.logging_s += time.perf_counter() - started
        del arrived[chunk.group]

    run_tasks(tasks, req.workers, catalog, collect, req.executor)
    bar.close()
    result.unique_compute_s = sum(result.node_seconds.values())


def _absorb(result: SweepResult, chunk: ChunkResult) -> None:
    for node, seconds in chunk.node_seconds.items():
        result.node_seconds[node] = result.node_seconds.get(node, 0.0) + seconds
    for node, docs in chunk.node_docs.items():
        result.node_docs[node] = result.node_docs.get(node, 0) + docs
    for vid, ms in chunk.warmup_ms.items():
        result.warmup_ms.setdefault(vid, []).append(ms)


def search_evaluator(req: SweepRequest, catalog: Catalog, result: SweepResult, load: dict[str, list] | None = None):
    """What halving calls per stage: the stage's configurations on its new documents, as the sweep's tasks (shared
    prefixes once per document) on the request's executor; each (configuration id, distribution)'s outcomes."""
    def evaluate(todo: dict[str, list[Configuration]], docs: dict) -> dict[tuple[str, str], list]:
        chunks: list[ChunkResult] = []
        run_tasks(plan_tasks(req, todo, docs), req.workers, catalog, chunks.append, req.executor)
        found: dict[tuple[str, str], list] = {}
        for chunk in sorted(chunks, key=lambda c: (c.group, c.chunk)):
            _absorb(result, chunk)
            if load is not None:
                load.setdefault(chunk.group[0], []).append((chunk.peak_mb, chunk.other_cpu_share))
            for config_id, outcomes in chunk.outcomes.items():
                found.setdefault((config_id, chunk.group[0]), []).extend(outcomes)
        return found
    return evaluate


def _execute_halving(req: SweepRequest, todo: dict[str, list[Configuration]], catalog: Catalog, result: SweepResult,
                     log_one, log_pruned, progress: bool) -> None:
    """Successive halving (mlproject/sweep/halving.py), then one run per (configuration, distribution): the last
    stage's as full runs, the others as pruned runs tagged with their stage and the documents they saw."""
    docs = {dist: [d for d in req.corpus if d.distribution == dist] for dist in todo}
    load: dict[str, list] = {}
    bar = tqdm(desc=f"{req.name} (halving)", unit="config-stage", disable=not progress,
               bar_format="{l_bar}{n_fmt} evaluated [{elapsed}]{postfix}")

    def on_stage(dist: str, stage) -> None:
        bar.update(len(stage.evaluated))
        bar.set_postfix_str(f"{dist}: stage {stage.index} on {stage.documents} docs kept {len(stage.kept)}/"
                            f"{len(stage.evaluated)}")
        if progress:
            tqdm.write(f"{dist}: stage {stage.index}, {stage.documents} documents: {len(stage.evaluated)} evaluated, "
                       f"{len(stage.kept)} kept (best {stage.accuracy[stage.evaluated[0]]:.1%})")

    search = run_halving(todo, docs, req.search, req.batch_size, search_evaluator(req, catalog, result, load), on_stage)
    bar.close()
    result.search = search
    result.unique_compute_s = sum(result.node_seconds.values())
    started = time.perf_counter()
    bar = tqdm(total=len(search.outcomes), desc=f"{req.name} (logging)", unit="run", disable=not progress)
    for (config_id, dist), outcomes in search.outcomes.items():
        peak_mb = max(p for p, _ in load[dist])
        share = sum(s for _, s in load[dist]) / len(load[dist])
        record = build_record(Configuration(*config_id.split("|")), dist, outcomes, req.sla, peak_mb,
                              measure=req.measure, other_cpu_share=share)
        stage = search.stopped[(config_id, dist)]
        final = search.is_final(config_id, dist)
        ranks = search.ranks(config_id, dist)
        record.search = {"cardflow.search": "survivor" if final else "pruned", "cardflow.search_stage": str(stage),
                         "cardflow.search_documents": str(len(outcomes)),
                         "cardflow.search_ranks": ",".join("" if r is None else str(r) for r in ranks)}
        (log_one if final else log_pruned)(record)
        if not final:
            record.outcomes = None
        bar.update(1)
    bar.close()
    result.logging_s += time.perf_counter() - started


def compute_only(req: SweepRequest, catalog: Catalog) -> tuple[float, float]:
    """The sweep's unique step computations alone, on the same tasks and pool, with nothing logged and no
    run records built (benchmarks: the floor). Returns (wall seconds, summed wall seconds of the unique
    computations)."""
    req = on_executor(req)
    tasks = plan_tasks(req, {dist: req.configurations for dist in req.distributions})
    chunks: list[ChunkResult] = []
    started = time.perf_counter()
    run_tasks(tasks, req.workers, catalog, chunks.append, req.executor)
    wall = time.perf_counter() - started
    return wall, sum(s for chunk in chunks for s in chunk.node_seconds.values())


def _sweep_params(req: SweepRequest, catalog: Catalog, env: dict[str, str]) -> dict[str, Any]:
    possible = 1
    for step in STEPS:
        possible *= len(catalog.ids(step))
    return {
        "corpus": str(req.corpus.root), "corpus_manifest_sha256": req.corpus.manifest_hash,
        "distributions": ",".join(req.distributions), "batch_size": req.batch_size, "workers": req.workers,
        "sla_ms": req.sla.end_to_end_ms, **{f"sla.{s}_ms": v for s, v in req.sla.steps_ms.items()},
        **{f"grid.{step}": ",".join(ids) for step, ids in req.grid.as_dict().items()},
        "configurations": len(req.configurations), "configurations_possible": possible, "reuse": req.reuse,
        **req.executor.params(), **req.search.params(), **env,
    }


def _sweep_metrics(req: SweepRequest, result: SweepResult) -> dict[str, float]:
    verdicts = list(result.verdicts.values())
    return {"sweep_wall_s": result.wall_s, "unique_compute_s": result.unique_compute_s,
            "floor_s": result.unique_compute_s / req.workers, "runs_logged": float(result.logged),
            "runs_skipped": float(result.skipped), "remeasure_s": result.remeasured.seconds,
            "runs_remeasured": float(len(result.remeasured.chosen)),
            "remeasure_windows": float(result.remeasured.windows),
            "step_computations": float(sum(result.node_docs.values())), "runs_pruned": float(len(result.pruned)),
            **{f"runs_sla_{v}": float(verdicts.count(v)) for v in ("met", "uncertain", "missed")},
            **{f"warmup_ms.{vid}": sum(ms) / len(ms) for vid, ms in result.warmup_ms.items()}}


def _sweep_manifest(req: SweepRequest, result: SweepResult, codes: dict[str, str]) -> dict[str, Any]:
    return {
        "name": req.name, "corpus": str(req.corpus.root), "corpus_manifest_sha256": req.corpus.manifest_hash,
        "distributions": list(req.distributions), "batch_size": req.batch_size,
        "sla": {"end_to_end_ms": req.sla.end_to_end_ms, "steps_ms": req.sla.steps_ms},
        "grid": {k: list(v) for k, v in req.grid.as_dict().items()},
        "runs": [{"config_id": cid, "distribution": dist, "run_id": run_id, "code": codes[cid]}
                 for (cid, dist), run_id in sorted(result.runs.items())],
        **({"search": {**req.search.params(), "stages": result.search.manifest(),
                       "pruned": [{"config_id": cid, "distribution": dist, "run_id": run_id,
                                   "stage": result.search.stopped[(cid, dist)],
                                   "documents": len(result.search.outcomes[(cid, dist)])}
                                  for (cid, dist), run_id in sorted(result.pruned.items())],
                       "winner_ranks": {dist: result.search.ranks(result.search.survivors(dist)[0], dist)
                                        for dist in result.search.stages}}}
           if result.search is not None else {}),
        "measuring": {"repeats": req.measure.repeats, "stability_pct": req.measure.stability_pct,
                      "max_measure_s": req.measure.max_measure_s, "contention": req.measure.contention,
                      "runs_remeasured": len(result.remeasured.chosen), "windows": result.remeasured.windows,
                      "seconds": round(result.remeasured.seconds, 1), "settled": len(result.remeasured.settled),
                      **{v: list(result.verdicts.values()).count(v) for v in ("met", "uncertain", "missed")},
                      "warmup_ms": {vid: round(sum(ms) / len(ms), 1) for vid, ms in result.warmup_ms.items()}},
    }


def _log_results_table(records: list[RunRecord], result: SweepResult, req_sla) -> None:
    """The runs logged now as one table on the parent run (MLflow's artifact view shows it as a table), and the
    parent's description: how many runs, and the best per distribution among them."""
    import mlflow

    if not records:
        return
    # Column names without dots: MLflow's table view leaves a dotted column blank.
    rows = [{"configuration": r.config.label, "distribution": r.distribution,
             "accuracy": round(r.metrics.get("accuracy", 0.0), 4),
             "latency_ms_p95": round(r.metrics.get("latency_ms.p95", 0.0), 1),
             "latency_ms_p95_ci_low": round(r.metrics.get("latency_ms.p95_ci_low", 0.0), 1),
             "latency_ms_p95_ci_high": round(r.metrics.get("latency_ms.p95_ci_high", 0.0), 1),
             "sla_verdict": r.verdict(req_sla), "sla_met": r.verdict(req_sla) == "met",
             "most_expensive_step": r.most_expensive_step,
             "run_id": result.runs[(r.config.id, r.distribution)]} for r in records]
    mlflow.log_table({k: [row[k] for row in rows] for k in rows[0]}, "results.json")
    lines = [f"{result.logged + result.skipped} runs ({result.skipped} reused). Best per distribution (within the "
             "SLA — its p95's interval under the budget — where any configuration meets it; ties: the lower p95), "
             "among the runs logged now:"]
    for dist in dict.fromkeys(row["distribution"] for row in rows):
        part = [row for row in rows if row["distribution"] == dist]
        pool = [row for row in part if row["sla_met"]] or part  # the rule of analysis.sweep.best_per_distribution
        best = min(pool, key=lambda row: (-row["accuracy"], row["latency_ms_p95"]))
        lines.append(f"- `{dist}`: **{best['configuration']}** — {best['accuracy']:.1%}, p95 "
                     f"{best['latency_ms_p95']:.0f} ms ({best['latency_ms_p95_ci_low']:.0f}–"
                     f"{best['latency_ms_p95_ci_high']:.0f}){'' if best['sla_met'] else ' (none surely meets the SLA)'}")
    mlflow.set_tag("mlflow.note.content", "\n".join(lines))
