"""The `cardflow` command and the MLproject entry points, run as a user runs them (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlproject.cli import build_parser
from mlproject.envfiles import check_conda_yaml
from tests.conftest import ROOT

CARDFLOW = [sys.executable, "-m", "mlproject.cli"]


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*CARDFLOW, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def _subcommand_paths() -> list[list[str]]:
    """Every (sub)command path of the parser, so that a new command cannot ship without --help."""
    import argparse

    paths: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    paths.append([*prefix, name])
                    walk(child, [*prefix, name])

    walk(build_parser(), [])
    return paths


def test_help_on_every_subcommand() -> None:
    paths = _subcommand_paths()
    assert ["corpus", "generate"] in paths and ["demo"] in paths
    for path in [[], *paths]:
        result = _run(*path, "--help")
        assert result.returncode == 0, (path, result.stderr)
        assert "usage: cardflow" in result.stdout


def test_the_installed_console_script_works() -> None:
    script = Path(sys.executable).parent / "cardflow"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "corpus" in result.stdout


def test_generate_then_info_show_and_stats(tmp_path: Path) -> None:
    out = tmp_path / "c"
    result = _run("corpus", "generate", "--out", str(out), "--n", "3", "--seed", "2", "--distribution", "clean,glare",
                  "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "corpus: 6 documents (clean, glare)" in result.stdout
    info = _run("corpus", "info", str(out), "--verify")
    assert info.returncode == 0 and "format cardflow, 6 documents" in info.stdout and "clean: 3" in info.stdout
    sheet = tmp_path / "sheet.png"
    assert _run("corpus", "show", str(out), "--out", str(sheet)).returncode == 0
    assert sheet.stat().st_size > 10_000
    stats = _run("corpus", "stats", str(out), "--sample", "3")
    assert stats.returncode == 0 and "brightness" in stats.stdout and "glare" in stats.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["corpus", "generate", "--out", "X", "--distribution", "clean,fog"], "unknown distribution 'fog'; valid: clean"),
        (["corpus", "generate", "--out", "X", "--n", "0"], "--n: must be positive, got '0'"),
        (["corpus", "generate", "--out", "X", "--n", "2.5"], "--n: expected an integer, got '2.5'"),
        (["corpus", "info", "does/not/exist"], "does/not/exist"),
        (["corpus", "show", "does/not/exist", "--out", "x.png"], "does/not/exist"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(tmp_path / a) if a == "X" else a for a in args]
    result = _run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "X").exists()


def test_conda_yaml_is_in_step_with_pyproject() -> None:
    assert check_conda_yaml() == []
    result = _run("env-files", "--check")
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_mlflow_run_generate_entry_point(tmp_path: Path) -> None:
    """`mlflow run . -e generate --env-manager local -P …` against the embedded sqlite store."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # As a user runs it: in the activated environment (MLproject commands call `python`).
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = tmp_path / "corpus"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "run", ".", "-e", "generate", "--env-manager", "local",
         "-P", f"out={out}", "-P", "n=2", "-P", "distributions=clean,phone", "-P", "workers=1"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "corpus.json").is_file()
    mlflow.set_tracking_uri(uri)
    runs = MlflowClient().search_runs(experiment_ids=["0"])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["n"] == "2" and run.data.params["distributions"] == "clean,phone"
    assert run.data.metrics["documents"] == 4
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert {"corpus.json", "corpus-sheet.png"} <= artifacts


@pytest.mark.slow
def test_mlflow_run_train_entry_point(tmp_path: Path) -> None:
    """`mlflow run . -e train`: OCR text of a corpus → classifiers in the model store + metrics and ONNX in MLflow."""
    from mlflow.tracking import MlflowClient

    from corpus.generate import GenerateSpec, generate

    corpus = tmp_path / "train"
    generate(GenerateSpec(corpus, 30, 99, ("clean",)), workers=2, progress=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CARDFLOW_MODELS": str(tmp_path / "models"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "run", ".", "-e", "train", "--env-manager", "local",
         "-P", f"corpus={corpus}", "-P", "workers=2"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    import mlflow

    mlflow.set_tracking_uri(uri)
    run = MlflowClient().search_runs(experiment_ids=["0"])[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["effective.ocr"] == "ocr/tesseract:lstm-fast" or run.data.params["ocr"] == "ocr/tesseract:lstm-fast"
    for family in ("tfidf-logreg", "tfidf-nb", "tfidf-svm"):
        for level in ("l1", "l2"):
            assert run.data.metrics[f"{family}.{level}.onnx_sklearn_agreement"] == 1.0
            assert (tmp_path / "models" / "classify" / f"{family}-{level}" / "model.onnx").is_file()
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "classifiers")}
    assert "classifiers/tfidf-logreg-l2" in artifacts


@pytest.mark.parametrize("command", [["sweep"], ["run-config"], ["profile"], ["train"]])
def test_a_tracking_server_that_does_not_answer_is_unavailable_before_any_work(tmp_path: Path, command: list[str]) -> None:
    """Exit 4 (Unavailable in the error table) naming the URI, at once: no corpus generated, nothing trained."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "CARDFLOW_MODELS": str(tmp_path / "models")}
    result = subprocess.run([*CARDFLOW, *command], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 4, result.stderr[-2000:]
    assert "cannot reach the MLflow tracking server at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()


def test_predict_starts_without_mlflow_or_scikit_learn() -> None:
    # `cardflow predict` with trained classifiers needs neither; importing them cost ~2.4 s of its start-up
    # (3.0 s → 0.6 s), which a folder of 41 documents pays per document as 0.06 s.
    code = "import sys, mlproject.predict; print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'sklearn'}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
