"""Training the text classifiers and exporting them to ONNX (pure: texts in, models out; no tracking).

Each family is a scikit-learn pipeline (character 2-4-gram TF-IDF + a linear model). Metrics come
from a stratified hold-out split; the model that ships is then refit on all the data. The ONNX export
is checked against scikit-learn on the training texts before it is accepted.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from steps.classify import FAMILIES, LEVELS, model_dir
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


@dataclass
class TrainedClassifier:
    family: str
    level: str
    labels: list[str]
    onnx: bytes
    pipeline: Pipeline
    metrics: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def rel(self) -> str:
        return model_dir(self.family, self.level)

    def meta(self) -> dict[str, Any]:
        return {"family": self.family, "level": self.level, "labels": self.labels,
                "metrics": self.metrics, "provenance": self.provenance}

    def save(self, store: ModelStore) -> None:
        source = f"cardflow train ({self.provenance.get('ocr', '?')} text)"
        store.write_bytes(f"{self.rel}/model.onnx", self.onnx, source)
        store.write_bytes(f"{self.rel}/meta.json", (json.dumps(self.meta(), indent=2) + "\n").encode(), source)


def fit(family: str, level: str, texts: Sequence[str], labels: Sequence[str], seed: int = 0,
        holdout: float = 0.25) -> TrainedClassifier:
    """Hold-out metrics, then a refit on everything, exported to ONNX and checked against scikit-learn."""
    if level not in LEVELS or family not in FAMILIES:
        raise StepError(f"unknown classifier {family}:{level}; families {', '.join(FAMILIES)}, levels {', '.join(LEVELS)}")
    counts = Counter(labels)
    if len(counts) < 2:
        raise StepError(f"training {family}:{level} needs at least two classes, got {dict(counts)}")
    metrics: dict[str, float] = {"train_documents": float(len(texts)), "classes": float(len(counts))}
    can_stratify = min(counts.values()) >= 2 and int(len(texts) * holdout) >= len(counts)
    stratify = list(labels) if can_stratify else None
    x_tr, x_te, y_tr, y_te = train_test_split(list(texts), list(labels), test_size=holdout, random_state=seed,
                                              stratify=stratify)
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
    return TrainedClassifier(family, level, [str(c) for c in pipeline.classes_], onnx, pipeline, metrics)
