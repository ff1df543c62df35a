"""Typed records passed between the pipeline steps.

    image ─▶ preprocess ─▶ ocr ─▶ classify ─▶ extract
  ImageRecord  ImageRecord  OcrResult  Classification  Extraction

A step that fails on one document returns a StepFailure for it; the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the OCR input image's pixels


@dataclass(frozen=True)
class ImageRecord:
    """An image on its way through preprocessing: RGB (H, W, 3) or single-channel (H, W), uint8."""

    doc_id: str
    image: np.ndarray
    applied: tuple[str, ...] = ()  # preprocessing operations applied so far, in order

    @property
    def channels(self) -> int:
        return 1 if self.image.ndim == 2 else int(self.image.shape[2])


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float  # 0..100
    box: Box


@dataclass(frozen=True)
class Line:
    text: str
    confidence: float  # 0..100, mean over the line's words
    box: Box
    words: tuple[Word, ...] = ()


def _line_json(ln: Line) -> dict[str, Any]:
    return {"text": ln.text, "confidence": round(ln.confidence, 2), "box": list(ln.box),
            "words": [{"text": w.text, "confidence": round(w.confidence, 2), "box": list(w.box)} for w in ln.words]}


def _line_from_json(ln: Mapping[str, Any]) -> Line:
    return Line(ln["text"], float(ln["confidence"]), tuple(ln["box"]),  # type: ignore[arg-type]
                tuple(Word(w["text"], float(w["confidence"]), tuple(w["box"])) for w in ln["words"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class OcrResult:
    """What an OCR variant read: the page's lines, and — from variants that find the machine-readable zone and
    read it apart, at full resolution — the MRZ lines (`mrz`, top to bottom, no spaces; each word one character
    with its own confidence, so a reader knows which characters the OCR was unsure of)."""

    doc_id: str
    lines: tuple[Line, ...]
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the image the boxes refer to
    mrz: tuple[Line, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def mean_confidence(self) -> float:
        words = [w.confidence for line in self.lines for w in line.words] or [line.confidence for line in self.lines]
        return float(np.mean(words)) if words else 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"lines": [_line_json(ln) for ln in self.lines], "image_size": list(self.image_size)}
        if self.mrz:
            out["mrz"] = [_line_json(ln) for ln in self.mrz]
        return out

    @classmethod
    def from_json(cls, doc_id: str, data: Mapping[str, Any]) -> OcrResult:
        return cls(doc_id, tuple(_line_from_json(ln) for ln in data["lines"]),
                   tuple(data.get("image_size", (0, 0))),  # type: ignore[arg-type]
                   tuple(_line_from_json(ln) for ln in data.get("mrz", ())))


@dataclass(frozen=True)
class Classification:
    """Level 1 (document type) and level 2 (issuer × type). A level-1 model leaves level 2 empty."""

    doc_id: str
    l1: str | None
    l1_scores: Mapping[str, float] = field(default_factory=dict)
    l2: str | None = None
    l2_scores: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "l1": self.l1, "l1_scores": {k: round(v, 4) for k, v in self.l1_scores.items()},
            "l2": self.l2, "l2_scores": {k: round(v, 4) for k, v in self.l2_scores.items()},
        }

    @classmethod
    def from_json(cls, doc_id: str, data: Mapping[str, Any]) -> Classification:
        """Rebuild from to_json() (scores as rounded there)."""
        return cls(doc_id, data.get("l1"), {str(k): float(v) for k, v in (data.get("l1_scores") or {}).items()},
                   data.get("l2"), {str(k): float(v) for k, v in (data.get("l2_scores") or {}).items()})


@dataclass(frozen=True)
class ExtractInput:
    """What the extract step reads: the OCR result and the classification of one document."""

    ocr: OcrResult
    classification: Classification

    @property
    def doc_id(self) -> str:
        return self.ocr.doc_id


@dataclass(frozen=True)
class Extraction:
    """Fields (dates ISO), the MRZ as read, its check-digit results, and where each field came from."""

    doc_id: str
    fields: Mapping[str, str]
    mrz_lines: tuple[str, ...] = ()
    mrz_checks: Mapping[str, bool] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)  # field -> "mrz" | "viz"

    @property
    def mrz_valid(self) -> bool | None:
        """All check digits valid; None when no MRZ was read."""
        return all(self.mrz_checks.values()) if self.mrz_checks else None

    def to_json(self) -> dict[str, Any]:
        return {"fields": dict(self.fields), "mrz_lines": list(self.mrz_lines), "mrz_checks": dict(self.mrz_checks),
                "mrz_valid": self.mrz_valid, "sources": dict(self.sources)}

    @classmethod
    def from_json(cls, doc_id: str, data: Mapping[str, Any]) -> Extraction:
        return cls(doc_id, {str(k): str(v) for k, v in data["fields"].items()}, tuple(data.get("mrz_lines") or ()),
                   {str(k): bool(v) for k, v in (data.get("mrz_checks") or {}).items()},
                   {str(k): str(v) for k, v in (data.get("sources") or {}).items()})


@dataclass(frozen=True)
class StepFailure:
    """A document that one step could not process; it counts as failed for every assertion."""

    doc_id: str
    step: str
    variant: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"step": self.step, "variant": self.variant, "reason": self.reason}

    @classmethod
    def from_json(cls, doc_id: str, data: Mapping[str, Any]) -> StepFailure:
        return cls(doc_id, str(data["step"]), str(data["variant"]), str(data["reason"]))
