"""`cardflow train`: OCR a training corpus, fit every classifier family at both levels, export to ONNX,
put the models in the model store and log metrics + ONNX files to MLflow.

Reads: a corpus (generated from the pipeline spec's `training` section when --corpus is absent).
Writes: models/classify/<family>-<level>/{model.onnx,meta.json}; an MLflow run in experiment
`cardflow-train` with params (OCR and preprocess variant that made the text, corpus manifest hash),
metrics `<family>.<level>.holdout_accuracy|holdout_macro_f1|onnx_sklearn_agreement`, artifacts
`classifiers/<family>-<level>/`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from corpus.generate import GenerateSpec, generate
from corpus.loaders import load
from mlproject.ocrpool import ocr_documents
from steps.catalog import default_catalog
from steps.classify import LEVELS, classification_text
from steps.errors import StepError
from steps.modelstore import ModelStore
from steps.records import StepFailure
from steps.spec import load_spec
from steps.training import fit
from tracking.edge import environment_params, log_params, run_for

log = logging.getLogger(__name__)


def train(*, corpus: Path | None = None, out_corpus: Path = Path("data/train-corpus"), preprocess: str | None = None,
          ocr: str | None = None, families: tuple[str, ...] | None = None, workers: int = 2,
          store: ModelStore | None = None) -> dict[str, dict[str, float]]:
    """Train and ship the classifiers; returns {"<family>-<level>": metrics}."""
    catalog = default_catalog(store)
    spec = load_spec(catalog)
    preprocess_id = catalog.resolve("preprocess", preprocess or spec.training.preprocess)
    ocr_id = catalog.resolve("ocr", ocr or spec.training.ocr)
    families = families or spec.training.families
    store = store or ModelStore()
    if corpus is None:
        corpus = out_corpus
        generate(GenerateSpec(out=corpus, n=spec.training.n, seed=spec.training.seed,
                              distributions=spec.training.distributions), workers=workers)
    docs = load(corpus)
    labelled = [d for d in docs if d.truth and d.truth.l1 and d.truth.l2]
    if not labelled:
        raise StepError(f"training corpus {corpus} has no documents labelled with level-1 and level-2 classes")
    started = time.perf_counter()
    results = ocr_documents(labelled, preprocess_id, ocr_id, workers, desc="train: ocr")
    ocr_seconds = time.perf_counter() - started
    kept = [(d, r) for d, r in zip(labelled, results, strict=True) if not isinstance(r, StepFailure)]
    texts = [classification_text(r) for _, r in kept]
    provenance = {"ocr": ocr_id, "preprocess": preprocess_id, "corpus": str(corpus),
                  "corpus_manifest_sha256": docs.manifest_hash, "documents": len(kept)}
    report: dict[str, dict[str, float]] = {}
    with run_for("cardflow-train", f"train {ocr_id.split('/', 1)[1]}") as run:
        import mlflow

        log_params({"ocr": ocr_id, "preprocess": preprocess_id, "corpus": str(corpus),
                           "corpus_manifest_sha256": docs.manifest_hash, "families": ",".join(families),
                           "documents": len(kept), "ocr_failures": len(labelled) - len(kept),
                           **environment_params()})
        mlflow.log_metric("ocr_seconds", ocr_seconds)
        for family in families:
            for level in LEVELS:
                trained = fit(family, level, texts, [getattr(d.truth, level) for d, _ in kept])
                trained.provenance = {**provenance, "mlflow_run_id": run.info.run_id}
                trained.save(store)
                mlflow.log_metrics({f"{family}.{level}.{k}": v for k, v in trained.metrics.items()})
                mlflow.log_artifacts(str(store.root / trained.rel), f"classifiers/{trained.rel.split('/', 1)[1]}")
                report[f"{family}-{level}"] = trained.metrics
                log.info("trained %s:%s holdout accuracy %.3f", family, level, trained.metrics["holdout_accuracy"])
    return report
