"""Running one configuration on documents, batch by batch, with per-step latency.

Latency convention (ARCHITECTURE.md): a document's step latency is the wall time of the batch it rode
in (it waits for its whole batch); its end-to-end latency is the batch's wall time through all steps
(the sum over steps plus hand-over). Preprocessing includes decoding the image file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from corpus.errors import CorpusError
from corpus.records import DocumentRef, GroundTruth
from steps.base import STEPS, Variant
from steps.catalog import Catalog, Configuration
from steps.records import (
    Classification,
    ExtractInput,
    Extraction,
    ImageRecord,
    OcrResult,
    StepFailure,
)


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


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (pytesseract runs tesseract as a child)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _timed(variant: Variant, inputs: Sequence[Any]) -> tuple[list[Any], float]:
    started = time.perf_counter()
    outputs = variant.run(inputs)
    return outputs, (time.perf_counter() - started) * 1000.0


def _decode(doc: DocumentRef) -> ImageRecord | StepFailure:
    try:
        return ImageRecord(doc.doc_id, doc.read_image())
    except CorpusError as exc:
        return StepFailure(doc.doc_id, "preprocess", "decode", str(exc))


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

    def run_batch(self, docs: Sequence[DocumentRef]) -> list[DocumentOutcome]:
        """All four steps on one batch; a document failing in a step is carried as a StepFailure."""
        self.load()
        cpu_started = cpu_seconds()
        started = time.perf_counter()
        t0 = time.perf_counter()
        images = [_decode(doc) for doc in docs]
        decoded_ms = (time.perf_counter() - t0) * 1000.0
        pre, pre_ms = _timed(self.variants["preprocess"], images)
        ocr, ocr_ms = _timed(self.variants["ocr"], pre)
        cls, cls_ms = _timed(self.variants["classify"], ocr)
        extract_in = [
            o if isinstance(o, StepFailure) else (c if isinstance(c, StepFailure) else ExtractInput(o, c))
            for o, c in zip(ocr, cls, strict=True)
        ]
        ext, ext_ms = _timed(self.variants["extract"], extract_in)
        total_ms = (time.perf_counter() - started) * 1000.0
        cpu_ms = (cpu_seconds() - cpu_started) * 1000.0
        latency = dict(zip(STEPS, (decoded_ms + pre_ms, ocr_ms, cls_ms, ext_ms), strict=True))
        outcomes = []
        for k, doc in enumerate(docs):
            failure = next((x for x in (pre[k], ocr[k], cls[k], ext[k]) if isinstance(x, StepFailure)), None)
            outcomes.append(DocumentOutcome(
                doc_id=doc.doc_id,
                source=str(doc.path),
                distribution=doc.distribution,
                truth=doc.truth,
                ocr=None if isinstance(ocr[k], StepFailure) else ocr[k],
                classification=None if isinstance(cls[k], StepFailure) else cls[k],
                extraction=None if isinstance(ext[k], StepFailure) else ext[k],
                failure=failure,
                latency_ms=dict(latency),
                end_to_end_ms=total_ms,
                batch_size=len(docs),
                cpu_ms=cpu_ms,
                batch_id=docs[0].doc_id,
            ))
        return outcomes

    def run(self, docs: Iterable[DocumentRef], batch_size: int) -> Iterator[DocumentOutcome]:
        batch: list[DocumentRef] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) == batch_size:
                yield from self.run_batch(batch)
                batch = []
        if batch:
            yield from self.run_batch(batch)
