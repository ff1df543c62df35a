"""One `kserve.Model` serves any step: a registered version, loaded through the registry loader, behind V2.

    StepModel("ocr", "tesseract", alias="champion")     # V2 model name `cardflow-ocr`

`load()` resolves the alias (or version) in the MLflow Model Registry, downloads and verifies the version's
files (or starts from the verified cache, with a warning, when the registry is unreachable) and reports
ready only then. `predict` reads the request's tensors into the step's wire rows (serving/v2.py, bad input:
400 naming the tensor), queues the documents on the adaptive batcher, and answers the step's output tensors;
the served model, version and alias ride in every response's parameters. `reload()` re-resolves the alias
and swaps to the new version between batches: a batch in flight finishes on the version it started with.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from common.errors import BadInput, Unavailable
from registry.loader import Loader, load_model_dir
from registry.package import model_name
from serving import metrics as m
from serving.batcher import AdaptiveBatcher
from serving.v2 import (
    accepted_inputs,
    check_pixels,
    output_names,
    rows_from_tensors,
    served_name,
    tensor_metadata,
)
from steps.base import Variant
from steps.codec import codec
from steps.records import Classification, Extraction, OcrResult, StepFailure
from steps.scoring import label_free

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """The version a step server runs now."""

    variant: Variant
    model: str  # the registered model, cardflow.<step>.<model>
    version: str
    alias: str  # '' when served by version number
    variant_id: str
    origin: str

    @property
    def labels(self) -> tuple[str, str, str, str]:
        return (self.variant.step, self.model, self.version, self.alias)

    def parameters(self) -> dict[str, str]:
        return {"cardflow.model": self.model, "cardflow.version": self.version, "cardflow.alias": self.alias,
                "cardflow.variant": self.variant_id}


@dataclass(frozen=True)
class StepSettings:
    """How a step server batches and what it accepts (`cardflow serve step --help`)."""

    max_batch_size: int = 4
    max_batch_delay_ms: float = 0.0
    max_pixels: int = 40_000_000
    threads: int = 1
    budget_s: float | None = None  # the step's SLA budget: slower requests count as violations


class StepModel(Model):
    """A registered version of one step's model, served over V2 (see the module docstring)."""

    def __init__(self, step: str, model: str, *, alias: str | None = None, version: str | None = None,
                 settings: StepSettings = StepSettings(), loader: Loader | None = None,
                 model_dir: str | None = None) -> None:
        super().__init__(served_name(step))
        self.model_dir = model_dir
        self.step = step
        self.model = model.split(".")[-1] if model.startswith("cardflow.") else model
        self.alias, self.version = alias, version
        self.settings = settings
        self.loader = loader or Loader()
        self.codec = codec(step)
        self.served: Served | None = None
        self.batcher = AdaptiveBatcher(self._run, settings.max_batch_size, settings.max_batch_delay_ms)
        self._reload_lock = asyncio.Lock()

    # --- loading ------------------------------------------------------------------------------------

    def _resolve(self) -> Served:
        if self.model_dir:  # a packaged folder: what it holds is fixed, a reload keeps it
            variant = load_model_dir(Path(self.model_dir), self.step, threads=self.settings.threads)
            found = variant.registered  # type: ignore[attr-defined]
            if found.name != model_name(self.step, self.model):
                raise BadInput(f"parameter --model-dir: {self.model_dir} holds {found.name}, not "
                               f"{model_name(self.step, self.model)}")
            return Served(variant, found.name, str(found.version), "", found.variant_id, str(found.origin))
        variant = self.loader.load(self.step, self.model, alias=self.alias, version=self.version,
                                   threads=self.settings.threads)
        found = variant.registered  # type: ignore[attr-defined]
        if found.origin == "offline cache":
            log.warning("%s: serving %s version %s from the verified cache (%s)", self.name, found.name,
                        found.version, found.offline_reason)
        return Served(variant, found.name, str(found.version), self.alias or "", found.variant_id, str(found.origin))

    def _install(self, served: Served) -> None:
        previous = self.served.labels if self.served else None
        self.served = served
        m.set_model_info(*served.labels, previous=previous if previous != served.labels else None)
        m.initialise(self.step, served.labels)
        log.info("%s: serving %s version %s%s (%s, %s)", self.name, served.model, served.version,
                 f" @{served.alias}" if served.alias else "", served.variant_id, served.origin)

    def load(self) -> bool:
        if self.settings.budget_s is not None:
            m.SLA_BUDGET.labels(self.step).set(self.settings.budget_s)
        self._install(self._resolve())
        self.ready = True
        return self.ready

    async def reload(self) -> dict[str, Any]:
        """Re-resolve the alias (a pinned version stays) and swap to what it names, between batches."""
        async with self._reload_lock:
            before = self.served
            served = await asyncio.to_thread(self._resolve)
            changed = before is None or (served.version, served.variant_id) != (before.version, before.variant_id)
            if changed:
                self._install(served)
            current = self.served
            assert current is not None
            return {"name": self.name, "load": True, "changed": changed,
                    "previous_version": before.version if before else None, **current.parameters()}

    # --- V2 ------------------------------------------------------------------------------------------

    def get_input_types(self) -> list[dict]:
        return tensor_metadata(accepted_inputs(self.step))

    def get_output_types(self) -> list[dict]:
        return tensor_metadata(output_names(self.step))

    def metadata_parameters(self) -> dict[str, str]:
        return self.served.parameters() if self.served else {}

    def _run(self, records: list[Any]) -> tuple[Served, list[Any]]:
        served = self.served
        if served is None:
            raise Unavailable(f"{self.name} has no version loaded yet")
        started = time.perf_counter()
        outputs = served.variant.run(records)
        m.COMPUTE_SECONDS.labels(*served.labels).observe(time.perf_counter() - started)
        m.BATCH_SIZE.labels(*served.labels).observe(len(records))
        return served, outputs

    async def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        started = time.perf_counter()
        rows = rows_from_tensors(self.step, payload.inputs)
        records = await asyncio.to_thread(self._decode, rows)
        done = await self.batcher.submit(records)
        served: Served = done.served
        out_rows = self.codec.encode(records, done.outputs)
        self._observe(served, records, done, time.perf_counter() - started)
        names = output_names(self.step)
        outputs = [InferOutput(name, [len(out_rows)], "BYTES", [row.get(name, "") for row in out_rows]) for name in names]
        params = {**served.parameters(), "cardflow.queue_ms": round(done.queue_s * 1000, 3),
                  "cardflow.compute_ms": round(done.compute_s * 1000, 3), "cardflow.batch_size": done.batch_documents}
        return InferResponse(payload.id or str(uuid.uuid4()), self.name, outputs, model_version=served.version,
                             parameters=params)

    def _decode(self, rows: list[dict[str, str]]) -> list[Any]:
        check_pixels(self.step, rows, self.settings.max_pixels)
        return self.codec.decode(rows)

    def _observe(self, served: Served, records: list[Any], done, seconds: float) -> None:
        labels = served.labels
        m.QUEUE_SECONDS.labels(*labels).observe(done.queue_s)
        m.REQUEST_SECONDS.labels(*labels).observe(seconds)
        budget = self.settings.budget_s
        if budget is not None and seconds > budget:
            m.SLA_VIOLATIONS.labels(self.step).inc()
        for record, result in zip(records, done.outputs, strict=True):
            failed = isinstance(result, StepFailure)
            m.DOCUMENTS.labels(*labels, "failed" if failed else "ok").inc()
            if failed or isinstance(record, StepFailure):
                continue
            if isinstance(result, OcrResult):
                m.OCR_CONFIDENCE.labels(*labels).observe(result.mean_confidence)
            elif isinstance(result, Classification):
                scores = result.l2_scores or result.l1_scores
                if scores:
                    m.CLASSIFIER_CONFIDENCE.labels(*labels).observe(max(scores.values()))
            elif isinstance(result, Extraction):
                signals = label_free(SimpleNamespace(extraction=result, ocr=None))
                valid = signals["mrz_valid"]
                m.MRZ_CHECKS.labels(*labels, "absent" if valid is None else "valid" if valid else "invalid").inc()
                if signals["field_format_valid"] is not None:
                    m.FIELD_FORMAT.labels(*labels).observe(signals["field_format_valid"])
