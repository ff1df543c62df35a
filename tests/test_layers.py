"""The layers look only down (pyproject.toml [tool.importlinter]): the contracts hold on the code, and a
deliberately added back-up import — even one hidden inside a function — breaks them (the check can fail)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("common", "corpus", "steps", "tracking", "registry", "analysis", "mlproject", "serving")
LINT = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=cwd, capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    """The packages and the contracts, in a folder of their own (the change below must not touch the tree)."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layer_contracts_hold() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_a_back_up_import_inside_a_function_breaks_the_layers(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    assert _lint(tree).returncode == 0  # the copy is as clean as the tree
    base = tree / "steps" / "base.py"
    base.write_text(base.read_text() + "\n\ndef _sneaky():\n    from mlproject.cli import main\n\n    return main\n")
    done = _lint(tree)
    assert done.returncode != 0
    assert "Layers look only down" in done.stdout and "BROKEN" in done.stdout
    assert "steps.base -> mlproject.cli" in done.stdout


def test_a_step_reading_the_generator_breaks_the_records_only_rule(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    ocr = tree / "steps" / "ocr.py"
    ocr.write_text(ocr.read_text() + "\n\ndef _issuers():\n    from corpus.issuers import ISSUERS\n\n    return ISSUERS\n")
    done = _lint(tree)
    assert done.returncode != 0 and "steps.ocr -> corpus.issuers" in done.stdout


def test_mlflow_below_the_edge_breaks_the_purity_rule(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    scoring = tree / "steps" / "scoring.py"
    scoring.write_text(scoring.read_text() + "\n\ndef _log():\n    import mlflow\n\n    return mlflow\n")
    done = _lint(tree)
    assert done.returncode != 0 and "steps.scoring -> mlflow" in done.stdout
