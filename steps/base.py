"""The one step contract every variant follows.

A variant is one version of one model of one step: id `<step>/<model>:<version>`, typed parameters (a
frozen dataclass of the variant's own, `Variant[In, Out, Params]`), `load()`, `run(batch)` on a batch of
typed records, and `set_threads(n)`. Subclasses override `process` (one record) or, where the model really
batches, `process_batch`.

How a variant uses n threads on a batch:
- `batched` (the model takes a batch tensor, e.g. the ONNX classifiers): the whole batch in one call,
  with n intra-op threads;
- `spread` (the model releases the GIL but has no batch input, e.g. Tesseract, RapidOCR, OpenCV):
  the batch's documents are spread over n threads, each with its own model state (`_thread_setup`);
- neither (pure Python, GIL-bound): documents one after another; extra threads do not help.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from steps.errors import StepError
from steps.modelstore import sha256_file
from steps.records import StepFailure

STEPS = ("preprocess", "ocr", "classify", "extract")
In = TypeVar("In")
Out = TypeVar("Out")
P = TypeVar("P")
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class NoParams:
    """For variants without parameters."""


class Variant(ABC, Generic[In, Out, P]):
    """One version of one model of one step."""

    step: ClassVar[str]
    model: ClassVar[str]
    batched: ClassVar[bool] = False  # True when process_batch runs the batch through the model at once
    spread: ClassVar[bool] = False  # True when a batch's documents may run on parallel threads
    # Bump when the implementation changes what a variant outputs: part of every cache key.
    implementation: ClassVar[str] = "1"

    def __init__(self, version: str, params: P, description: str = "") -> None:
        if not dataclasses.is_dataclass(params) or isinstance(params, type) or \
                not type(params).__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise StepError(f"{self.step}/{self.model}:{version}: parameters must be a frozen dataclass, "
                            f"got {type(params).__name__}")
        self.version = version
        self.params: P = params
        self.description = description
        self.threads = 1
        self._loaded = False
        self._pool = None  # threads a batch is spread over (spread variants, threads > 1)
        self._local = threading.local()  # per-thread model state of spread variants

    @property
    def id(self) -> str:
        return f"{self.step}/{self.model}:{self.version}"

    def params_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params)  # type: ignore[call-overload]

    def model_files(self) -> dict[str, Path]:
        """Files the variant loads (name -> path); hashed into its fingerprint and registered with it."""
        return {}

    def fingerprint(self) -> str:
        """Identifies exactly what this variant computes: id, parameters, implementation, model file hashes."""
        files = self.model_files()
        if not all(path.is_file() for path in files.values()):
            self.load()  # model files are fetched or made on first load: hash what will actually run
        parts = {
            "id": self.id,
            "params": self.params_dict(),
            "implementation": self.implementation,
            "files": {name: sha256_file(path) for name, path in sorted(files.items()) if path.is_file()},
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

    def load(self) -> None:
        """Load model files (idempotent); spread variants also start their threads, each with its state."""
        if self._loaded:
            return
        self._load()
        if self.spread and self.threads > 1 and self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.id)
            barrier = threading.Barrier(self.threads)

            def setup() -> None:
                try:
                    self._thread_setup()
                except BaseException:
                    barrier.abort()  # the other threads stop waiting
                    raise
                barrier.wait(timeout=600)  # one set-up per pool thread

            try:
                for future in [pool.submit(setup) for _ in range(self.threads)]:
                    future.result()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            self._pool = pool
        self._loaded = True

    def _thread_setup(self) -> None:  # noqa: B027 — spread variants with per-thread state override it
        """Make this thread's own model state (called once in each thread a batch is spread over)."""

    def _load(self) -> None:  # noqa: B027 — parameter-free variants need no loading
        pass

    def set_threads(self, n: int) -> None:
        """The number of CPU threads the variant may use (applied at the next load where it matters)."""
        if n < 1:
            raise StepError(f"{self.id}: threads must be at least 1, got {n}")
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self.spread and n != self.threads:
            self._loaded = False  # the next load starts threads for the new count
        self.threads = n

    @abstractmethod
    def process(self, item: In) -> Out:
        """One record in, one record out. Raise on failure: run() records it for that document."""

    def process_batch(self, items: Sequence[In]) -> list[Out]:
        return [self.process(item) for item in items]

    def run(self, batch: Sequence[In | StepFailure]) -> list[Out | StepFailure]:
        """Run on a batch; documents that failed upstream pass through, new failures are recorded per document."""
        self.load()
        todo = [(k, item) for k, item in enumerate(batch) if not isinstance(item, StepFailure)]
        out: list[Any] = list(batch)
        if self.batched and todo:
            try:
                for (k, _), result in zip(todo, self.process_batch([item for _, item in todo]), strict=True):
                    out[k] = result
                return out
            except Exception as exc:  # noqa: BLE001 — isolate the failing document below
                log.warning("%s: batch failed (%s); retrying document by document", self.id, exc)
        if self._pool is not None and len(todo) > 1:
            results = list(self._pool.map(self._guarded, [item for _, item in todo]))
        else:
            results = [self._guarded(item) for _, item in todo]
        for (k, _), result in zip(todo, results, strict=True):
            out[k] = result
        return out

    def _guarded(self, item: In) -> Out | StepFailure:
        try:
            return self.process(item)
        except Exception as exc:  # noqa: BLE001 — one bad document must not stop the batch
            return StepFailure(_doc_id(item), self.step, self.id, f"{type(exc).__name__}: {exc}")

    @property
    def batching(self) -> str:
        """How a batch meets the model: tensor (one call), spread (documents over threads) or sequential."""
        return "tensor" if self.batched else "spread" if self.spread else "sequential"

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "step": self.step, "model": self.model, "version": self.version,
                "params": self.params_dict(), "description": self.description, "batched": self.batched,
                "batching": self.batching}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def _doc_id(item: Any) -> str:
    return str(getattr(item, "doc_id", "?"))
