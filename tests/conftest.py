"""Shared fixtures: small corpora generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corpus.generate import GenerateSpec, generate

ROOT = Path(__file__).resolve().parent.parent


def run_notebook(name: str, env: dict[str, str]) -> tuple[str, int]:
    """Execute analysis/<name> as a user would (kernel in the project folder, these environment variables
    set); returns its printed text and how many pictures it showed."""
    import os

    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "analysis" / name, as_version=4)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    return text, sum("image/png" in o.get("data", {}) for o in outputs)
SHARED = ROOT.parent / "shared"
REAL_DEV = SHARED / "data" / "real-dev"
ALL_DISTRIBUTIONS = ("clean", "scan", "phone", "lowlight", "glare", "colorcast", "mixed")


@pytest.fixture(scope="session")
def real_dev() -> Path:
    """../shared/data/real-dev: real ID-document samples, read in place."""
    assert REAL_DEV.is_dir(), f"real-dev samples not found at {REAL_DEV} (../shared must sit beside the clone)"
    return REAL_DEV


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 documents (every issuer x type once) under each of the seven distributions."""
    out = tmp_path_factory.mktemp("corpus") / "small"
    generate(GenerateSpec(out=out, n=15, seed=11, distributions=ALL_DISTRIBUTIONS), workers=2, progress=False)
    return out


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path):
    """A private model store with every classifier family × level trained on the ground-truth text of
    the small corpus (fast, no OCR), so tests do not depend on `cardflow train` having run."""
    from corpus.loaders import load
    from steps.classify import FAMILIES, LEVELS
    from steps.modelstore import ModelStore
    from steps.training import fit

    store = ModelStore(tmp_path_factory.mktemp("models"))
    docs = [d for d in load(small_corpus) if d.truth]
    texts = [" | ".join(d.truth.text_lines) for d in docs]
    for family in FAMILIES:
        for level in LEVELS:
            trained = fit(family, level, texts, [getattr(d.truth, level) for d in docs])
            trained.provenance = {"ocr": "ground-truth text (tests)"}
            trained.save(store)
    return store


_SESSION_EXPERIMENT_ID = os.environ.get("MLFLOW_EXPERIMENT_ID")


@pytest.fixture(autouse=True)
def _no_leaked_mlflow_experiment():
    """`mlflow.set_experiment` exports MLFLOW_EXPERIMENT_ID (MLflow 3): a test (or a module fixture) calling the
    CLI in-process must not hand its experiment id to a later test's `mlflow run` against another store."""
    yield
    if _SESSION_EXPERIMENT_ID is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = _SESSION_EXPERIMENT_ID
