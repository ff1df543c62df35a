"""The four steps: contract, catalog, exact outputs of deterministic pieces, model files, failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from corpus.loaders import load
from corpus.records import DocumentRef, GroundTruth
from steps.base import STEPS
from steps.catalog import Catalog, default_catalog
from steps.classify import OnnxTextClassifier, to_classification
from steps.errors import StepError
from steps.geometry import corner_error, find_quad
from steps.modelstore import ModelStore
from steps.preprocess import PreprocessParams, Recipe
from steps.preprocess import variants as preprocess_variants
from steps.records import Classification, Extraction, ImageRecord, StepFailure
from steps.runner import DocumentOutcome
from steps.scoring import Summary, document_assertions
from steps.training import fit
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


def test_catalog_has_the_variants_the_issue_asks_for(catalog: Catalog) -> None:
    counts = {step: len(catalog.ids(step)) for step in STEPS}
    assert counts["preprocess"] >= 6 and counts["ocr"] >= 6 and counts["extract"] >= 2
    assert {"ocr/tesseract:lstm-fast", "ocr/tesseract:lstm-standard", "ocr/tesseract:legacy",
            "ocr/pytesseract:lstm-fast", "ocr/rapidocr:ppocrv4-fp32", "ocr/rapidocr:ppocrv4-int8"} <= set(catalog.ids("ocr"))
    families = {vid.split("/")[1].split(":")[0] for vid in catalog.ids("classify")}
    assert len(families - {"keywords"}) >= 3
    assert {vid.rsplit(":", 1)[1] for vid in catalog.ids("classify")} >= {"l1", "l2"}
    for variant in catalog:
        assert variant.id == f"{variant.step}/{variant.model}:{variant.version}"


def test_catalog_refuses_unknown_and_duplicate_ids(catalog: Catalog) -> None:
    with pytest.raises(StepError, match=r"unknown variant 'ocr/tesseract:nope'; valid: ocr/tesseract:lstm-fast"):
        catalog.get("ocr/tesseract:nope")
    with pytest.raises(StepError, match=r"unknown preprocess variant 'purple'; valid: preprocess/channel:rgb"):
        catalog.resolve("preprocess", "purple")
    with pytest.raises(StepError, match="ambiguous"):
        catalog.resolve("preprocess", "gray")  # channel:gray, otsu:gray, …
    variant = catalog.get("preprocess/channel:red")
    with pytest.raises(StepError, match="duplicate variant id 'preprocess/channel:red'"):
        Catalog([variant, variant])


def test_configuration_from_ids_or_names(catalog: Catalog) -> None:
    config = catalog.parse("channel:red | tesseract:lstm-fast | tfidf-logreg:l2 | mrz-first:v1")
    assert config.ids() == ("preprocess/channel:red", "ocr/tesseract:lstm-fast", "classify/tfidf-logreg:l2",
                            "extract/mrz-first:v1")
    assert config.id == "|".join(config.ids()) and len(config.short_hash) == 10
    with pytest.raises(StepError, match="missing: extract"):
        catalog.configuration({"preprocess": "channel:red", "ocr": "tesseract:lstm-fast", "classify": "keywords:l2"})
    with pytest.raises(StepError, match="four variants"):
        catalog.parse("channel:red | tesseract:lstm-fast")


def test_variants_command_json() -> None:
    result = subprocess.run([sys.executable, "-m", "mlproject.cli", "variants", "--json"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all({"id", "step", "model", "version", "params"} <= set(r) for r in rows)
    assert {r["step"] for r in rows} == set(STEPS)


def test_channel_split_and_binarisation_exact_values() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    image[:, :3] = (10, 20, 30)
    image[:, 3:] = (200, 150, 100)
    by_id = {v.id: v for v in preprocess_variants()}
    run = lambda vid: by_id[vid].run([ImageRecord("d", image)])[0]  # noqa: E731
    assert (run("preprocess/channel:red").image == np.array([10] * 3 + [200] * 3)).all()
    assert (run("preprocess/channel:green").image == np.array([20] * 3 + [150] * 3)).all()
    assert (run("preprocess/channel:blue").image == np.array([30] * 3 + [100] * 3)).all()
    gray = run("preprocess/channel:gray").image
    assert gray.shape == (4, 6) and gray[0, 0] == 18 and gray[0, 5] == 159  # 0.299 R + 0.587 G + 0.114 B
    otsu = run("preprocess/otsu:gray")
    assert set(np.unique(otsu.image)) == {0, 255} and (otsu.image[:, :3] == 0).all()
    assert otsu.applied == ("gray", "otsu")
    assert run("preprocess/channel:rgb").image is image


def test_bad_preprocess_parameters_are_refused() -> None:
    with pytest.raises(StepError, match="channel 'purple'"):
        PreprocessParams(channel="purple")
    with pytest.raises(StepError, match="needs a single channel"):
        PreprocessParams(channel="rgb", method="otsu")
    with pytest.raises(StepError, match="adaptive_block must be odd"):
        PreprocessParams(method="adaptive", adaptive_block=10)


def test_int8_ocr_models_are_int8_and_smaller() -> None:
    """det and cls are quantised whole; rec only in its MatMul layers (its convolutions stay fp32)."""
    store = ModelStore()
    int8_types = {onnx.TensorProto.UINT8, onnx.TensorProto.INT8}
    for part, max_ratio in (("det", 0.5), ("rec", 0.8), ("cls", 0.5)):
        fp32 = store.path(f"rapidocr/ppocrv4-fp32/{part}.onnx")
        int8 = store.path(f"rapidocr/ppocrv4-int8/{part}.onnx")
        assert int8.stat().st_size < max_ratio * fp32.stat().st_size, part
        model = onnx.load(str(int8))
        quantised = [t for t in model.graph.initializer if t.data_type in int8_types]
        assert len(quantised) >= 10, part
        ops = {n.op_type for n in model.graph.node}
        assert "MatMulInteger" in ops or "ConvInteger" in ops, part
        if part == "rec":
            assert "MatMulInteger" in ops and "ConvInteger" not in ops and "Conv" in ops
    source = store.files()["rapidocr/ppocrv4-int8/rec.onnx"]["source"]
    assert "operators MatMul" in source


def test_model_store_detects_a_tampered_file(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    path = store.path("tessdata/lstm-fast/eng.traineddata")
    assert store.files()["tessdata/lstm-fast/eng.traineddata"]["bytes"] == path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(100)
        fh.write(b"XXXX")
    with pytest.raises(StepError, match=r"eng.traineddata does not match the store's sha256"):
        store.path("tessdata/lstm-fast/eng.traineddata")


def _texts(corpus: Path) -> tuple[list[str], list[str], list[str]]:
    docs = [d for d in load(corpus) if d.truth]
    texts = [" | ".join(d.truth.text_lines) for d in docs]
    return texts, [d.truth.l1 for d in docs], [d.truth.l2 for d in docs]


def test_onnx_classifiers_predict_what_scikit_learn_predicts(small_corpus: Path, tmp_path: Path) -> None:
    texts, _, l2 = _texts(small_corpus)
    train_texts, test_texts = texts[::2], texts[1::2]
    store = ModelStore(tmp_path / "store")
    for family in ("tfidf-logreg", "tfidf-nb", "tfidf-svm"):
        trained = fit(family, "l2", train_texts, l2[::2])
        assert trained.metrics["onnx_sklearn_agreement"] == 1.0
        trained.save(store)
        variant = OnnxTextClassifier(family, "l2", store)
        onnx_labels = [variant.labels[k] for k in variant.scores(test_texts).argmax(axis=1)]
        assert onnx_labels == list(trained.pipeline.predict(test_texts)), family
        if family != "tfidf-svm":
            assert np.allclose(variant.scores(test_texts), trained.pipeline.predict_proba(test_texts), atol=0.02)


def test_a_level_2_model_gives_level_1_as_summed_probabilities() -> None:
    labels = ["AUR.id_card", "AUR.passport", "NRV.id_card"]
    result = to_classification("d", "l2", labels, np.array([0.3, 0.4, 0.3]))
    assert result.l2 == "AUR.passport" and result.l1 == "id_card"  # 0.6 for id_card beats 0.4
    assert result.l1_scores == pytest.approx({"id_card": 0.6, "passport": 0.4})
    level1 = to_classification("d", "l1", ["id_card", "passport"], np.array([0.2, 0.8]))
    assert level1.l1 == "passport" and level1.l2 is None


def test_missing_classifier_is_a_clear_error(tmp_path: Path) -> None:
    variant = OnnxTextClassifier("tfidf-nb", "l1", ModelStore(tmp_path / "empty"))
    with pytest.raises(StepError, match="no trained model at .*tfidf-nb-l1/model.onnx; train the classifiers first"):
        variant.load()


def test_assertions_on_a_known_outcome() -> None:
    truth = GroundTruth(l1="passport", l2="NRV.passport",
                        fields={"surname": "MÜLLER", "document_number": "F12345678", "date_of_birth": "1970-01-02"},
                        mrz_lines=("P<NRVMULLER<<ANNA<<<", "F12345678"))
    good = DocumentOutcome("d", "x.jpg", "clean", truth,
                           classification=Classification("d", "passport", {}, "NRV.id_card", {}),
                           extraction=Extraction("d", {"surname": "Muller", "document_number": "F 12345678",
                                                       "date_of_birth": "1970-02-01"},
                                                 mrz_lines=("P<NRVMULLER<<ANNA<<<", "F12345678"),
                                                 mrz_checks={"document_number": True, "final": False}))
    assert document_assertions(truth, good) == {
        "class_l1": True, "class_l2": False, "field.surname": True, "field.document_number": True,
        "field.date_of_birth": False, "mrz_lines": True, "mrz_valid": False}
    failed = DocumentOutcome("d", "x.jpg", "clean", truth, failure=StepFailure("d", "ocr", "ocr/x:y", "boom"))
    assert not any(document_assertions(truth, failed).values())
    summary = Summary()
    summary.add(good)
    summary.add(failed)
    metrics = summary.metrics()
    assert metrics["accuracy"] == pytest.approx(4 / 14) and metrics["assert.class_l1"] == 0.5
    assert metrics["field.surname.exact"] == 0.5 and metrics["l2_accuracy"] == 0.0 and metrics["failures"] == 1


def test_rectification_finds_the_card_in_phone_shots(small_corpus: Path) -> None:
    docs = [d for d in load(small_corpus) if d.distribution == "phone"]
    errors = [corner_error(find_quad(d.read_image()), d.truth.corners) for d in docs]
    assert np.median(errors) < 0.03 and np.mean(np.array(errors) < 0.05) >= 0.8, errors
    clean = next(d for d in load(small_corpus) if d.distribution == "clean")
    assert corner_error(find_quad(clean.read_image()), clean.truth.corners) == 0.0
    rectified = Recipe("rectify", "gray", PreprocessParams(rectify=True), "").run([ImageRecord("p", docs[0].read_image())])[0]
    assert rectified.image.shape in ((630, 1000), (880, 1250)) and rectified.applied == ("rectify", "gray")


@pytest.mark.slow
def test_a_corrupt_image_is_a_recorded_failure_and_the_batch_goes_on(small_corpus: Path, tmp_path: Path,
                                                                     catalog: Catalog) -> None:
    from steps.runner import Pipeline

    good = next(d for d in load(small_corpus) if d.distribution == "clean")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.path.read_bytes()[:2000])
    docs = [good, DocumentRef("broken", broken), good]
    config = catalog.parse("channel:gray | tesseract:lstm-fast | keywords:l2 | mrz-first:v1")
    outcomes = Pipeline(config, catalog).run_batch(docs)
    assert outcomes[1].failure is not None and outcomes[1].failure.step == "preprocess"
    assert "broken.jpg" in outcomes[1].failure.reason
    assert outcomes[0].failure is None and outcomes[2].failure is None
    assert outcomes[0].extraction.fields["document_number"] == good.truth.fields["document_number"]
    assert set(outcomes[0].latency_ms) == set(STEPS) and outcomes[0].end_to_end_ms >= sum(outcomes[0].latency_ms.values()) * 0.99


@pytest.mark.slow
def test_every_variant_runs_on_a_small_corpus(small_corpus: Path, trained_store: ModelStore) -> None:
    """Each variant, with the default variants around it, on one clean document of each type: no failure,
    and sensible output (OCR finds the document number among its words for Tesseract/RapidOCR)."""
    from steps.runner import Pipeline
    from steps.spec import load_spec

    catalog = default_catalog(trained_store)
    default = load_spec(catalog).default
    docs = []
    for doc in load(small_corpus):
        if doc.distribution == "clean" and doc.truth.l1 not in {d.truth.l1 for d in docs}:
            docs.append(doc)
    assert len(docs) == 3
    for variant in catalog:
        choice = default.as_dict() | {variant.step: variant.id}
        outcomes = Pipeline(catalog.configuration(choice), catalog).run_batch(docs)
        for outcome in outcomes:
            assert outcome.failure is None, (variant.id, outcome.failure)
            assert outcome.classification is not None and outcome.extraction is not None
        if variant.step == "ocr":
            words = {w.text for o in outcomes for line in o.ocr.lines for w in line.words}
            hits = sum(d.truth.fields["document_number"] in words or d.truth.fields["document_number"] in o.ocr.text
                       for d, o in zip(docs, outcomes, strict=True))
            assert hits >= 2, (variant.id, hits)


def test_a_read_only_model_store_is_read_without_a_lock_and_names_a_missing_file(tmp_path, monkeypatch) -> None:
    """A modelcar's /models is mounted read-only: its files are served as they are, a missing one is named. (The
    tests run as root, for whom mode bits do not make a folder read-only, so `os.access` answers as a read-only
    mount would; the real read-only mount is `make test-image`'s modelcar test.)"""
    import hashlib
    import json
    import os

    import pytest as _pytest

    import steps.modelstore as modelstore
    from steps.errors import StepError

    root = tmp_path / "store"
    (root / "classify").mkdir(parents=True)
    data = b"model bytes"
    (root / "classify" / "model.onnx").write_bytes(data)
    (root / "store.json").write_text(json.dumps({"files": {"classify/model.onnx": {
        "sha256": hashlib.sha256(data).hexdigest()}}}))
    real_access = os.access
    monkeypatch.setattr(modelstore.os, "access",
                        lambda path, mode: False if mode == os.W_OK and str(path).startswith(str(root))
                        else real_access(path, mode))
    store = modelstore.ModelStore(root, follow_sources=False)
    assert store.read_only()
    assert store.path("classify/model.onnx").read_bytes() == data
    assert not (root / ".lock").exists()  # no lock file written
    with _pytest.raises(StepError, match="not in the read-only model store"):
        store.path("classify/other.onnx")
