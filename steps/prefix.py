"""Evaluating a grid of configurations with shared-prefix reuse.

A step's output for (variant, input document, everything upstream) is computed once per batch and
reused by every configuration that shares that prefix, together with the latency measured when it
was computed. Configurations are a product of per-step variant lists, so the work is a tree:

    batch ─ decode ─┬─ preprocess p1 ─┬─ ocr o1 ─┬─ classify c1 ─┬─ extract e1   → configuration (p1,o1,c1,e1)
                    │                 │          │               └─ extract e2   → (p1,o1,c1,e2)
                    …                 …          …

Each configuration's per-document step latency is the wall time of the batch through that node
(ARCHITECTURE.md), and its end-to-end latency is the sum along its path (decoding counts towards
preprocess). Each node's wall and CPU time is also kept: their sum is the floor of the sweep's work.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from corpus.records import DocumentRef
from steps.base import STEPS, Variant
from steps.catalog import Catalog, Configuration
from steps.pipeline import DocumentOutcome, _decode, cpu_seconds
from steps.records import ExtractInput, StepFailure


@dataclass(frozen=True)
class Grid:
    """Variant ids per step; the configurations are their product (in this order)."""

    preprocess: tuple[str, ...]
    ocr: tuple[str, ...]
    classify: tuple[str, ...]
    extract: tuple[str, ...]

    def configurations(self) -> list[Configuration]:
        return [Configuration(*ids) for ids in itertools.product(self.preprocess, self.ocr, self.classify, self.extract)]

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        return {step: getattr(self, step) for step in STEPS}


@dataclass
class NodeTime:
    wall_ms: float
    cpu_ms: float


@dataclass
class BatchResult:
    """Outcomes per configuration id (documents in batch order) and the time of every unique computation."""

    outcomes: dict[str, list[DocumentOutcome]] = field(default_factory=dict)
    nodes: dict[str, NodeTime] = field(default_factory=dict)


def _timed(variant: Variant, inputs: Sequence) -> tuple[list, NodeTime]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    outputs = variant.run(inputs)
    return outputs, NodeTime((time.perf_counter() - wall) * 1000.0, (cpu_seconds() - cpu) * 1000.0)


def _first_failure(*stages: Sequence, k: int) -> StepFailure | None:
    return next((stage[k] for stage in stages if isinstance(stage[k], StepFailure)), None)


def _each(variant: Variant, batches: list[list]) -> tuple[list[list], list[NodeTime]]:
    """A node's variant over every batch in a row (the model stays warm, as in a server of its own)."""
    outputs, times = [], []
    for inputs in batches:
        out, t = _timed(variant, inputs)
        outputs.append(out)
        times.append(t)
    return outputs, times


def _total(times: list[NodeTime]) -> NodeTime:
    return NodeTime(sum(t.wall_ms for t in times), sum(t.cpu_ms for t in times))


def evaluate_batches(catalog: Catalog, batches: Sequence[Sequence[DocumentRef]],
                     configurations: Iterable[Configuration]) -> BatchResult:
    """Every given configuration on every batch, each shared prefix computed once per batch.

    Each node of the tree runs over all batches before the next node starts, so one model serves
    consecutive batches; every batch is still timed on its own (its documents' latency).
    """
    wanted = list(configurations)
    result = BatchResult()
    for vid in {vid for config in wanted for vid in config.ids()}:
        catalog.get(vid).load()  # loading models is start-up, not latency
    images, decode = [], []
    for docs in batches:
        wall, cpu = time.perf_counter(), cpu_seconds()
        images.append([_decode(doc) for doc in docs])
        decode.append(NodeTime((time.perf_counter() - wall) * 1000.0, (cpu_seconds() - cpu) * 1000.0))
    result.nodes["decode"] = _total(decode)
    for p in dict.fromkeys(c.preprocess for c in wanted):
        pre, t_pre = _each(catalog.get(p), images)
        result.nodes[p] = _total(t_pre)
        for o in dict.fromkeys(c.ocr for c in wanted if c.preprocess == p):
            ocr, t_ocr = _each(catalog.get(o), pre)
            result.nodes[f"{p}|{o}"] = _total(t_ocr)
            for c in dict.fromkeys(x.classify for x in wanted if (x.preprocess, x.ocr) == (p, o)):
                cls, t_cls = _each(catalog.get(c), ocr)
                result.nodes[f"{p}|{o}|{c}"] = _total(t_cls)
                ext_in = [[o_ if isinstance(o_, StepFailure) else (c_ if isinstance(c_, StepFailure) else ExtractInput(o_, c_))
                           for o_, c_ in zip(ob, cb, strict=True)] for ob, cb in zip(ocr, cls, strict=True)]
                for e in dict.fromkeys(x.extract for x in wanted if (x.preprocess, x.ocr, x.classify) == (p, o, c)):
                    ext, t_ext = _each(catalog.get(e), ext_in)
                    result.nodes[f"{p}|{o}|{c}|{e}"] = _total(t_ext)
                    config = Configuration(p, o, c, e)
                    outcomes = result.outcomes.setdefault(config.id, [])
                    for b, docs in enumerate(batches):
                        latency = {"preprocess": decode[b].wall_ms + t_pre[b].wall_ms, "ocr": t_ocr[b].wall_ms,
                                   "classify": t_cls[b].wall_ms, "extract": t_ext[b].wall_ms}
                        cpu_ms = decode[b].cpu_ms + t_pre[b].cpu_ms + t_ocr[b].cpu_ms + t_cls[b].cpu_ms + t_ext[b].cpu_ms
                        stages = (images[b], pre[b], ocr[b], cls[b], ext[b])
                        outcomes.extend(
                            DocumentOutcome(
                                doc_id=doc.doc_id, source=str(doc.path), distribution=doc.distribution, truth=doc.truth,
                                ocr=None if isinstance(ocr[b][k], StepFailure) else ocr[b][k],
                                classification=None if isinstance(cls[b][k], StepFailure) else cls[b][k],
                                extraction=None if isinstance(ext[b][k], StepFailure) else ext[b][k],
                                failure=_first_failure(*stages, k=k),
                                latency_ms=dict(latency), end_to_end_ms=sum(latency.values()), batch_size=len(docs),
                                cpu_ms=cpu_ms, batch_id=docs[0].doc_id,
                            )
                            for k, doc in enumerate(docs)
                        )
    return result


def evaluate_batch(catalog: Catalog, docs: Sequence[DocumentRef], configurations: Iterable[Configuration]) -> BatchResult:
    """Every given configuration on one batch, each shared prefix computed once."""
    return evaluate_batches(catalog, [docs], configurations)
