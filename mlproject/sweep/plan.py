"""Planning a sweep: the validated request (every parameter checked before anything runs) and its tasks.

A task is some whole batches of one distribution through one preprocessing prefix, for every configuration
under that prefix (so shared prefixes are computed once). Tasks cross to worker processes as JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.params import (
    ParameterError,
    is_default,
    names,
    non_negative_float,
    non_negative_int,
    or_default,
    positive_float,
    positive_int,
)
from corpus.records import Corpus, DocumentRef, GroundTruth
from corpus.resolve import resolve_corpus
from mlproject.sweep.halving import SearchParams, search_param
from steps.base import STEPS
from steps.catalog import Catalog, Configuration
from steps.errors import StepError
from steps.latency import MeasureParams
from steps.runner import Grid
from steps.spec import PipelineSpec, Sla

SCORING_VERSION = "1"  # bump when the assertions or metrics change meaning: finished runs are then redone
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Executor:
    """Where the tasks run: `local` (this machine's process pool, the default) or `ray` (a Ray cluster at
    `address`, or a Ray instance started here when there is none)."""

    kind: str = "local"
    address: str | None = None

    def params(self) -> dict[str, str]:
        return {"executor": self.kind, **({"ray_address": self.address or "local"} if self.kind == "ray" else {})}


def executor_param(executor: Any = None, ray_address: Any = None) -> Executor:
    """`--executor local|ray` and `--ray-address`, checked: an unknown executor, an address without Ray, or Ray
    not installed is a ParameterError naming the parameter."""
    kind = "local" if is_default(executor) else str(executor).strip().lower()
    if kind not in EXECUTORS:
        raise ParameterError(f"parameter executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    address = None if is_default(ray_address) else str(ray_address).strip()
    if address and kind != "ray":
        raise ParameterError(f"parameter ray_address: {address!r} is only used with executor ray")
    if kind == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise ParameterError("parameter executor: 'ray' needs Ray, which is not installed; install it with "
                                 "`pip install 'cardflow[ray]'` (`make dev` does)") from exc
    return Executor(kind, address)


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
    measure: MeasureParams = MeasureParams()
    executor: Executor = Executor()
    search: SearchParams = SearchParams()

    @property
    def configurations(self) -> list[Configuration]:
        return self.grid.configurations()


def build_request(*, catalog: Catalog, spec: PipelineSpec, corpus: str | Path | None = None,
                  distributions: str | Sequence[str] | None = None, n: Any = 30, seed: Any = 7,
                  batch_size: Any = None, workers: Any = 2, sla_ms: Any = None, preprocess: Any = None,
                  ocr: Any = None, classify: Any = None, extract: Any = None, name: str | None = None,
                  reuse: bool = True, single: bool = False, report_root: Path = Path("reports"),
                  latency_repeats: Any = None, stability_pct: Any = None, max_measure_s: Any = None,
                  executor: Any = None, ray_address: Any = None, search: Any = None, search_eta: Any = None,
                  search_first_docs: Any = None) -> SweepRequest:
    """Validate every parameter before anything runs; errors name the parameter and the valid choices.

    `single` (run_config): one configuration — one variant per step, the spec's default configuration for
    every step not given — on one distribution, logged as one top-level run. `latency_repeats`,
    `stability_pct`, `max_measure_s`: how uncertain latencies are re-measured (default: the spec's `measure:`).
    `executor`, `ray_address`: where the tasks run (see Executor). `search`, `search_eta`, `search_first_docs`:
    exhaustive (every configuration on every document) or successive halving (mlproject/sweep/halving.py).
    """
    measure = measure_params(spec.measure, latency_repeats, stability_pct, max_measure_s)
    where = executor_param(executor, ray_address)
    how = search_param(search, search_eta, search_first_docs)
    if single and how.kind != "exhaustive":
        raise ParameterError("parameter search: run-config runs one configuration; search halving is for sweep")
    grid_ids = {}
    for step, value in zip(STEPS, (preprocess, ocr, classify, extract), strict=True):
        chosen = names(value)
        if single and len(chosen) > 1:
            raise ParameterError(f"parameter {step}: run-config takes one variant, got {value!r} (use sweep)")
        chosen = chosen or ((getattr(spec.default, step),) if single else spec.grid[step])
        try:
            grid_ids[step] = tuple(dict.fromkeys(catalog.resolve(step, nm) for nm in chosen))
        except StepError as exc:
            raise ParameterError(f"parameter {step}: {exc}") from exc
    dists_asked = names(distributions)
    if single and len(dists_asked) > 1:
        raise ParameterError(f"parameter distribution: run-config takes one distribution, got {distributions!r}")
    batch = positive_int("batch_size", or_default(batch_size, spec.sla.batch_size))
    workers_n = positive_int("workers", workers)
    n_docs, seed_n = positive_int("n", n), int(float(seed))
    budget = spec.sla.end_to_end_ms if is_default(sla_ms) else positive_float("sla_ms", sla_ms)
    sla = Sla(batch_size=batch, end_to_end_ms=budget, steps_ms=dict(spec.sla.steps_ms))
    # run-config without a distribution: one corpus of the spec's first distribution, not all of them
    default_dists = spec.distributions[:1] if single else spec.distributions
    loaded, dists = resolve_corpus(corpus, dists_asked, default_dists, n_docs, seed_n, workers_n)
    if single:
        dists = dists[:1]
    grid = Grid(**grid_ids)
    digest = hashlib.sha256(json.dumps([grid.as_dict(), dists, loaded.manifest_hash, batch]).encode()).hexdigest()
    return SweepRequest(loaded, dists, grid, batch, workers_n, sla, name or f"sweep-{digest[:8]}", reuse, report_root,
                        nested=not single, measure=measure, executor=where, search=how)


def measure_params(defaults: MeasureParams, latency_repeats: Any = None, stability_pct: Any = None,
                   max_measure_s: Any = None) -> MeasureParams:
    """The spec's measuring defaults with the parameters given (each checked, named in its error)."""
    import dataclasses

    out = dataclasses.replace(
        defaults,
        repeats=defaults.repeats if is_default(latency_repeats) else non_negative_int("latency_repeats", latency_repeats),
        stability_pct=defaults.stability_pct if is_default(stability_pct) else positive_float("stability_pct",
                                                                                               stability_pct),
        max_measure_s=defaults.max_measure_s if is_default(max_measure_s) else non_negative_float("max_measure_s",
                                                                                                   max_measure_s))
    out.validate()
    return out


def code_version(catalog: Catalog, config: Configuration) -> str:
    """What a finished run's results depend on besides its inputs: every variant's fingerprint and the scoring."""
    parts = [catalog.get(vid).fingerprint() for vid in config.ids()] + [SCORING_VERSION]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


# --- tasks -----------------------------------------------------------------------------------------


def doc_to_json(doc: DocumentRef) -> dict[str, Any]:
    return {"doc_id": doc.doc_id, "path": str(doc.path), "distribution": doc.distribution,
            "truth": doc.truth.to_json() if doc.truth else None}


def doc_from_json(data: dict[str, Any]) -> DocumentRef:
    truth = GroundTruth.from_json(data["truth"]) if data.get("truth") is not None else None
    return DocumentRef(data["doc_id"], Path(data["path"]), data["distribution"], truth)


@dataclass(frozen=True)
class Task:
    """Some whole batches of one distribution through one preprocessing prefix, for the configurations under it."""

    group: tuple[str, str]  # (distribution, preprocessing variant)
    chunk: int  # position of these batches within the group's documents
    docs: tuple[DocumentRef, ...]
    config_ids: tuple[str, ...]
    batch_size: int
    reuse: bool

    def to_json(self) -> str:
        return json.dumps({"group": list(self.group), "chunk": self.chunk, "docs": [doc_to_json(d) for d in self.docs],
                           "config_ids": list(self.config_ids), "batch_size": self.batch_size, "reuse": self.reuse})

    @classmethod
    def from_json(cls, text: str) -> Task:
        data = json.loads(text)
        return cls((data["group"][0], data["group"][1]), int(data["chunk"]),
                   tuple(doc_from_json(d) for d in data["docs"]), tuple(data["config_ids"]), int(data["batch_size"]),
                   bool(data["reuse"]))

    def batches(self) -> list[list[DocumentRef]]:
        return [list(self.docs[k : k + self.batch_size]) for k in range(0, len(self.docs), self.batch_size)]


def plan_tasks(req: SweepRequest, todo: dict[str, list[Configuration]],
               docs_by_dist: dict[str, Sequence[DocumentRef]] | None = None) -> list[Task]:
    """One group per (distribution, preprocessing variant): its documents (the corpus's, or `docs_by_dist`'s)
    go through preprocessing once and the tree of configurations under it. Groups are cut into chunks of whole
    batches so that about 8 tasks per worker keep every core busy to the end (a chunk never splits a batch)."""
    groups = [(dist, prefix) for dist, configs in todo.items() for prefix in dict.fromkeys(c.preprocess for c in configs)]
    per_group = max(1, -(-8 * req.workers // max(1, len(groups)))) if req.workers > 1 else 1
    tasks = []
    for dist, prefix in groups:
        docs = list(docs_by_dist[dist]) if docs_by_dist is not None else [
            d for d in req.corpus if d.distribution == dist]
        ids = tuple(c.id for c in todo[dist] if c.preprocess == prefix)
        n_batches = -(-len(docs) // req.batch_size)
        chunks = min(per_group, n_batches)
        step = -(-n_batches // chunks) * req.batch_size
        for k, first in enumerate(range(0, len(docs), step)):
            tasks.append(Task((dist, prefix), k, tuple(docs[first : first + step]), ids, req.batch_size, req.reuse))
    return tasks
