"""`cardflow sweep --search halving`: stage sizes, what the search logs (every configuration: survivors as full
runs, the others as pruned runs that saw fewer documents), that a pruned run's predictions are exactly the
exhaustive run's on the same documents, that it computes less than the exhaustive sweep, that a later sweep
never reuses a pruned run, the report's search section, and bad parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus.generate import GenerateSpec, generate
from mlproject.sweep.halving import stage_sizes
from steps.modelstore import ModelStore
from tests.conftest import run_notebook
from tests.test_sweep import _cli, _client, _predictions, _runs

GRID = {"preprocess": "channel:gray,channel:red,otsu:gray", "ocr": "tesseract:lstm-fast",
        "classify": "tfidf-logreg:l2,keywords:l2", "extract": "mrz-first:v1,label-rules:v1"}  # 12 configurations


@pytest.mark.parametrize(("n", "first", "eta", "batch", "sizes"), [
    (30, 4, 3, 4, [4, 12, 30]), (12, 2, 3, 2, [2, 6, 12]), (12, 3, 3, 2, [4, 12]), (5, 8, 3, 2, [5]),
    (100, 1, 2, 1, [1, 2, 4, 8, 16, 32, 64, 100])])
def test_stage_sizes_grow_by_eta_in_whole_batches_up_to_the_corpus(n, first, eta, batch, sizes) -> None:
    assert stage_sizes(n, first, eta, batch) == sizes


@pytest.fixture(scope="module")
def search_env(tmp_path_factory: pytest.TempPathFactory, trained_store: ModelStore):
    root = tmp_path_factory.mktemp("search")
    corpus = root / "corpus"
    generate(GenerateSpec(corpus, 6, 21, ("clean", "phone")), workers=1, progress=False)
    import os

    env = {**os.environ, "CARDFLOW_MODELS": str(trained_store.root)}
    return {"root": root, "corpus": corpus, "env": env}


def _args(corpus: Path, root: Path, name: str, *extra: str, grid: dict | None = None) -> list[str]:
    args = ["sweep", "--corpus", str(corpus), "--batch-size", "2", "--workers", "2", "--name", name,
            "--reports", str(root / "reports"), "--latency-repeats", "0", *extra]
    for step, value in (grid or GRID).items():
        args += [f"--{step}", value]
    return args


@pytest.mark.slow
def test_halving_logs_every_configuration_and_prunes_on_fewer_documents(search_env) -> None:
    root, corpus = search_env["root"], search_env["corpus"]
    env = {**search_env["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'search.db'}"}
    out = _cli(*_args(corpus, root, "halving", "--search", "halving", "--search-eta", "3", "--search-first-docs", "2"),
               env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    client = _client(env)
    parent = _runs(client, "sweep")[0]
    runs = _runs(client, "config-run")
    assert len(runs) == 24  # every configuration × distribution is a run
    by_state: dict[str, list] = {}
    for run in runs:
        by_state.setdefault(run.data.tags["cardflow.search"], []).append(run)
    # stages 2, 6 documents: 12 → 4 per distribution; the 4 survivors saw all 6 documents
    assert len(by_state["survivor"]) == 8 and len(by_state["pruned"]) == 16
    for run in by_state["pruned"]:
        assert run.data.tags["cardflow.search_stage"] == "0" and run.data.params["documents"] == "2"
        assert run.data.metrics["documents"] == 2
    for run in by_state["survivor"]:
        assert run.data.tags["cardflow.search_stage"] == "1" and run.data.params["documents"] == "6"
        ranks = run.data.tags["cardflow.search_ranks"].split(",")
        assert len(ranks) == 2 and all(1 <= int(r) <= 12 for r in ranks)
    manifest = json.loads(Path(client.download_artifacts(parent.info.run_id, "sweep.json")).read_text())
    assert {(r["config_id"], r["distribution"]) for r in manifest["runs"]} == {
        (r.data.params["config_id"], r.data.params["distribution"]) for r in by_state["survivor"]}
    assert len(manifest["search"]["pruned"]) == 16
    for dist in ("clean", "phone"):
        stages = manifest["search"]["stages"][dist]
        assert [(s["documents"], s["evaluated"], s["kept"]) for s in stages] == [(2, 12, 4), (6, 4, 4)]
        assert manifest["search"]["winner_ranks"][dist][-1] == 1
    assert "search halving, clean: 12 on 2 docs → 4 on 6 docs" in out.stdout
    report = (root / "reports" / "halving" / "report.md").read_text()
    assert "## The search" in report and (root / "reports" / "halving" / "search.png").is_file()
    assert "The 16 pruned (configuration, distribution) pairs are runs too" in report
    halving_work = parent.data.metrics["step_computations"]
    text, pictures = run_notebook("milestone1.ipynb", {"MLFLOW_TRACKING_URI": env["MLFLOW_TRACKING_URI"],
                                                       "CARDFLOW_SWEEP_RUN_ID": parent.info.run_id})
    assert pictures == 3 and "winner's rank" in text and "This sweep was exhaustive" not in text

    # The exhaustive sweep of the same grid on its own store: a pruned run's predictions are the exhaustive run's
    # first documents exactly, a survivor's all of them; the exhaustive sweep computed more.
    full_env = {**search_env["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'full.db'}"}
    full = _cli(*_args(corpus, root, "exhaustive"), env=full_env)
    assert full.returncode == 0, full.stderr[-3000:]
    full_client = _client(full_env)
    exhaustive = {(r.data.params["config_id"], r.data.params["distribution"]): r
                  for r in _runs(full_client, "config-run")}
    assert len(exhaustive) == 24
    for run in runs:
        key = (run.data.params["config_id"], run.data.params["distribution"])
        seen = _predictions(client, run)
        assert seen == _predictions(full_client, exhaustive[key])[: len(seen)], key
        if run.data.tags["cardflow.search"] == "survivor":
            assert run.data.metrics["accuracy"] == exhaustive[key].data.metrics["accuracy"]
    full_parent = _runs(full_client, "sweep")[0]
    assert halving_work < full_parent.data.metrics["step_computations"]
    for dist in ("clean", "phone"):  # on this small grid the search finds the exhaustive best's accuracy
        best = max(r.data.metrics["accuracy"] for (c, d), r in exhaustive.items() if d == dist)
        found = max(r.data.metrics["accuracy"] for r in by_state["survivor"] if r.data.params["distribution"] == dist)
        assert found >= best - 0.01, dist

    # In the halving's experiment, an exhaustive sweep reuses the survivors' runs and recomputes the pruned ones.
    again = _cli(*_args(corpus, root, "after"), env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "sweep: 16 runs logged, 8 already finished (skipped)" in again.stdout


def test_bad_search_parameters_name_the_parameter(search_env, tmp_path: Path) -> None:
    env = {**search_env["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'bad.db'}"}
    corpus = search_env["corpus"]
    for extra, message in [(["--search", "random"], "parameter search: 'random' is not one of exhaustive, halving"),
                           (["--search", "halving", "--search-eta", "1"], "parameter search_eta: '1' must be at least 2"),
                           (["--search-eta", "3"], "only used with search halving"),
                           (["--search", "halving", "--search-first-docs", "0"], "search_first_docs")]:
        out = _cli(*_args(corpus, tmp_path, "bad", *extra), env=env)
        assert out.returncode == 2 and message in out.stderr, (extra, out.stderr[-500:])
        assert "Traceback" not in out.stderr


def test_survivors_come_from_the_best_prefixes() -> None:
    from mlproject.sweep.halving import keep

    order = [f"p/{a}|o/x|c/{c}|e/1" for a, c in [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("b", 2), ("c", 2),
                                                 ("a", 3), ("b", 3), ("c", 3)]]
    # 3 prefixes → the best 1 (a, whose best ranks first); 9 configurations → 3, all under a
    assert keep(order, 3) == ["p/a|o/x|c/1|e/1", "p/a|o/x|c/2|e/1", "p/a|o/x|c/3|e/1"]
    # eta 2: prefixes a, b; 5 configurations in rank order from them
    assert keep(order, 2) == ["p/a|o/x|c/1|e/1", "p/b|o/x|c/1|e/1", "p/a|o/x|c/2|e/1", "p/b|o/x|c/2|e/1",
                              "p/a|o/x|c/3|e/1"]
