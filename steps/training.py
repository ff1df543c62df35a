"""Training the text classifiers and exporting them to ONNX (pure: texts in, models out; no tracking).

Each family is a scikit-learn pipeline (character 2-4-gram TF-IDF + a linear model). Metrics come
from a stratified hold-out split (by document when `groups` says which texts are captures of one document:
a capture's twin on the other side would flatter the metric); the model that ships is then refit on all the
data. The ONNX export is checked against scikit-learn on the training texts before it is accepted.

Open-set calibration (`calibrate`, when the issuer of every text is given): the threshold of `confidence()`
(steps/classify.py) under which a document's issuer is called unknown. Known issuers: out-of-fold confidences of
a grouped k-fold over all the texts; unknown issuers: each issuer left out in turn, a model trained on the
others scores its texts. The threshold is the highest that keeps `keep` (99%) of the known-issuer accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, train_test_split
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from steps.classify import FAMILIES, LEVELS, confidence, model_dir, softmax
from steps.errors import StepError
from steps.modelstore import ModelStore


def build(family: str, seed: int = 0) -> Pipeline:
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(2, 4), lowercase=False, sublinear_tf=True,
                                 min_df=2, max_features=30000, dtype=np.float32)
    models = {
        "tfidf-logreg": LogisticRegression(C=20.0, max_iter=3000, random_state=seed),
        "tfidf-nb": MultinomialNB(alpha=0.05),
        "tfidf-svm": LinearSVC(C=1.0, random_state=seed),
    }
    if family not in models:
        raise StepError(f"unknown classifier family {family!r}; valid: {', '.join(models)}")
    return Pipeline([("tfidf", vectorizer), ("clf", models[family])])


def to_onnx(pipeline: Pipeline, family: str) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    clf_type = type(pipeline.named_steps["clf"])
    options = {clf_type: {"raw_scores": True}} if family == "tfidf-svm" else {clf_type: {"zipmap": False}}
    with warnings.catch_warnings():
        # skl2onnx warns that char analysers "may not work": export_checked() verifies they do.
        warnings.simplefilter("ignore", UserWarning)
        model = convert_sklearn(pipeline, initial_types=[("text", StringTensorType([None, 1]))],
                                options=options, target_opset=17)
    return model.SerializeToString()


def onnx_predict(onnx_bytes: bytes, texts: Sequence[str]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"text": np.array(list(texts), dtype=object).reshape(-1, 1)})[0])


def probabilities(pipeline: Pipeline, family: str, texts: Sequence[str]) -> np.ndarray:
    """Class probabilities as the ONNX model gives them at inference (the SVM: softmax of its margins)."""
    if family != "tfidf-svm":
        return pipeline.predict_proba(list(texts))
    margins = pipeline.decision_function(list(texts))
    return softmax(np.column_stack([-margins, margins]) if margins.ndim == 1 else margins)


@dataclass(frozen=True)
class OpenSetCalibration:
    """The open-set threshold and what it did on the calibration: `known_*` over out-of-fold documents of the
    known issuers, `unknown_rejected` over the documents of each issuer left out (per issuer too)."""

    threshold: float  # confidence() below this: the issuer is unknown (0: never)
    keep: float  # share of the known-issuer accuracy the threshold had to keep
    known_documents: int = 0
    unknown_documents: int = 0
    known_accuracy: float = 0.0  # closed set: the top class right
    known_accuracy_open: float = 0.0  # accepted (confidence >= threshold) and right
    known_accepted: float = 0.0
    unknown_rejected: float = 0.0
    rejected_per_issuer: dict[str, float] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        """Whether there was anything to calibrate on: documents of issuers left out, and known-issuer documents
        classified right out of fold (not so when each class has one document: its fold never trains on it)."""
        return self.unknown_documents > 0 and self.known_accuracy > 0

    def to_json(self) -> dict[str, Any]:
        return {"calibrated": self.calibrated, **dataclasses.asdict(self)}

    def metrics(self) -> dict[str, float]:
        """The figures as flat metrics (`open_set.<name>`), for the training run."""
        names = ("threshold", "known_accuracy", "known_accuracy_open", "known_accepted", "unknown_rejected")
        return {f"open_set.{name}": float(getattr(self, name)) for name in names} if self.calibrated else {}


def choose_threshold(known_confidence: np.ndarray, known_correct: np.ndarray, keep: float) -> float:
    """The highest threshold under which at most (1 - keep) of the correctly classified known documents fall:
    the known-issuer accuracy keeps `keep` of itself while as many unknown-issuer documents as possible are
    rejected (their confidence is below it). 0 when no known document was classified right."""
    right = np.sort(np.asarray(known_confidence, dtype=np.float64)[np.asarray(known_correct, dtype=bool)])
    if not right.size:
        return 0.0
    may_lose = int(np.floor((1.0 - keep) * right.size + 1e-9))
    return float(right[min(may_lose, right.size - 1)])


def calibrate(family: str, level: str, texts: Sequence[str], labels: Sequence[str], issuers: Sequence[str],
              groups: Sequence[str] | None = None, seed: int = 0, folds: int = 4,
              keep: float = 0.99) -> OpenSetCalibration:
    """The open-set threshold of `family` at `level` (module docstring). Needs three issuers or more (each left
    out in turn, the others still two); with fewer, threshold 0 and nothing measured."""
    x, y, issuer = np.array(list(texts), dtype=object), np.array(list(labels)), np.array(list(issuers))
    group = np.array(list(groups) if groups is not None else range(len(x)), dtype=object)
    if len(set(issuer)) < 3 or len(set(group)) < 2:
        return OpenSetCalibration(0.0, keep)
    known_conf, known_right = np.zeros(len(x)), np.zeros(len(x), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few members per class in small corpora: still usable
        for train, test in group_folds(y, group, folds, seed):
            model = build(family, seed).fit(list(x[train]), list(y[train]))
            probs = probabilities(model, family, x[test])
            known_conf[test] = confidence(level, model.classes_, probs)
            known_right[test] = model.classes_[probs.argmax(axis=1)] == y[test]
    threshold = choose_threshold(known_conf, known_right, keep)
    unknown_conf, per_issuer = [], {}
    for left_out in sorted(set(issuer)):
        train = issuer != left_out
        model = build(family, seed).fit(list(x[train]), list(y[train]))
        conf = confidence(level, model.classes_, probabilities(model, family, x[~train]))
        per_issuer[str(left_out)] = float(np.mean(conf < threshold))
        unknown_conf.extend(conf)
    accepted = known_conf >= threshold
    return OpenSetCalibration(threshold, keep, len(x), len(unknown_conf), float(known_right.mean()),
                              float((known_right & accepted).mean()), float(accepted.mean()),
                              float(np.mean(np.array(unknown_conf) < threshold)), per_issuer)


@dataclass
class TrainedClassifier:
    family: str
    level: str
    labels: list[str]
    onnx: bytes
    pipeline: Pipeline
    metrics: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    open_set: OpenSetCalibration = field(default_factory=lambda: OpenSetCalibration(0.0, 0.0))

    @property
    def rel(self) -> str:
        return model_dir(self.family, self.level)

    def meta(self) -> dict[str, Any]:
        return {"family": self.family, "level": self.level, "labels": self.labels,
                "metrics": self.metrics, "provenance": self.provenance, "open_set": self.open_set.to_json()}

    def save(self, store: ModelStore) -> None:
        source = f"cardflow train ({self.provenance.get('ocr', '?')} text)"
        store.write_bytes(f"{self.rel}/model.onnx", self.onnx, source)
        store.write_bytes(f"{self.rel}/meta.json", (json.dumps(self.meta(), indent=2) + "\n").encode(), source)


def fit(family: str, level: str, texts: Sequence[str], labels: Sequence[str], seed: int = 0,
        holdout: float = 0.25, issuers: Sequence[str] | None = None, groups: Sequence[str] | None = None,
        keep: float = 0.99) -> TrainedClassifier:
    """Hold-out metrics, then a refit on everything, exported to ONNX and checked against scikit-learn. With
    `issuers` (each text's), the open-set threshold is calibrated too (`calibrate`); without, it is 0 (closed
    set). `groups`: texts of one document (captures of it) share a group and stay on one side of every split."""
    if level not in LEVELS or family not in FAMILIES:
        raise StepError(f"unknown classifier {family}:{level}; families {', '.join(FAMILIES)}, levels {', '.join(LEVELS)}")
    counts = Counter(labels)
    if len(counts) < 2:
        raise StepError(f"training {family}:{level} needs at least two classes, got {dict(counts)}")
    metrics: dict[str, float] = {"train_documents": float(len(texts)), "classes": float(len(counts))}
    x_tr, x_te, y_tr, y_te = _holdout_split(texts, labels, groups, holdout, seed)
    held = build(family, seed).fit(x_tr, y_tr)
    predicted = held.predict(x_te)
    metrics["holdout_accuracy"] = float(accuracy_score(y_te, predicted))
    metrics["holdout_macro_f1"] = float(f1_score(y_te, predicted, average="macro"))
    pipeline = build(family, seed).fit(list(texts), list(labels))
    onnx = to_onnx(pipeline, family)
    agreement = float(np.mean(onnx_predict(onnx, texts) == pipeline.predict(list(texts))))
    metrics["onnx_sklearn_agreement"] = agreement
    if agreement < 1.0:
        raise StepError(f"{family}:{level}: the ONNX export disagrees with scikit-learn on "
                        f"{(1 - agreement) * 100:.1f}% of the training texts; not shipping it")
    open_set = (calibrate(family, level, texts, labels, issuers, groups, seed, round(1 / holdout), keep)
                if issuers is not None else OpenSetCalibration(0.0, keep))
    metrics |= open_set.metrics()
    return TrainedClassifier(family, level, [str(c) for c in pipeline.classes_], onnx, pipeline, metrics, {}, open_set)


def group_folds(labels: Sequence[str], groups: Sequence[str], folds: int,
                seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs with every group on one side: `folds` folds, or fewer when there are fewer groups;
    stratified by label when the largest class has a member for every fold (scikit-learn refuses it otherwise: a
    small corpus with many classes), else by group alone."""
    labels, groups = list(labels), list(groups)
    n = max(2, min(folds, len(set(groups))))
    if max(Counter(labels).values()) >= n:
        return StratifiedGroupKFold(n, shuffle=True, random_state=seed).split(labels, labels, groups)
    return GroupKFold(n).split(labels, labels, groups)


def _holdout_split(texts: Sequence[str], labels: Sequence[str], groups: Sequence[str] | None, holdout: float,
                   seed: int) -> tuple[list[str], list[str], list[str], list[str]]:
    """Train and test texts and labels: stratified by label where every class can be; by group when given."""
    counts = Counter(labels)
    if groups is not None and len(set(groups)) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            train, test = next(group_folds(labels, groups, round(1 / holdout), seed))
        return ([texts[i] for i in train], [texts[i] for i in test], [labels[i] for i in train],
                [labels[i] for i in test])
    can_stratify = min(counts.values()) >= 2 and int(len(texts) * holdout) >= len(counts)
    split = train_test_split(list(texts), list(labels), test_size=holdout, random_state=seed,
                             stratify=list(labels) if can_stratify else None)
    return split[0], split[1], split[2], split[3]
