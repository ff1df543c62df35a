"""Behaviour pinned across refactors: a fixed small sweep and a `cardflow predict` give exactly the predictions
and accuracy metrics recorded in tests/fixtures/golden.json (latencies, throughput and SLA verdicts excepted:
they are measurements, not behaviour).

The fixture was recorded from the code before the "one shape" refactor (issue 10). To record it again after
a change that is *meant* to change behaviour: `CARDFLOW_RECORD_GOLDEN=1 pytest tests/test_golden.py`, and say
why in the commit.

Only the command line and the MLflow client are used, so the test does not depend on internal names.

Class scores are compared within a tolerance, not bit for bit: the classifiers are trained by the test session
(tests/conftest.py), and the same fit gives scores a few 1e-4 apart on CPUs with other vector units (BLAS
kernels), while the labels, fields and metrics are exactly the same. Re-recorded for that (sweep fixture format:
the scores out of the digest, a per-document summary of them beside it), with every metric unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.generate import GenerateSpec, generate
from tests.conftest import REAL_DEV, ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "golden.json"
RECORD = os.environ.get("CARDFLOW_RECORD_GOLDEN") == "1"
GRID = {"preprocess": "channel:gray,otsu:gray,rectify:gray", "ocr": "tesseract:lstm-fast,tesseract:lstm-fast-mrz",
        "classify": "tfidf-logreg:l2,tfidf-svm:l1,keywords:l2", "extract": "mrz-first:v1,label-rules:v1,mrz-only:v1"}
# Measurements, not behaviour: never part of the golden.
MEASURED = re.compile(r"^(latency_ms\.|step\.[a-z]+\.latency_ms\.|throughput_docs_s|cpu_utilisation|peak_rss_mb|"
                      r"sla_met|sla\.|load\.|cpu_ms_per_doc|latency_measurements|latency_settled)")
PREDICTION_KEYS = ("doc_id", "distribution", "classification", "extraction", "ocr_text", "ocr_confidence", "failure",
                   "assertions", "truth_l2")


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlproject.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=1800)


def _content(row: dict) -> dict:
    """What a prediction says (no latencies, no paths that depend on where the test runs)."""
    out = {key: row.get(key) for key in PREDICTION_KEYS if key in row}
    if out.get("failure"):  # the reason may name a temporary path
        out["failure"] = {k: v for k, v in out["failure"].items() if k != "reason"}
    return out


SCORES = ("l1_scores", "l2_scores")
SCORE_TOLERANCE = 0.005  # a few 1e-4 per score, summed over up to a few dozen scores


def _flat(scores: dict) -> list[float]:
    return [v for k in sorted(scores) for v in (_flat(scores[k]) if isinstance(scores[k], dict) else [scores[k]])]


def _without_scores(row: dict) -> dict:
    classification = row.get("classification")
    if not isinstance(classification, dict):
        return row
    return {**row, "classification": {k: v for k, v in classification.items() if k not in SCORES}}


def _score_summary(row: dict) -> list[float]:
    """Per document: the top l1 score, the top l2 score and the sum of all scores."""
    classification = row.get("classification") or {}
    l1, l2 = (_flat(classification.get(k) or {}) for k in SCORES)
    return [round(max(l1, default=0), 4), round(max(l2, default=0), 4), round(sum(l1) + sum(l2), 4)]


def _close(got: list, want: list) -> bool:
    return len(got) == len(want) and all(abs(a - b) <= SCORE_TOLERANCE for a, b in zip(got, want, strict=True))


def _digest(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@pytest.fixture(scope="module")
def golden_env(tmp_path_factory: pytest.TempPathFactory, trained_store) -> dict:
    root = tmp_path_factory.mktemp("golden")
    corpus = root / "corpus"
    generate(GenerateSpec(corpus, 3, 31, ("clean", "phone")), workers=1, progress=False)
    env = {**os.environ, "CARDFLOW_MODELS": str(trained_store.root), "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    env.pop("MLFLOW_RUN_ID", None)
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    return {"root": root, "corpus": corpus, "env": env}


def _sweep_observed(golden_env: dict) -> dict:
    args = ["sweep", "--corpus", str(golden_env["corpus"]), "--workers", "2", "--batch-size", "2", "--name", "golden",
            "--reports", str(golden_env["root"] / "reports")]
    for step, value in GRID.items():
        args += [f"--{step}", value]
    done = _cli(*args, env=golden_env["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(golden_env["env"]["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("cardflow-sweep")
    runs = client.search_runs([experiment.experiment_id], "tags.`cardflow.kind` = 'config-run'", max_results=1000)
    observed = {}
    for run in runs:
        key = f"{run.data.tags['cardflow.config_id']} @ {run.data.tags['cardflow.distribution']}"
        path = client.download_artifacts(run.info.run_id, "predictions.jsonl")
        rows = [_content(json.loads(line)) for line in Path(path).read_text(encoding="utf-8").splitlines()]
        metrics = {k: round(v, 9) for k, v in sorted(run.data.metrics.items()) if not MEASURED.match(k)}
        observed[key] = {"metrics": metrics, "predictions_sha256": _digest([_without_scores(r) for r in rows]),
                         "scores": [_score_summary(r) for r in rows]}
    return observed


def _predict_observed(golden_env: dict) -> list[dict]:
    out = golden_env["root"] / "predictions.jsonl"
    done = _cli("predict", str(golden_env["corpus"]), str(REAL_DEV / "passporteye_testdata"), "--out", str(out),
                env=golden_env["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    return [_content(json.loads(line)) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_sweep_and_predict_match_the_recorded_golden(golden_env) -> None:
    observed = {"sweep": _sweep_observed(golden_env), "predict": _predict_observed(golden_env)}
    if RECORD:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(observed, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        pytest.skip(f"recorded {FIXTURE}")
    golden = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert len(observed["sweep"]) == 54 * 2 == len(golden["sweep"])
    assert set(observed["sweep"]) == set(golden["sweep"])
    for key, want in golden["sweep"].items():
        got = observed["sweep"][key]
        assert got["metrics"] == want["metrics"], key
        assert got["predictions_sha256"] == want["predictions_sha256"], key
        assert all(_close(g, w) for g, w in zip(got["scores"], want["scores"], strict=True)), (key, got["scores"])
    assert len(observed["predict"]) == len(golden["predict"])
    for got, want in zip(observed["predict"], golden["predict"], strict=True):
        assert _without_scores(got) == _without_scores(want), got["doc_id"]
        for level in SCORES:
            scores = ((got.get("classification") or {}).get(level) or {}, (want.get("classification") or {}).get(level) or {})
            assert _close(*map(_flat, scores)), (got["doc_id"], level)
