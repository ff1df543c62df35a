"""Classification variants: document type (level 1) and issuer × type (level 2) from the OCR text.

Learned models (character n-gram TF-IDF + logistic regression / naive Bayes / linear SVM) are trained
by `cardflow train` (steps/training.py), exported to ONNX and run here with ONNX Runtime. A level-1
model predicts the type only; a level-2 model predicts issuer × type, and its level-1 scores are its
level-2 probabilities summed per type. `keywords:l2` is a rule baseline with no learning, over the issuer
layouts the extractors read (steps/extract/layouts.py).

Open set: a document whose issuer the classifier does not know (every real one: the models learn the synthetic
corpus's fictional issuers) gets level 2 `unknown` and its type from the MRZ format when one was read (TD3 a
passport, TD1 an identity card, MRV-A / MRV-B a visa, TD2 by its document code), else the model's. A learned
model calls an issuer unknown when its confidence is below a threshold calibrated at training on issuers left
out (steps/training.py, stored in meta.json); the keyword rules when no issuer's name or code is in the text.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.mrz9303 import format_of
from steps.base import Variant
from steps.errors import ModelNotTrained
from steps.extract.layouts import IssuerLayouts, layouts_file
from steps.extract.mrz_find import band_candidates, mrz_candidates
from steps.modelstore import ModelStore
from steps.normalize import fold, normalise_text
from steps.records import Classification, OcrResult

FAMILIES = {
    "tfidf-logreg": "character 2-4-gram TF-IDF + logistic regression",
    "tfidf-nb": "character 2-4-gram TF-IDF + multinomial naive Bayes",
    "tfidf-svm": "character 2-4-gram TF-IDF + linear SVM (scores: softmax of margins)",
}
LEVELS = ("l1", "l2")
UNKNOWN = "unknown"  # level 2 of a document whose issuer the classifier does not know
# Level 1 from the MRZ format (common/mrz9303.py); TD2 is an identity card's or a passport's: its document code says.
MRZ_TYPES = {"TD1": "id_card", "TD3": "passport", "MRV-A": "visa", "MRV-B": "visa", "FRA-CNI": "id_card"}


def classification_text(ocr: OcrResult) -> str:
    """The text a classifier sees: the OCR text folded to upper-case ASCII, lines joined by ' | '."""
    return " | ".join(normalise_text(line.text) for line in ocr.lines if line.text.strip())


def model_dir(family: str, level: str) -> str:
    return f"classify/{family}-{level}"


def l1_of(l2_label: str) -> str:
    return l2_label.split(".", 1)[1]


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def mrz_type(ocr: OcrResult) -> str | None:
    """The document type its MRZ format says: the lines an OCR variant read apart in the MRZ band when it did,
    else the page's MRZ-like lines (steps/extract/mrz_find.py), the last two or three long ones (the zone ends the
    document); None without an MRZ."""
    lines = [c.text for c in band_candidates(ocr) or mrz_candidates(ocr) if len(c.text) >= 26]
    for count in (3, 2):
        zone = lines[-count:]
        kind = format_of(zone) if len(zone) == count else None
        if kind == "TD2":
            return "passport" if zone[0].startswith("P") else "id_card"
        if kind:
            return MRZ_TYPES[kind]
    return None


def unfamiliar(classification: Classification, ocr: OcrResult) -> Classification:
    """`classification` for a document of an issuer the classifier does not know: level 2 `unknown` (where the
    classifier names one), level 1 from the MRZ format when there is one, else the classifier's. Scores stay the
    model's."""
    l2 = UNKNOWN if classification.l2 is not None or classification.l2_scores else None
    return dataclasses.replace(classification, l1=mrz_type(ocr) or classification.l1, l2=l2)


def confidence(level: str, labels: Sequence[str], probs: np.ndarray) -> np.ndarray:
    """How sure a model is of each row of `probs` (columns = `labels`) being one of its classes: at level 2 the
    likeliest issuer's probability (its types' summed), at level 1 the likeliest type's, times the number of
    issuers (types) the model knows, i.e. in multiples of a uniform guess. The multiple, not the probability:
    thresholds are calibrated on models that know one issuer fewer than the one that ships (steps/training.py),
    and a probability shrinks with the number of classes it is shared among."""
    probs = np.atleast_2d(probs)
    if level == "l1":
        return probs.max(axis=1) * probs.shape[1]
    issuer_of = np.array([label.split(".", 1)[0] for label in labels])
    issuers = sorted(set(issuer_of))
    per_issuer = np.stack([probs[:, issuer_of == issuer].sum(axis=1) for issuer in issuers], axis=1)
    return per_issuer.max(axis=1) * len(issuers)


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
    # Open set: below this confidence (`confidence()`: the likeliest issuer's — at level 1 type's — probability in
    # multiples of a uniform guess) the issuer is unknown. None: the threshold calibrated when the model was
    # trained (meta.json `open_set.threshold`); 0: never (closed set, every document one of the known classes).
    unknown_below: float | None = None


class OnnxTextClassifier(Variant[OcrResult, Classification, "OnnxClassifierParams"]):
    """A trained scikit-learn text pipeline, exported to ONNX, run with ONNX Runtime on a batch of texts."""

    step = "classify"
    batched = True
    implementation = "2"  # open set: `unknown` below the calibrated confidence

    def __init__(self, family: str, level: str, store: ModelStore | None = None,
                 unknown_below: float | None = None) -> None:
        super().__init__(level, OnnxClassifierParams(family, level, unknown_below),
                         f"{FAMILIES[family]}, level {level[1]}")
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

    def trained(self) -> bool:
        """Whether the store holds this model as the current training writes it (a meta.json with an open-set
        calibration; older stores have none and are trained again on first use)."""
        files = self.model_files()
        if not all(path.is_file() for path in files.values()):
            return False
        try:
            return "open_set" in json.loads(files["meta.json"].read_text())
        except (OSError, json.JSONDecodeError):
            return False

    @property
    def threshold(self) -> float:
        """The confidence below which the issuer is unknown: the parameter's, else the calibrated one (0 for a
        model trained without a calibration: a registered version from before open-set classification)."""
        if self.params.unknown_below is not None:
            return self.params.unknown_below
        self.load()
        return float(self.meta.get("open_set", {}).get("threshold", 0.0))

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
        return softmax(values) if self.params.family == "tfidf-svm" else values

    def process(self, item: OcrResult) -> Classification:
        return self.process_batch([item])[0]

    def process_batch(self, items: Sequence[OcrResult]) -> list[Classification]:
        probs = self.scores([classification_text(item) for item in items])
        known = confidence(self.params.level, self.labels, probs) >= self.threshold
        out = []
        for item, row, is_known in zip(items, probs, known, strict=True):
            classification = to_classification(item.doc_id, self.params.level, self.labels, row)
            out.append(classification if is_known else unfamiliar(classification, item))
        return out


@dataclass(frozen=True)
class KeywordParams:
    title_weight: float = 2.0
    cue_weight: float = 1.0
    layouts: str = "synthetic"  # issuer layouts (titles, names, codes): extract/layouts/<layouts>.json in the store


class KeywordClassifier(Variant[OcrResult, Classification, KeywordParams]):
    """No learning: counts title words, MRZ prefixes and licence numbering for the type, and issuer
    names and codes for the issuer (titles, names and codes from the issuer layouts). Scores are the
    normalised counts. No issuer's name or code in the text: the issuer is unknown (`unfamiliar`)."""

    step = "classify"
    model = "keywords"
    implementation = "2"  # open set: `unknown` when no issuer matched

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
        if not sum(issuer_votes.values()):
            return unfamiliar(Classification(item.doc_id, best_l1, l1_scores, None, l2_scores), item)
        best_l2 = max(l2_scores, key=l2_scores.get) if best_l1 else None
        return Classification(item.doc_id, best_l1, l1_scores, best_l2, l2_scores)


def variants(store: ModelStore | None = None) -> list[Variant]:
    """The classification catalog: three learned families × two levels, and the keyword baseline."""
    learned: list[Variant] = [OnnxTextClassifier(family, level, store) for family in FAMILIES for level in LEVELS]
    keywords = KeywordClassifier("l2", KeywordParams(), "keyword rules (no learning), levels 1 and 2", store)
    return [*learned, keywords]
