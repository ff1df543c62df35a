"""The one pipeline runner: a batch of documents through the four steps, one join and one latency definition
for the in-process pipeline (`Pipeline`), the shared-prefix evaluator (`evaluate_batches`, sweeps and gates),
the profiler's staging, and the served chain.

Latency (ARCHITECTURE.md): a document's step latency is the wall time of the batch it rode in through that
step (it waits for its whole batch; decoding the image file counts towards preprocess); its end-to-end
latency is the sum over the steps plus the hand-over between them (here: joining each document's OCR result
and classification into the extract step's input; in a served chain: the network and queueing between
step servers).

Shared prefixes: a step's output for (variant, input document, everything upstream) is computed once per
batch and reused by every configuration that shares that prefix, with the latency measured when it was
computed. Configurations are a product of per-step variant lists, so the work is a tree:

    batch ─ decode ─┬─ preprocess p1 ─┬─ ocr o1 ─┬─ classify c1 ─┬─ extract e1   → configuration (p1,o1,c1,e1)
                    │                 │          │               └─ extract e2   → (p1,o1,c1,e2)
                    …                 …          …

Each node's wall and CPU time is kept: their sum is the floor of a sweep's work.
"""

from __future__ import annotations

import itertools
import os
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.errors import BadInput
from corpus.records import DocumentRef, GroundTruth
from steps.base import STEPS, Variant
from steps.catalog import Catalog, Configuration
from steps.records import Classification, ExtractInput, Extraction, ImageRecord, OcrResult, StepFailure


@dataclass(frozen=True)
class Timing:
    """Wall and CPU time of one computation on one batch, in milliseconds."""

    wall_ms: float = 0.0
    cpu_ms: float = 0.0

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.wall_ms + other.wall_ms, self.cpu_ms + other.cpu_ms)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (pytesseract runs tesseract as a child)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(work: Callable[[], list[Any]]) -> tuple[list[Any], Timing]:
    """Run `work` and measure it."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = work()
    return out, Timing((time.perf_counter() - wall) * 1000.0, (cpu_seconds() - cpu) * 1000.0)


def run_step(variant: Variant, inputs: Sequence[Any]) -> tuple[list[Any], Timing]:
    """One step on one batch, measured."""
    return timed(lambda: variant.run(inputs))


def decode(doc: DocumentRef) -> ImageRecord | StepFailure:
    """A document's image as the first record of the pipeline; an unreadable file fails that document only."""
    try:
        return ImageRecord(doc.doc_id, doc.read_image())
    except BadInput as exc:  # the corpus layer's CorpusError names the file
        return StepFailure(doc.doc_id, "preprocess", "decode", str(exc))


def decode_batch(docs: Sequence[DocumentRef]) -> tuple[list[ImageRecord | StepFailure], Timing]:
    return timed(lambda: [decode(doc) for doc in docs])


def extract_inputs(ocr: Sequence[OcrResult | StepFailure],
                   classes: Sequence[Classification | StepFailure]) -> list[ExtractInput | StepFailure]:
    """The one join: each document's OCR result and classification, or the failure that stopped it."""
    return [o if isinstance(o, StepFailure) else (c if isinstance(c, StepFailure) else ExtractInput(o, c))
            for o, c in zip(ocr, classes, strict=True)]


def hand_over(ocr: Sequence[Any], classes: Sequence[Any]) -> tuple[list[ExtractInput | StepFailure], Timing]:
    """The join into extract's inputs, measured (the hand-over part of end-to-end latency)."""
    return timed(lambda: extract_inputs(ocr, classes))


@dataclass
class DocumentOutcome:
    """What one configuration made of one document."""

    doc_id: str
    source: str
    distribution: str
    truth: GroundTruth | None
    ocr: OcrResult | None = None
    classification: Classification | None = None
    extraction: Extraction | None = None
    failure: StepFailure | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    end_to_end_ms: float = 0.0
    batch_size: int = 1
    cpu_ms: float = 0.0  # CPU time of the batch through all steps (process and child processes)
    batch_id: str = ""  # the first document id of the batch it rode in

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "distribution": self.distribution,
            "classification": self.classification.to_json() if self.classification else None,
            "extraction": self.extraction.to_json() if self.extraction else None,
            "ocr_text": self.ocr.text if self.ocr else None,
            "ocr_confidence": round(self.ocr.mean_confidence, 2) if self.ocr else None,
            "failure": self.failure.to_json() if self.failure else None,
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "end_to_end_ms": round(self.end_to_end_ms, 3),
            "batch_size": self.batch_size,
        }


@dataclass(frozen=True)
class BatchTrace:
    """One batch through one configuration: every step's outputs (in document order) and timings."""

    docs: tuple[DocumentRef, ...]
    images: list[ImageRecord | StepFailure]
    pre: list[ImageRecord | StepFailure]
    ocr: list[OcrResult | StepFailure]
    classes: list[Classification | StepFailure]
    extract_in: list[ExtractInput | StepFailure]
    extracted: list[Extraction | StepFailure]
    timings: dict[str, Timing]  # decode, preprocess, ocr, classify, extract, hand_over

    def latency_ms(self) -> dict[str, float]:
        """Per-step latency of every document of the batch (decoding counts towards preprocess)."""
        t = self.timings
        return {"preprocess": t["decode"].wall_ms + t["preprocess"].wall_ms, "ocr": t["ocr"].wall_ms,
                "classify": t["classify"].wall_ms, "extract": t["extract"].wall_ms}

    def outcomes(self) -> list[DocumentOutcome]:
        latency = self.latency_ms()
        end_to_end = sum(latency.values()) + self.timings["hand_over"].wall_ms
        cpu_ms = sum(t.cpu_ms for t in self.timings.values())
        stages = (self.images, self.pre, self.ocr, self.classes, self.extracted)
        return [
            DocumentOutcome(
                doc_id=doc.doc_id, source=str(doc.path), distribution=doc.distribution, truth=doc.truth,
                ocr=_record(self.ocr[k]), classification=_record(self.classes[k]),
                extraction=_record(self.extracted[k]),
                failure=next((s[k] for s in stages if isinstance(s[k], StepFailure)), None),
                latency_ms=dict(latency), end_to_end_ms=end_to_end, batch_size=len(self.docs),
                cpu_ms=cpu_ms, batch_id=self.docs[0].doc_id,
            )
            for k, doc in enumerate(self.docs)
        ]


def _record(item: Any) -> Any:
    return None if isinstance(item, StepFailure) else item


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
class BatchResult:
    """Outcomes per configuration id (documents in batch order), the time of every unique computation, and
    the warm-up runs (variant id → wall ms) this call made."""

    outcomes: dict[str, list[DocumentOutcome]] = field(default_factory=dict)
    nodes: dict[str, Timing] = field(default_factory=dict)
    warmup_ms: dict[str, float] = field(default_factory=dict)


_WARM: weakref.WeakSet[Variant] = weakref.WeakSet()  # variant objects that already ran in this process (by
# object, not id: a version loaded from the registry is a new object with the id of the catalog's)


def warm_up(variant: Variant, batch: Sequence[Any]) -> float | None:
    """The first run of a variant in a process (lazy imports, caches, thread pools, the first page through a
    model) is not a configuration's latency: run it once on the batch's first document, untimed as latency,
    and return that run's wall ms (None: already warm). CARDFLOW_NO_WARMUP=1 turns this off (benchmarks
    measuring the old way: bench/bench_stability.py)."""
    if variant in _WARM or not batch or os.environ.get("CARDFLOW_NO_WARMUP") == "1":
        return None
    _WARM.add(variant)
    _, t = run_step(variant, list(batch[:1]))
    return t.wall_ms


def _each(variant: Variant, batches: list[list[Any]], result: BatchResult | None = None
          ) -> tuple[list[list[Any]], list[Timing]]:
    """A node's variant over every batch in a row (the model stays warm, as in a server of its own), after
    its warm-up run if it is the variant's first in this process (recorded in `result.warmup_ms`)."""
    if batches and (ms := warm_up(variant, batches[0])) is not None and result is not None:
        result.warmup_ms[variant.id] = ms
    outputs, times = [], []
    for inputs in batches:
        out, t = run_step(variant, inputs)
        outputs.append(out)
        times.append(t)
    return outputs, times


def _total(times: Iterable[Timing]) -> Timing:
    return sum(times, Timing())


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
    decoded = [decode_batch(docs) for docs in batches]
    images, t_decode = [d for d, _ in decoded], [t for _, t in decoded]
    result.nodes["decode"] = _total(t_decode)
    for p in dict.fromkeys(c.preprocess for c in wanted):
        pre, t_pre = _each(catalog.get(p), images, result)
        result.nodes[p] = _total(t_pre)
        for o in dict.fromkeys(c.ocr for c in wanted if c.preprocess == p):
            ocr, t_ocr = _each(catalog.get(o), pre, result)
            result.nodes[f"{p}|{o}"] = _total(t_ocr)
            for c in dict.fromkeys(x.classify for x in wanted if (x.preprocess, x.ocr) == (p, o)):
                cls, t_cls = _each(catalog.get(c), ocr, result)
                result.nodes[f"{p}|{o}|{c}"] = _total(t_cls)
                joined = [hand_over(ob, cb) for ob, cb in zip(ocr, cls, strict=True)]
                ext_in, t_hand = [j for j, _ in joined], [t for _, t in joined]
                for e in dict.fromkeys(x.extract for x in wanted if (x.preprocess, x.ocr, x.classify) == (p, o, c)):
                    ext, t_ext = _each(catalog.get(e), ext_in, result)
                    result.nodes[f"{p}|{o}|{c}|{e}"] = _total(t_ext)
                    outcomes = result.outcomes.setdefault(Configuration(p, o, c, e).id, [])
                    for b, docs in enumerate(batches):
                        timings = {"decode": t_decode[b], "preprocess": t_pre[b], "ocr": t_ocr[b],
                                   "classify": t_cls[b], "extract": t_ext[b], "hand_over": t_hand[b]}
                        outcomes.extend(BatchTrace(tuple(docs), images[b], pre[b], ocr[b], cls[b], ext_in[b], ext[b],
                                                   timings).outcomes())
    return result


def evaluate_batch(catalog: Catalog, docs: Sequence[DocumentRef], configurations: Iterable[Configuration]) -> BatchResult:
    """Every given configuration on one batch, each shared prefix computed once."""
    return evaluate_batches(catalog, [docs], configurations)


class Pipeline:
    """One configuration's four variants, loaded, run batch by batch."""

    def __init__(self, configuration: Configuration, catalog: Catalog, threads: int = 1) -> None:
        self.configuration = configuration
        self.variants = {step: catalog.get(vid) for step, vid in configuration.as_dict().items()}
        for variant in self.variants.values():
            variant.set_threads(threads)

    def load(self) -> None:
        for variant in self.variants.values():
            variant.load()

    def trace(self, docs: Sequence[DocumentRef], warm: bool = False) -> BatchTrace:
        """All four steps on one batch, keeping every step's outputs; a failing document is carried as a
        StepFailure and the batch goes on. With `warm`, a variant's first run in this process is a warm-up
        (warm_up) before its timed run, as in a sweep."""
        self.load()

        def step(name: str, inputs: Sequence[Any]) -> tuple[list[Any], Timing]:
            if warm:
                warm_up(self.variants[name], inputs)
            return run_step(self.variants[name], inputs)

        images, t_decode = decode_batch(docs)
        pre, t_pre = step("preprocess", images)
        ocr, t_ocr = step("ocr", pre)
        cls, t_cls = step("classify", ocr)
        ext_in, t_hand = hand_over(ocr, cls)
        ext, t_ext = step("extract", ext_in)
        return BatchTrace(tuple(docs), images, pre, ocr, cls, ext_in, ext,
                          {"decode": t_decode, "preprocess": t_pre, "ocr": t_ocr, "classify": t_cls,
                           "extract": t_ext, "hand_over": t_hand})

    def run_batch(self, docs: Sequence[DocumentRef], warm: bool = False) -> list[DocumentOutcome]:
        return self.trace(docs, warm).outcomes()

    def run(self, docs: Iterable[DocumentRef], batch_size: int, warm: bool = False) -> Iterator[DocumentOutcome]:
        for batch in batched(docs, batch_size):
            yield from self.run_batch(batch, warm)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive batches of `size` (the last one shorter)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
