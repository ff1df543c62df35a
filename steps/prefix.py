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


def evaluate_batch(catalog: Catalog, docs: Sequence[DocumentRef], configurations: Iterable[Configuration]) -> BatchResult:
    """Every given configuration on one batch, each shared prefix computed once."""
    wanted = list(configurations)
    result = BatchResult()
    for vid in {vid for config in wanted for vid in config.ids()}:
        catalog.get(vid).load()  # loading models is start-up, not latency
    wall, cpu = time.perf_counter(), cpu_seconds()
    images = [_decode(doc) for doc in docs]
    decode = NodeTime((time.perf_counter() - wall) * 1000.0, (cpu_seconds() - cpu) * 1000.0)
    result.nodes["decode"] = decode
    for p in dict.fromkeys(c.preprocess for c in wanted):
        pre, t_pre = _timed(catalog.get(p), images)
        result.nodes[p] = t_pre
        for o in dict.fromkeys(c.ocr for c in wanted if c.preprocess == p):
            ocr, t_ocr = _timed(catalog.get(o), pre)
            result.nodes[f"{p}|{o}"] = t_ocr
            for c in dict.fromkeys(x.classify for x in wanted if (x.preprocess, x.ocr) == (p, o)):
                cls, t_cls = _timed(catalog.get(c), ocr)
                result.nodes[f"{p}|{o}|{c}"] = t_cls
                ext_in = [o_ if isinstance(o_, StepFailure) else (c_ if isinstance(c_, StepFailure) else ExtractInput(o_, c_))
                          for o_, c_ in zip(ocr, cls, strict=True)]
                for e in dict.fromkeys(x.extract for x in wanted if (x.preprocess, x.ocr, x.classify) == (p, o, c)):
                    ext, t_ext = _timed(catalog.get(e), ext_in)
                    result.nodes[f"{p}|{o}|{c}|{e}"] = t_ext
                    latency = {"preprocess": decode.wall_ms + t_pre.wall_ms, "ocr": t_ocr.wall_ms,
                               "classify": t_cls.wall_ms, "extract": t_ext.wall_ms}
                    cpu_ms = decode.cpu_ms + t_pre.cpu_ms + t_ocr.cpu_ms + t_cls.cpu_ms + t_ext.cpu_ms
                    config = Configuration(p, o, c, e)
                    result.outcomes[config.id] = [
                        DocumentOutcome(
                            doc_id=doc.doc_id, source=str(doc.path), distribution=doc.distribution, truth=doc.truth,
                            ocr=None if isinstance(ocr[k], StepFailure) else ocr[k],
                            classification=None if isinstance(cls[k], StepFailure) else cls[k],
                            extraction=None if isinstance(ext[k], StepFailure) else ext[k],
                            failure=_first_failure(images, pre, ocr, cls, ext, k=k),
                            latency_ms=dict(latency), end_to_end_ms=sum(latency.values()), batch_size=len(docs),
                            cpu_ms=cpu_ms, batch_id=docs[0].doc_id,
                        )
                        for k, doc in enumerate(docs)
                    ]
    return result
