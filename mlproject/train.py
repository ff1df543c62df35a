"""`cardflow train`: OCR a training corpus, fit every classifier family at both levels, calibrate each one's
open-set threshold on issuers left out (steps/training.py), export to ONNX, put the models in the model store and
log metrics + ONNX files to MLflow. `ensure_trained` does the same on first use, once, when a command needs a
classifier that was never trained (or was trained before open-set calibration existed).

Reads: a corpus (generated from the pipeline spec's `training` section when --corpus is absent).
Writes: models/classify/<family>-<level>/{model.onnx,meta.json} (meta.json `open_set`: the threshold and its
calibration figures); an MLflow run in experiment `cardflow-train` with params (OCR and preprocess variant that
made the text, corpus manifest hash), metrics `<family>.<level>.holdout_accuracy|holdout_macro_f1|
onnx_sklearn_agreement` and `<family>.<level>.open_set.threshold|known_accuracy|known_accuracy_open|
known_accepted|unknown_rejected`, artifacts `classifiers/<family>-<level>/`. The calibration figures are also
logged (stderr) per classifier.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from corpus.generate import GenerateSpec, generate
from corpus.loaders import load
from corpus.records import DocumentRef
from mlproject.ocrpool import ocr_documents
from steps.catalog import Catalog
from steps.classify import LEVELS, OnnxTextClassifier, classification_text
from steps.errors import StepError
from steps.modelstore import ModelStore
from steps.records import StepFailure
from steps.spec import PipelineSpec, load_spec

if TYPE_CHECKING:
    from steps.training import OpenSetCalibration

log = logging.getLogger(__name__)
EXPERIMENT = "cardflow-train"


def train(catalog: Catalog, store: ModelStore, *, corpus: Path | None = None,
          out_corpus: Path = Path("data/train-corpus"), preprocess: str | None = None, ocr: str | None = None,
          families: tuple[str, ...] | None = None, workers: int = 2, spec: PipelineSpec | None = None,
          attach: bool = True) -> dict[str, dict[str, float]]:
    """Train and ship the classifiers; returns {"<family>-<level>": metrics}. Under `mlflow run` (and `attach`)
    the entry point's run records it; otherwise a run of its own in `cardflow-train`."""
    # MLflow and scikit-learn load here, not at import: `cardflow predict` with trained models needs neither.
    from mlflow.tracking.context.registry import resolve_tags

    from steps.training import fit
    from tracking.edge import client_for, environment_params, experiment_id, log_files

    spec = spec or load_spec(catalog)
    preprocess_id = catalog.resolve("preprocess", preprocess or spec.training.preprocess)
    ocr_id = catalog.resolve("ocr", ocr or spec.training.ocr)
    families = families or spec.training.families
    if corpus is None:
        corpus = out_corpus
        generate(GenerateSpec(out=corpus, n=spec.training.n, seed=spec.training.seed,
                              distributions=spec.training.distributions), workers=workers)
    docs = load(corpus)
    labelled = [d for d in docs if d.truth and d.truth.l1 and d.truth.l2]
    if not labelled:
        raise StepError(f"training corpus {corpus} has no documents labelled with level-1 and level-2 classes")
    started = time.perf_counter()
    results = ocr_documents(labelled, preprocess_id, ocr_id, workers, catalog, desc="train: ocr")
    ocr_seconds = time.perf_counter() - started
    kept = [(d, r) for d, r in zip(labelled, results, strict=True) if not isinstance(r, StepFailure)]
    texts = [classification_text(r) for _, r in kept]
    issuers = [d.truth.issuer or d.truth.l2.split(".", 1)[0] for d, _ in kept]
    groups = [document_group(d) for d, _ in kept]
    client = client_for()
    attached = os.environ.get("MLFLOW_RUN_ID") if attach else None
    name = f"train {ocr_id.split('/', 1)[1]}"
    if attached:
        client.set_tag(attached, "mlflow.runName", name)
    run_id = attached or client.create_run(experiment_id(client, EXPERIMENT), run_name=name,
                                           tags=resolve_tags()).info.run_id
    provenance = {"ocr": ocr_id, "preprocess": preprocess_id, "corpus": str(corpus),
                  "corpus_manifest_sha256": docs.manifest_hash, "documents": len(kept), "mlflow_run_id": run_id}
    report: dict[str, dict[str, float]] = {}
    try:
        _log_params(client, run_id, {"ocr": ocr_id, "preprocess": preprocess_id, "corpus": str(corpus),
                                     "corpus_manifest_sha256": docs.manifest_hash, "families": ",".join(families),
                                     "documents": len(kept), "ocr_failures": len(labelled) - len(kept),
                                     **environment_params()})
        client.log_metric(run_id, "ocr_seconds", ocr_seconds)
        for family in families:
            for level in LEVELS:
                trained = fit(family, level, texts, [getattr(d.truth, level) for d, _ in kept], issuers=issuers,
                              groups=groups)
                trained.provenance = dict(provenance)
                trained.save(store)
                for key, value in trained.metrics.items():
                    client.log_metric(run_id, f"{family}.{level}.{key}", value)
                files = {name: (store.root / trained.rel / name).read_bytes() for name in ("model.onnx", "meta.json")}
                log_files(client, run_id, files, f"classifiers/{trained.rel.split('/', 1)[1]}")
                report[f"{family}-{level}"] = trained.metrics
                log.info("trained %s:%s holdout accuracy %.3f", family, level, trained.metrics["holdout_accuracy"])
                log.info("%s:%s open set: %s", family, level, describe_calibration(trained.open_set))
        if not attached:
            client.set_terminated(run_id, "FINISHED")
    except BaseException as exc:
        if not attached:
            client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    return report


def document_group(doc: DocumentRef) -> str:
    """Which texts are captures of one document (kept on one side of every training split): its issuer and
    document number when the truth has one (the generator renders each document under every distribution),
    else the document itself."""
    number = doc.truth.fields.get("document_number") if doc.truth else None
    return f"{doc.truth.issuer or doc.truth.l2}:{number}" if number else f"doc:{doc.doc_id}"


def describe_calibration(calibration: OpenSetCalibration) -> str:
    if not calibration.calibrated:
        return "not calibrated (fewer than three issuers, or too few documents per class): closed set"
    per_issuer = ", ".join(f"{issuer} {rate:.0%}" for issuer, rate in calibration.rejected_per_issuer.items())
    return (f"threshold {calibration.threshold:.3f} (keeps {calibration.keep:.0%} of the known-issuer accuracy); "
            f"known issuers: accuracy {calibration.known_accuracy:.3f} -> {calibration.known_accuracy_open:.3f}, "
            f"accepted {calibration.known_accepted:.1%} of {calibration.known_documents}; issuers left out: "
            f"rejected {calibration.unknown_rejected:.1%} of {calibration.unknown_documents} ({per_issuer})")


def _log_params(client, run_id: str, params: dict) -> None:
    """Params not yet on the run (under `mlflow run` the entry point's raw values are there already; a resolved
    value that differs is logged as `effective.<name>`)."""
    from mlflow.entities import Param

    existing = client.get_run(run_id).data.params
    fresh = [Param(k if k not in existing else f"effective.{k}", str(v)) for k, v in params.items()
             if existing.get(k) != str(v)]
    client.log_batch(run_id, params=fresh)


def untrained(catalog: Catalog, variant_ids: Iterable[str]) -> list[OnnxTextClassifier]:
    """The learned classifiers among `variant_ids` whose model files are not in their store, or are from before
    open-set calibration (no threshold in meta.json)."""
    out = []
    for vid in dict.fromkeys(variant_ids):
        variant = catalog.get(vid)
        if isinstance(variant, OnnxTextClassifier) and not variant.trained():
            out.append(variant)
    return out


def ensure_trained(catalog: Catalog, variant_ids: Iterable[str], *, workers: int = 2, corpus: Path | None = None,
                   spec: PipelineSpec | None = None) -> bool:
    """Train the classifiers on first use when any of `variant_ids` needs one that was never trained: once, under
    a lock in the model store, so two processes asking together train once (the second waits, then finds
    them). Returns whether this call trained. Says so on stderr: it takes about 40 s on two cores."""
    ids = list(variant_ids)
    missing = untrained(catalog, ids)
    if not missing:
        return False
    store = missing[0].store
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            missing = untrained(catalog, ids)
            if not missing:
                log.info("classifiers: trained meanwhile by another process")
                return False
            from tracking.edge import tracking_uri

            log.warning("classifiers %s are not trained yet: training every classifier now, once (OCR of the "
                        "training corpus, then 3 families × 2 levels; about 40 s on two cores), into %s; runs "
                        "are recorded in %s experiment %s", ", ".join(v.id for v in missing), store.root,
                        tracking_uri(), EXPERIMENT)
            spec = spec or load_spec(catalog)
            families = tuple(dict.fromkeys((*spec.training.families, *(v.params.family for v in missing))))
            train(catalog, store, corpus=corpus, families=families, workers=workers, spec=spec, attach=False)
            return True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
