"""Typed records for labelled documents, shared by the generator, the loaders and the steps.

A document is referenced lazily (its image is read on demand) so that a corpus of thousands of
documents can be listed without holding the images in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpus.errors import CorpusError
from corpus.imageio import read_rgb

Point = tuple[float, float]

# Level-1 classes (document types). Level-2 classes are "<ISSUER>.<level-1 class>".
L1_CLASSES = ("id_card", "passport", "driving_licence")


@dataclass(frozen=True)
class GroundTruth:
    """What is known about a document. Loaders fill what their dataset provides; None = unknown."""

    l1: str | None = None
    l2: str | None = None
    issuer: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    mrz_lines: tuple[str, ...] = ()
    text_lines: tuple[str, ...] = ()
    corners: tuple[Point, Point, Point, Point] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "l1": self.l1,
            "l2": self.l2,
            "issuer": self.issuer,
            "fields": dict(self.fields),
            "mrz_lines": list(self.mrz_lines),
            "text_lines": list(self.text_lines),
            "corners": [list(p) for p in self.corners] if self.corners else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroundTruth:
        """Rebuild from to_json(); raises ValueError on a malformed value (the caller names the file)."""
        corners = data.get("corners")
        for key in ("mrz_lines", "text_lines"):
            if data.get(key) is not None and not isinstance(data[key], list | tuple):
                raise ValueError(f"{key!r} must be a list of strings")
        if corners is not None and (not isinstance(corners, list | tuple) or len(corners) != 4):
            raise ValueError("'corners' must be four [x, y] points")
        return cls(
            l1=data.get("l1"),
            l2=data.get("l2"),
            issuer=data.get("issuer"),
            fields=dict(data.get("fields") or {}),
            mrz_lines=tuple(data.get("mrz_lines") or ()),
            text_lines=tuple(data.get("text_lines") or ()),
            corners=tuple((float(x), float(y)) for x, y in corners) if corners else None,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class DocumentRef:
    """One document of a corpus: where its image is, its ground truth (None for unlabelled images)."""

    doc_id: str
    path: Path
    distribution: str = "unknown"
    truth: GroundTruth | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def read_image(self) -> np.ndarray:
        """The image as an RGB uint8 array (H, W, 3). Raises CorpusError naming the file."""
        return read_rgb(self.path)

    def read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise CorpusError(f"cannot read image {self.path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Corpus:
    """A loaded corpus: its root, the format it was recognised as, its manifest and documents."""

    root: Path
    format: str
    documents: tuple[DocumentRef, ...]
    manifest: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.documents)

    def __iter__(self) -> Iterator[DocumentRef]:
        return iter(self.documents)

    @property
    def distributions(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for doc in self.documents:
            seen.setdefault(doc.distribution, None)
        return tuple(seen)

    def select(self, distribution: str | None = None, ids: Sequence[str] | None = None) -> Corpus:
        """A sub-corpus with the documents of one distribution and/or the given ids."""
        docs = self.documents
        if distribution is not None:
            docs = tuple(d for d in docs if d.distribution == distribution)
            if not docs:
                raise CorpusError(
                    f"corpus {self.root} has no documents of distribution {distribution!r}; "
                    f"it has: {', '.join(self.distributions) or 'none'}"
                )
        if ids is not None:
            wanted = set(ids)
            docs = tuple(d for d in docs if d.doc_id in wanted)
        return Corpus(self.root, self.format, docs, self.manifest)

    @property
    def manifest_hash(self) -> str:
        """A stable hash of what the corpus holds: the manifest's own hash, or one over the documents."""
        if self.manifest.get("manifest_sha256"):
            return str(self.manifest["manifest_sha256"])
        digest = hashlib.sha256()
        for doc in self.documents:
            truth = json.dumps(doc.truth.to_json() if doc.truth else None, sort_keys=True)
            digest.update(f"{doc.doc_id}\0{doc.path.name}\0{doc.distribution}\0{truth}\n".encode())
        return digest.hexdigest()
