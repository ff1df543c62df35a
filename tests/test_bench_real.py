"""bench/bench_real.py, corpus/mrz_cards.py and the sweep report's real-document section: the rendered MIDV-2020
MRZ set round-trips through the loader, the bench's scoring tells an exact read from a one-character miss, its
--help works, a tiny run writes the JSON, and a sweep over real MRZ ground truth reports the MRZ figures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mrz.checker.td3 import TD3CodeChecker

from analysis.real import all_fields_exact, describe_corpus, run_figures
from corpus.errors import CorpusConflict
from corpus.generate import GenerateSpec, generate
from corpus.loaders import load, mrz_fields
from corpus.mrz_cards import read_vectors, render_corpus, td3_fields
from corpus.records import GroundTruth
from steps.records import Extraction, StepFailure
from steps.runner import DocumentOutcome

ROOT = Path(__file__).resolve().parent.parent
REAL_DEV = ROOT.parent / "shared" / "data" / "real-dev"
VECTORS = REAL_DEV / "midv2020_templates_sidtd" / "aze_passport_mrz_vectors.json"
L1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
L2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_real", ROOT / "bench" / "bench_real.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _bench()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered") / "cards"
    render_corpus(VECTORS, out, ("clean", "phone"), limit=3)
    return out


def test_rendered_set_round_trips_the_source_strings(rendered: Path) -> None:
    source = {v.index: v for v in read_vectors(VECTORS)}
    corpus = load(rendered, verify=True)
    assert len(corpus) == 6 and corpus.distributions == ("clean", "phone")
    for doc in corpus:
        vector = source[doc.meta["source"]["index"]]
        assert doc.truth.mrz_lines == vector.lines  # the ground truth is the string as given …
        assert [len(line) for line in doc.truth.mrz_lines] == [44, 44]
        assert bool(TD3CodeChecker("\n".join(doc.truth.mrz_lines))) == vector.checker_valid  # … check digits too
        assert dict(doc.truth.fields) == mrz_fields(td3_fields(vector.lines))
        assert doc.truth.fields["document_number"] == doc.truth.mrz_lines[1][:9]
        assert doc.truth.l1 == "passport" and doc.truth.issuer == "AZE"
        assert doc.read_image().shape[:2] == ((880, 1250) if doc.distribution == "clean" else (960, 1280))
    manifest = json.loads((rendered / "corpus.json").read_text())
    # the one vector with a 43-character line is left out, and says why
    assert [s["template"] for s in manifest["skipped"]] == ["53.jpg"] and "43" in manifest["skipped"][0]["reason"]
    assert manifest["counts"]["vectors"] == 100 and describe_corpus(rendered).kind == "rendered-real-mrz"


def test_rendering_again_keeps_the_files_and_refuses_another_rendering_in_their_place(rendered: Path) -> None:
    image = rendered / "images" / "clean" / "clean-000000.jpg"
    before = image.stat().st_mtime_ns
    render_corpus(VECTORS, rendered, ("clean", "phone"), limit=3)
    assert image.stat().st_mtime_ns == before
    with pytest.raises(CorpusConflict):
        render_corpus(VECTORS, rendered, ("clean",), limit=2)


def _outcome(doc_id: str, lines: tuple[str, ...], fields: dict[str, str], *, valid: bool = True, ms: float = 1000.0,
             truth_lines: tuple[str, ...] = (L1, L2), failure: StepFailure | None = None) -> DocumentOutcome:
    truth = GroundTruth(l1="passport", fields={"surname": "ERIKSSON", "document_number": "L898902C3",
                                               "document_type": "P"} if truth_lines else {},
                        mrz_lines=truth_lines)
    extraction = Extraction(doc_id, fields, lines, {"final": valid}) if failure is None else None
    return DocumentOutcome(doc_id, f"{doc_id}.jpg", "test", truth, extraction=extraction, failure=failure,
                           end_to_end_ms=ms)


def test_scoring_counts_an_exact_read_as_exact_and_one_character_off_as_not(bench) -> None:
    right = {"surname": "ERIKSSON", "document_number": "L898902C3"}  # document_type: no extractor produces it
    outcomes = [
        _outcome("exact", (L1, L2), right, ms=1000.0),
        _outcome("one-off", (L1, L2[:20] + "M" + L2[21:]), {**right, "document_number": "L898902C8"}, valid=False,
                 ms=2000.0),
        _outcome("failed", (), {}, ms=4000.0, failure=StepFailure("failed", "ocr", "ocr/x", "boom")),
        _outcome("validity-only", (L1, L2), right, truth_lines=(), ms=3000.0),
    ]
    score = bench.set_score(outcomes, sla_s=3.0, meta={"validity-only": {"expected_valid_score": 100}})
    assert (score["documents"], score["scored"], score["failures"]) == (4, 3, 1)
    assert (score["mrz_exact"], score["fields_exact"], score["fields_scored"], score["mrz_valid"]) == (1, 1, 3, 1)
    assert score["mrz_line_exact"] == [{"line": 1, "exact": 2, "of": 3}, {"line": 2, "exact": 1, "of": 3}]
    assert score["fields_missed"] == {"document_number": 2, "surname": 1}
    assert score["validity_only"] == {"documents": 1, "mrz_valid": 1, "passporteye_100": 1,
                                      "mrz_valid_of_passporteye_100": 1}
    assert score["seconds"]["median"] == 2.5 and score["seconds"]["mean"] == 2.5
    assert score["within_sla"] == {"median": True, "p95": False}
    by_id = {row["doc_id"]: row for row in score["per_document"]}
    assert by_id["exact"]["mrz_exact"] and not by_id["one-off"]["mrz_exact"] and not by_id["failed"]["mrz_exact"]
    best = bench.best_configuration([{**score, "label": "a"}, {**score, "mrz_exact": 2, "label": "b"}])
    assert best["label"] == "b"


def test_report_figures_use_the_same_definitions() -> None:
    assert all_fields_exact({"field.surname": True, "field.document_type": False, "mrz_lines": False}) is True
    assert all_fields_exact({"field.surname": True, "field.sex": False}) is False
    assert all_fields_exact({"field.document_type": True, "class_l1": True}) is None
    rows = [{"assertions": {"mrz_lines": True, "mrz_valid": True, "field.surname": True}, "failure": None},
            {"assertions": {"mrz_lines": False, "mrz_valid": False, "field.surname": False},
             "failure": {"step": "ocr"}},
            {"assertions": {"class_l1": True}, "failure": None}]  # no MRZ ground truth: left out
    assert run_figures(rows) == {"documents": 2, "mrz_exact": 1, "fields_scored": 2, "fields_exact": 1,
                                 "mrz_valid": 1, "failures": 1}
    info = describe_corpus(REAL_DEV / "passporteye_testdata")
    assert info.kind == "real" and info.real_mrz and "38 real document images" in info.text and "4 of them" in info.text


def test_help_works() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_real.py"), "--help"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "--sets" in done.stdout and "--configs" in done.stdout and "mrz_more" in done.stdout


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory):
    """Every classifier fitted on the ground-truth text of 15 clean documents (no OCR): the default configuration
    runs without training."""
    from steps.classify import FAMILIES, LEVELS
    from steps.modelstore import ModelStore
    from steps.training import fit

    corpus = tmp_path_factory.mktemp("corpus") / "c"
    generate(GenerateSpec(out=corpus, n=15, seed=11, distributions=("clean",)), workers=1, progress=False)
    docs = list(load(corpus))
    store = ModelStore(tmp_path_factory.mktemp("models"))
    texts = [" | ".join(d.truth.text_lines) for d in docs]
    for family in FAMILIES:
        for level in LEVELS:
            trained = fit(family, level, texts, [getattr(d.truth, level) for d in docs])
            trained.provenance = {"ocr": "ground-truth text (tests)"}
            trained.save(store)
    return store


@pytest.mark.slow
def test_a_tiny_run_writes_the_table_as_json(bench, tiny_store, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CARDFLOW_MODELS", str(tiny_store.root))
    out = tmp_path / "real.json"
    bench.main(["--sets", "mrz_more", "--limit", "2", "--configs", "default", "--workers", "1", "--no-progress",
                "--out", str(out), "--work", str(tmp_path)])
    report = json.loads(out.read_text())
    assert {"git_commit", "batch_size", "sla", "configurations", "sets", "results", "best", "real_images",
            "wall_s"} <= set(report)
    assert [s["name"] for s in report["sets"]] == ["mrz_more"] and len(report["configurations"]) == 1
    assert report["configurations"][0]["why"] == "the pipeline spec's default"
    (result,) = report["results"]
    assert {"documents", "scored", "failures", "mrz_exact", "mrz_exact_share", "mrz_line_exact", "fields_exact",
            "fields_scored", "mrz_valid", "seconds", "within_sla", "per_document"} <= set(result)
    assert result["documents"] == result["scored"] == 2 and 0 <= result["mrz_exact"] <= 2
    assert result["seconds"]["median"] > 0 and report["best"]["mrz_more"] == result["label"]
    assert "mrz_more: 2 documents, 2 with MRZ ground truth" in capsys.readouterr().out


@pytest.mark.slow
def test_a_sweep_over_real_mrz_ground_truth_reports_the_mrz_figures(rendered: Path, tiny_store, tmp_path: Path,
                                                                     monkeypatch) -> None:
    from mlproject.sweep import build_request, run_sweep
    from steps.catalog import default_catalog
    from steps.spec import load_spec

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    catalog = default_catalog(tiny_store)
    request = build_request(catalog=catalog, spec=load_spec(catalog), corpus=rendered, distributions="clean",
                            workers=1, preprocess="channel:gray", ocr="tesseract:lstm-fast-mrz",
                            classify="keywords:l2", extract="mrz-only:v1", name="real", report_root=tmp_path)
    result = run_sweep(request, catalog, progress=False)
    report = (result.report_dir / "report.md").read_text()
    assert "## Real documents: MRZ read exactly, every field right" in report
    assert "real TD3 MRZ strings" in report and "synthetic documents of 5 fictional issuers" not in report
    rows = (result.report_dir / "mrz_real.csv").read_text().splitlines()
    assert rows[0].startswith("configuration,distribution,documents with MRZ,MRZ exact,all fields exact")
    assert len(rows) == 2 and ",clean,3," in rows[1]
