"""Classification variants: document type (level 1) and issuer × type (level 2) from the OCR text.

Learned models (character n-gram TF-IDF + logistic regression / naive Bayes / linear SVM) are trained
by `cardflow train` (steps/training.py), exported to ONNX and run here with ONNX Runtime. A level-1
model predicts the type only; a level-2 model predicts issuer × type, and its level-1 scores are its
level-2 probabilities summed per type. `keywords:l2` is a rule baseline with no learning, over the issuer
layouts the extractors read (steps/extract/layouts.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from steps.base import Variant
from steps.errors import ModelNotTrained
from steps.extract.layouts import IssuerLayouts, layouts_file
from steps.modelstore import ModelStore
from steps.normalize import fold, normalise_text
from steps.records import Classification, OcrResult

FAMILIES = {
    "tfidf-logreg": "character 2-4-gram TF-IDF + logistic regression",
    "tfidf-nb": "character 2-4-gram TF-IDF + multinomial naive Bayes",
    "tfidf-svm": "character 2-4-gram TF-IDF + linear SVM (scores: softmax of margins)",
}
LEVELS = ("l1", "l2")


def classification_text(ocr: OcrResult) -> str:
    """The text a classifier sees: the OCR text folded to upper-case ASCII, lines joined by ' | '."""
    return " | ".join(normalise_text(line.text) for line in ocr.lines if line.text.strip())


def model_dir(family: str, level: str) -> str:
    return f"classify/{family}-{level}"


def l1_of(l2_label: str) -> str:
    return l2_label.split(".", 1)[1]


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def to_classification(doc_id: str, level: str, labels: Sequence[str], probs: np.ndarray) -> Classification:
    """Scores over `labels` at `level` → a Classification at both levels (level 2 only from a level-2 model)."""
    scores = {label: float(p) for label, p in zip(labels, probs, strict=True)}
    if level == "l1":
        return Classification(doc_id, max(scores, key=scores.get), scores)
    l1_scores: dict[str, float] = {}
    for label, p in scores.items():
        l1_scores[l1_of(label)] = l1_scores.get(l1_of(label), 0.0) + p
    return Classification(doc_id, max(l1_scores, key=l1_scores.get), l1_scores, max(scores, key=scores.get), scores)


@dataclass(frozen=True)
class OnnxClassifierParams:
    family: str
    level: str


class OnnxTextClassifier(Variant[OcrResult, Classification, "OnnxClassifierParams"]):
    """A trained scikit-learn text pipeline, exported to ONNX, run with ONNX Runtime on a batch of texts."""

    step = "classify"
    batched = True

    def __init__(self, family: str, level: str, store: ModelStore | None = None) -> None:
        super().__init__(level, OnnxClassifierParams(family, level), f"{FAMILIES[family]}, level {level[1]}")
        self.model = family  # type: ignore[misc]
        self.store = store or ModelStore()
        self._session = None
        self.labels: list[str] = []
        self.meta: dict = {}

    def model_files(self) -> dict[str, Path]:
        base = self.store.root / model_dir(self.params.family, self.params.level)
        return {"model.onnx": base / "model.onnx", "meta.json": base / "meta.json"}

    def set_threads(self, n: int) -> None:
        super().set_threads(n)
        self._loaded = False  # sessions take their thread count at creation

    def _load(self) -> None:
        import onnxruntime as ort

        rel = model_dir(self.params.family, self.params.level)
        if not (self.store.root / rel / "model.onnx").is_file():
            raise ModelNotTrained(f"{self.id}: no trained model at {self.store.root / rel}/model.onnx; "
                            "train the classifiers first: `cardflow train`")
        model_path = self.store.path(f"{rel}/model.onnx")
        self.meta = json.loads(self.store.path(f"{rel}/meta.json").read_text())
        self.labels = list(self.meta["labels"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (softmax of margins for the SVM), one row per text, columns = self.labels."""
        self.load()
        out = self._session.run(None, {"text": np.array(list(texts), dtype=object).reshape(-1, 1)})
        values = np.asarray(out[1], dtype=np.float64)
        return _softmax(values) if self.params.family == "tfidf-svm" else values

    def process(self, item: OcrResult) -> Classification:
        return self.process_batch([item])[0]

    def process_batch(self, items: Sequence[OcrResult]) -> list[Classification]:
        probs = self.scores([classification_text(item) for item in items])
        return [to_classification(item.doc_id, self.params.level, self.labels, row) for item, row in zip(items, probs, strict=True)]


@dataclass(frozen=True)
class KeywordParams:
    title_weight: float = 2.0
    cue_weight: float = 1.0
    layouts: str = "synthetic"  # issuer layouts (titles, names, codes): extract/layouts/<layouts>.json in the store


class KeywordClassifier(Variant[OcrResult, Classification, KeywordParams]):
    """No learning: counts title words, MRZ prefixes and licence numbering for the type, and issuer
    names and codes for the issuer (titles, names and codes from the issuer layouts). Scores are the
    normalised counts."""

    step = "classify"
    model = "keywords"

    def __init__(self, version: str, params: KeywordParams, description: str = "",
                 store: ModelStore | None = None) -> None:
        super().__init__(version, params, description)
        self.store = store or ModelStore()
        self.l1_classes: tuple[str, ...] = ()
        self.title_words: dict[str, frozenset[str]] = {}  # per type: every issuer's title words for it
        self.issuer_words: dict[str, frozenset[str]] = {}  # per issuer code: the words of its printed name

    def model_files(self) -> dict[str, Path]:
        return {"layouts.json": self.store.root / layouts_file(self.params.layouts)}

    def _load(self) -> None:
        layouts = IssuerLayouts.load(self.store.path(layouts_file(self.params.layouts)))
        self.l1_classes = layouts.l1_classes
        self.title_words = dict(layouts.title_keywords)
        self.issuer_words = {i.code: frozenset(re.findall(r"[A-Z]{4,}", fold(i.name))) for i in layouts.issuers}

    def process(self, item: OcrResult) -> Classification:
        text = fold(item.text)
        words = set(re.findall(r"[A-Z]+", text))
        p: KeywordParams = self.params
        compact = text.replace(" ", "")
        cues = {"passport": len(re.findall(r"P<[A-Z<]{3}", compact)),
                "id_card": len(re.findall(r"(?:ID|I<)[A-Z<]{3}[A-Z0-9<]{9}\d", compact)),
                "driving_licence": len(re.findall(r"(?m)^\s*(?:4[ABC]|[1-9])[.,]\s", text))}
        type_votes = {l1: p.title_weight * len(words & self.title_words[l1]) + p.cue_weight * cues.get(l1, 0)
                      for l1 in self.l1_classes}
        issuer_votes = {code: 2.0 * len(words & name_words) + text.count(code)
                        for code, name_words in self.issuer_words.items()}
        l1_total = sum(type_votes.values()) or 1.0
        l1_scores = {l1: type_votes[l1] / l1_total for l1 in self.l1_classes}
        best_l1 = max(l1_scores, key=l1_scores.get) if sum(type_votes.values()) else None
        i_total = sum(issuer_votes.values()) or 1.0
        l2_scores = {f"{code}.{l1}": (issuer_votes[code] / i_total) * l1_scores[l1]
                     for code in issuer_votes for l1 in self.l1_classes}
        best_l2 = max(l2_scores, key=l2_scores.get) if best_l1 and sum(issuer_votes.values()) else None
        return Classification(item.doc_id, best_l1, l1_scores, best_l2, l2_scores)


def variants(store: ModelStore | None = None) -> list[Variant]:
    """The classification catalog: three learned families × two levels, and the keyword baseline."""
    learned: list[Variant] = [OnnxTextClassifier(family, level, store) for family in FAMILIES for level in LEVELS]
    keywords = KeywordClassifier("l2", KeywordParams(), "keyword rules (no learning), levels 1 and 2", store)
    return [*learned, keywords]
