"""The one step contract every variant follows.

A variant is one version of one model of one step: id `<step>/<model>:<version>`, typed parameters,
`load()`, `run(batch)` on a batch of typed records, and `set_threads(n)`. Subclasses override
`process` (one record) or, where the model really batches, `process_batch`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from corpus.errors import CardflowError
from steps.records import StepFailure

STEPS = ("preprocess", "ocr", "classify", "extract")
In = TypeVar("In")
Out = TypeVar("Out")
log = logging.getLogger(__name__)


class StepError(CardflowError):
    """A variant cannot be built or loaded (unknown id, missing model file, bad parameter)."""


@dataclasses.dataclass(frozen=True)
class NoParams:
    """For variants without parameters."""


class Variant(ABC, Generic[In, Out]):
    """One version of one model of one step."""

    step: ClassVar[str]
    model: ClassVar[str]
    batched: ClassVar[bool] = False  # True when process_batch runs the batch through the model at once
    # Bump when the implementation changes what a variant outputs: part of every cache key.
    implementation: ClassVar[str] = "1"

    def __init__(self, version: str, params: Any = None, description: str = "") -> None:
        self.version = version
        self.params = params if params is not None else NoParams()
        self.description = description
        self.threads = 1
        self._loaded = False

    @property
    def id(self) -> str:
        return f"{self.step}/{self.model}:{self.version}"

    def params_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params)

    def model_files(self) -> dict[str, Path]:
        """Files the variant loads (name -> path); hashed into its fingerprint and registered with it."""
        return {}

    def fingerprint(self) -> str:
        """Identifies exactly what this variant computes: id, parameters, implementation, model file hashes."""
        from steps.modelstore import sha256_file

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
        """Load model files (idempotent)."""
        if not self._loaded:
            self._load()
            self._loaded = True

    def _load(self) -> None:  # noqa: B027 — parameter-free variants need no loading
        pass

    def set_threads(self, n: int) -> None:
        """The number of CPU threads the variant may use (applied at the next load where it matters)."""
        if n < 1:
            raise StepError(f"{self.id}: threads must be at least 1, got {n}")
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
        for k, item in todo:
            try:
                out[k] = self.process(item)
            except Exception as exc:  # noqa: BLE001 — one bad document must not stop the batch
                out[k] = StepFailure(_doc_id(item), self.step, self.id, f"{type(exc).__name__}: {exc}")
        return out

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "step": self.step, "model": self.model, "version": self.version,
                "params": self.params_dict(), "description": self.description, "batched": self.batched}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def _doc_id(item: Any) -> str:
    return str(getattr(item, "doc_id", "?"))
