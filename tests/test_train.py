"""Classifiers trained on first use (mlproject.train.ensure_trained): once, when two processes ask at the same
time — the second waits for the first and finds the models — and recorded as one run in cardflow-train."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.generate import GenerateSpec, generate
from tests.conftest import ROOT

SCRIPT = """
import sys
from pathlib import Path
from mlproject.context import Context
from mlproject.train import ensure_trained
ctx = Context()
trained = ensure_trained(ctx.catalog, ["classify/tfidf-logreg:l2", "classify/keywords:l2"], workers=1,
                         corpus=Path(sys.argv[1]))
ctx.catalog.get("classify/tfidf-logreg:l2").load()
print("TRAINED" if trained else "FOUND")
"""


@pytest.mark.slow
def test_two_processes_asking_at_once_train_once(tmp_path: Path) -> None:
    corpus = tmp_path / "train-corpus"
    generate(GenerateSpec(corpus, 8, 5, ("clean",)), workers=1, progress=False)
    env = {**os.environ, "CARDFLOW_MODELS": str(tmp_path / "models"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("MLFLOW_RUN_ID", None)
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(corpus)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    assert sorted(out.strip().splitlines()[-1] for out, _ in outs) == ["FOUND", "TRAINED"]
    trainer_err = next(err for out, err in outs if out.strip().endswith("TRAINED"))
    assert "are not trained yet: training every classifier now, once" in trainer_err
    assert (tmp_path / "models" / "classify" / "tfidf-svm-l1" / "model.onnx").is_file()  # every family and level

    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("cardflow-train")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.params["corpus"] == str(corpus)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    again = subprocess.run([sys.executable, "-c", SCRIPT, str(corpus)], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.stdout.strip().endswith("FOUND") and "not trained yet" not in again.stderr
