"""Re-measuring what a sweep measured too roughly: after the sweep, the runs whose SLA verdict is uncertain,
those measured under heavy contention within 2× of the budget, and those on a distribution's accuracy–latency
Pareto front are re-timed — the same tasks (the same batches, shared prefixes computed once) on the same pool,
accuracy untouched — in windows: one window is one more pass over the run's batches, and after each the run's
p95 is estimated again over every batch measured so far (the first pass included); the run stops when two
successive estimates agree within `stability_pct` (or after `repeats` windows, or when the sweep's
`max_measure_s` are spent). A p95 over a few batches is their slowest one, so a single window is as noisy as
the first pass: the estimate over all of them is what settles (measured: bench/bench_stability.py). Its
latency, with the machine's load averaged over the same passes, replaces the run's metrics and verdict;
`latency_measurements` counts the passes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mlproject.sweep.execute import ChunkResult, run_tasks
from mlproject.sweep.plan import SweepRequest, plan_tasks
from mlproject.sweep.record import RunRecord
from steps.catalog import Catalog, Configuration
from steps.latency import pareto_front, stable
from steps.runner import DocumentOutcome
from steps.scoring import latency_metrics

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (configuration id, distribution)


@dataclass
class Remeasured:
    """What the re-measuring did: the runs chosen, windows run, seconds spent, the runs that settled."""

    chosen: list[Key] = field(default_factory=list)
    windows: int = 0
    seconds: float = 0.0
    settled: list[Key] = field(default_factory=list)
    changed: dict[Key, tuple[str, str]] = field(default_factory=dict)  # verdict before → after, where it moved


NEAR = 2.0  # a run measured under heavy contention with its p95 interval within this factor of the budget


def _near_under_load(record: RunRecord, budget_ms: float) -> bool:
    """Measured under heavy contention and near the line: the load may have moved its interval by more than
    its width (either way: a quiet run's slow batch, a loaded run's fast one), so a certain verdict there is
    not taken on one pass."""
    m = record.metrics
    if m.get("load.other_cpu_share", 0.0) <= record.contention or "latency_ms.p95_ci_low" not in m:
        return False
    return m["latency_ms.p95_ci_low"] <= NEAR * budget_ms and m["latency_ms.p95_ci_high"] >= budget_ms / NEAR


def choose(req: SweepRequest, records: Sequence[RunRecord]) -> list[RunRecord]:
    """The runs to re-measure: an uncertain verdict, measured under heavy contention near the budget, or on
    their distribution's Pareto front (accuracy up, p95 down) where the distribution has several runs."""
    chosen = []
    for dist in dict.fromkeys(r.distribution for r in records):
        part = [r for r in records if r.distribution == dist]
        front = pareto_front({r.config.id: (r.metrics.get("accuracy", 0.0), r.metrics["latency_ms.p95"])
                              for r in part if "latency_ms.p95" in r.metrics})
        on_front = front if len(part) > 1 else set()  # one run alone (run-config): only if uncertain
        chosen += [r for r in part if r.outcomes and (r.config.id in on_front or r.verdict(req.sla) == "uncertain"
                                                      or _near_under_load(r, req.sla.end_to_end_ms))]
    return chosen


def _p95(outcomes: Sequence[DocumentOutcome]) -> float:
    return float(np.percentile([o.end_to_end_ms for o in outcomes], 95))


def remeasure(req: SweepRequest, records: Sequence[RunRecord], catalog: Catalog,
              update: Callable[[RunRecord], None], progress: Callable[[str], None] | None = None) -> Remeasured:
    """Re-time the chosen runs (see the module docstring); `update(record)` is called for each re-measured
    run with its metrics replaced."""
    out = Remeasured()
    params = req.measure
    chosen = choose(req, records) if params.repeats > 0 else []
    out.chosen = [(r.config.id, r.distribution) for r in chosen]
    if not chosen:
        return out
    by_key = {(r.config.id, r.distribution): r for r in chosen}
    p95s = {key: [r.metrics["latency_ms.p95"]] for key, r in by_key.items()}
    passes: dict[Key, list[tuple[list[DocumentOutcome], float]]] = {
        key: [(list(r.outcomes or []), r.metrics.get("load.other_cpu_share", 0.0))] for key, r in by_key.items()}
    active = set(by_key)
    started = time.perf_counter()
    timed_req = replace(req, reuse=True)
    for window in range(1, params.repeats + 1):
        if not active or time.perf_counter() - started > params.max_measure_s:
            break
        todo: dict[str, list[Configuration]] = {}
        for cid, dist in sorted(active):
            todo.setdefault(dist, []).append(Configuration(*cid.split("|")))
        if progress:
            progress(f"re-measuring latency: window {window}, {len(active)} runs")
        chunks: list[ChunkResult] = []
        run_tasks(plan_tasks(timed_req, todo), req.workers, catalog, chunks.append, req.executor)
        out.windows = window
        found: dict[Key, list[DocumentOutcome]] = {}
        shares: dict[Key, list[float]] = {}
        for chunk in sorted(chunks, key=lambda c: (c.group, c.chunk)):
            for cid, outcomes in chunk.outcomes.items():
                key = (cid, chunk.group[0])
                if key in active:
                    found.setdefault(key, []).extend(replace(o, batch_id=f"{o.batch_id}@{window}") for o in outcomes)
                    shares.setdefault(key, []).append(chunk.other_cpu_share)
        for key, outcomes in found.items():
            passes[key].append((outcomes, sum(shares[key]) / len(shares[key])))
            p95s[key].append(_p95([o for measured, _ in passes[key] for o in measured]))  # all batches so far
            if stable(p95s[key], params.stability_pct):
                out.settled.append(key)
                active.discard(key)
    out.seconds = time.perf_counter() - started
    for key, record in by_key.items():
        if len(passes[key]) < 2:
            continue
        before = record.verdict(req.sla)
        pooled = [o for outcomes, _ in passes[key] for o in outcomes]
        share = sum(s for _, s in passes[key]) / len(passes[key])
        record.metrics.update(latency_metrics(pooled, req.sla, params, share))
        record.metrics["latency_measurements"] = float(len(passes[key]))  # the first pass and each window
        record.metrics["latency_settled"] = float(key in out.settled)
        after = record.verdict(req.sla)
        if after != before:
            out.changed[key] = (before, after)
        update(record)
    log.info("re-measured %d runs in %d windows, %.1f s (%d settled)", len(out.chosen), out.windows, out.seconds,
             len(out.settled))
    return out
