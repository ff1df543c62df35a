"""The sweep: nested runs and metrics, resume, reuse honesty, determinism across workers, bad parameters,
Ctrl-C, a real `mlflow server`, the report and the notebook.

Classifiers are trained here on the ground-truth text of a small corpus (fast, no OCR) into a model
store of the test session's own (CARDFLOW_MODELS), so these tests do not depend on `cardflow train`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus.generate import GenerateSpec, generate
from corpus.loaders import load
from steps.catalog import Configuration, default_catalog
from steps.modelstore import ModelStore
from steps.runner import evaluate_batch
from tests.conftest import ROOT, run_notebook

GRID = {"preprocess": "channel:gray,channel:red", "ocr": "tesseract:lstm-fast",
        "classify": "tfidf-logreg:l2,keywords:l2", "extract": "mrz-first:v1"}
REQUIRED_METRICS = {"accuracy", "assertions_passed", "assertions_total", "l1_accuracy", "l2_accuracy", "cer",
                    "assert.class_l1", "assert.class_l2", "assert.mrz_valid", "field.document_number.exact",
                    "latency_ms.p50", "latency_ms.p95", "latency_ms.p99", "step.ocr.latency_ms.p95",
                    "step.preprocess.latency_ms.p50", "step.classify.latency_ms.p99", "step.extract.latency_ms.p95",
                    "throughput_docs_s", "sla_met", "cpu_utilisation", "peak_rss_mb"}


@pytest.fixture(scope="module")
def sweep_env(tmp_path_factory: pytest.TempPathFactory, trained_store: ModelStore):
    """A corpus (3 documents × clean, phone), the session's trained classifiers, and an environment
    pointing CardFlow and MLflow at them."""
    root = tmp_path_factory.mktemp("sweep")
    corpus = root / "corpus"
    generate(GenerateSpec(corpus, 3, 5, ("clean", "phone")), workers=1, progress=False)
    store = trained_store
    env = {"CARDFLOW_MODELS": str(store.root), "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield {"root": root, "corpus": corpus, "env": {**os.environ, **env}}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _cli(*args: str, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlproject.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


def _sweep_args(corpus: Path, reports: Path, name: str, workers: int = 2) -> list[str]:
    args = ["sweep", "--corpus", str(corpus), "--workers", str(workers), "--batch-size", "2", "--name", name,
            "--reports", str(reports)]
    for step, value in GRID.items():
        args += [f"--{step}", value]
    return args


def _client(env: dict):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    return MlflowClient()


def _runs(client, kind: str) -> list:
    experiment = client.get_experiment_by_name("cardflow-sweep")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], f"tags.`cardflow.kind` = '{kind}'", max_results=1000)


@pytest.mark.slow
def test_sweep_runs_every_configuration_then_resumes(sweep_env) -> None:
    env, reports = sweep_env["env"], sweep_env["root"] / "reports"
    first = _cli(*_sweep_args(sweep_env["corpus"], reports, "t1"), env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "sweep: 8 runs logged, 0 already finished" in first.stdout
    client = _client(env)
    nested = _runs(client, "config-run")
    assert len(nested) == 8  # 2 × 1 × 2 × 1 configurations × 2 distributions
    parents = _runs(client, "sweep")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    for run in nested:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert set(run.data.metrics) >= REQUIRED_METRICS, REQUIRED_METRICS - set(run.data.metrics)
        assert {"preprocess", "ocr.version", "corpus_manifest_sha256", "distribution", "batch_size", "workers",
                "cores", "sla_ms", "git_commit", "pkg.tesserocr"} <= set(run.data.params)
        assert run.info.run_name.endswith(("@ clean", "@ phone")) and "tesseract:lstm-fast" in run.info.run_name
        assert 0.0 <= run.data.metrics["accuracy"] <= 1.0 and run.data.metrics["documents"] == 3
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {
            "predictions.jsonl", "step_latency.csv", "confusion_l2.png"}
        means = {s: run.data.metrics[f"step.{s}.latency_ms.mean"] for s in ("preprocess", "ocr", "classify", "extract")}
        assert run.data.tags["cardflow.most_expensive_step"] == max(means, key=means.get)
    report = (reports / "t1" / "report.md").read_text()
    for run in nested:  # in the tables, each label's '|' escaped so that markdown keeps the columns
        assert run.data.tags["cardflow.config_label"].replace("|", "\\|") in report
    assert not re.search(r"^\|[^\n]*[^\\]\| tesseract:", report, re.MULTILINE)  # no bare '|' inside a label
    assert "**24** configurations are possible" not in report  # the number comes from the catalog
    catalog = default_catalog()
    possible = 1
    for step in ("preprocess", "ocr", "classify", "extract"):
        possible *= len(catalog.ids(step))
    assert f"**{possible}** configurations are possible" in report and "= **8** runs" in report
    assert (reports / "t1" / "report.html").is_file() and (reports / "t1" / "accuracy_vs_latency.png").is_file()
    assert "## Where the time goes" in report and "The most expensive step is **ocr**" in report
    assert (reports / "t1" / "step_breakdown.png").is_file()
    assert {a.path for a in client.list_artifacts(parents[0].info.run_id)} >= {"sweep.json", "report"}
    # latency: an interval and a verdict on every run; the Pareto-front runs of each distribution timed again
    for run in nested:
        m, tags = run.data.metrics, run.data.tags
        assert m["latency_ms.p95_ci_low"] <= m["latency_ms.p95"] <= m["latency_ms.p95_ci_high"]
        assert tags["cardflow.sla_verdict"] in ("met", "uncertain", "missed")
        assert tags["cardflow.latency_measurements"] == str(int(m["latency_measurements"]))
        assert 0.0 <= m["load.other_cpu_share"] <= 1.0 and m["cpu_ms_per_doc"] > 0
    for dist in ("clean", "phone"):
        assert any(r.data.metrics["latency_measurements"] >= 2 for r in nested
                   if r.data.tags["cardflow.distribution"] == dist)
    assert "p95 95% interval" in report and "| SLA " in report and "re-measured" in report
    assert re.search(r"^latency: \d+ runs \(uncertain or on a Pareto front\) re-measured", first.stdout, re.MULTILINE)

    again = _cli(*_sweep_args(sweep_env["corpus"], reports, "t1"), env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "sweep: 0 runs logged, 8 already finished (skipped)" in again.stdout
    assert len(_runs(client, "config-run")) == 8


@pytest.mark.slow
def test_reuse_gives_the_same_predictions_as_no_reuse(sweep_env) -> None:
    catalog = default_catalog()
    docs = [d for d in load(sweep_env["corpus"]) if d.distribution == "phone"]
    configs = [Configuration("preprocess/channel:gray", "ocr/tesseract:lstm-fast", c, e)
               for c in ("classify/tfidf-logreg:l2", "classify/keywords:l2")
               for e in ("extract/mrz-first:v1", "extract/label-rules:v1")]
    shared = evaluate_batch(catalog, docs, configs)
    assert len([k for k in shared.nodes if k.count("|") == 1]) == 1  # one OCR computation for four configurations
    for config in configs:
        alone = evaluate_batch(catalog, docs, [config]).outcomes[config.id]
        for a, b in zip(shared.outcomes[config.id], alone, strict=True):
            assert a.extraction.to_json() == b.extraction.to_json()
            assert a.classification.to_json() == b.classification.to_json()
            assert a.ocr.text == b.ocr.text


def _predictions(client, run) -> list[dict]:
    path = client.download_artifacts(run.info.run_id, "predictions.jsonl")
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    for row in rows:
        for key in ("latency_ms", "end_to_end_ms"):
            row.pop(key)
    return rows


@pytest.mark.parametrize(("batch_size", "workers", "chunks"), [(1, 2, 3), (2, 2, 2), (2, 1, 1), (4, 2, 1)])
def test_tasks_cover_each_group_once_in_whole_batches(sweep_env, batch_size: int, workers: int, chunks: int) -> None:
    """4 groups (2 distributions × 2 preprocessing variants) of 3 documents: with 2 workers each group is cut
    into as many chunks as it has batches (up to 8 tasks per worker), never splitting a batch."""
    from mlproject.sweep import build_request, plan_tasks
    from steps.spec import load_spec

    catalog = default_catalog()
    req = build_request(catalog=catalog, spec=load_spec(catalog), corpus=sweep_env["corpus"], distributions=None,
                        batch_size=batch_size, workers=workers, **GRID)
    todo = {dist: req.configurations for dist in req.distributions}
    tasks = plan_tasks(req, todo)
    groups = {(t.group) for t in tasks}
    assert groups == {(d, p) for d in ("clean", "phone") for p in ("preprocess/channel:gray", "preprocess/channel:red")}
    for group in groups:
        mine = [t for t in tasks if t.group == group]
        assert [t.chunk for t in mine] == list(range(chunks))
        assert all(len(t.docs) % batch_size == 0 for t in mine[:-1])
        expected = [d.doc_id for d in req.corpus if d.distribution == group[0]]
        assert [d.doc_id for t in mine for d in t.docs] == expected
        assert all(set(t.config_ids) == {c.id for c in req.configurations if c.preprocess == group[1]} for t in mine)


@pytest.mark.slow
def test_one_and_two_workers_give_identical_results(sweep_env, tmp_path: Path) -> None:
    outputs = []
    for workers in (1, 2):
        env = {**sweep_env["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / f'w{workers}.db'}"}
        result = _cli(*_sweep_args(sweep_env["corpus"], tmp_path / f"r{workers}", "w", workers), env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        client = _client(env)
        outputs.append({(r.data.tags["cardflow.config_id"], r.data.tags["cardflow.distribution"]):
                        (_predictions(client, r), r.data.metrics["accuracy"]) for r in _runs(client, "config-run")})
    assert outputs[0] == outputs[1] and len(outputs[0]) == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--ocr", "tesseract:nope"], "parameter ocr: unknown ocr variant 'tesseract:nope'; valid: ocr/tesseract:lstm-fast"),
        (["--batch-size", "0"], "parameter batch_size must be positive, got '0'"),
        (["--corpus", "/no/such/corpus"], "parameter corpus: /no/such/corpus does not exist"),
        (["--distributions", "fog"], "parameter distributions: corpus"),
        (["--workers", "two"], "parameter workers: expected a number, got 'two'"),
    ],
)
def test_bad_parameters_are_refused_before_any_run(sweep_env, tmp_path: Path, change: list[str], message: str) -> None:
    env = {**sweep_env["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'bad.db'}"}
    args = _sweep_args(sweep_env["corpus"], tmp_path / "r", "bad")
    for k in range(0, len(change), 2):
        if change[k] in args:
            args[args.index(change[k]) + 1] = change[k + 1]
        else:
            args += [change[k], change[k + 1]]
    result = _cli(*args, env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "bad.db").exists() or not _runs(_client(env), "config-run")


@pytest.mark.slow
def test_ctrl_c_ends_runs_as_killed_and_a_rerun_finishes_the_rest(sweep_env, tmp_path: Path) -> None:
    env = {**sweep_env["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'int.db'}"}
    args = _sweep_args(sweep_env["corpus"], tmp_path / "r", "interrupted", workers=1)
    # The legacy engine (~1.5 s a page) leaves seconds between the first distribution's runs and the end.
    args[args.index("--ocr") + 1] = "tesseract:legacy"
    client = _client(env)
    client.search_experiments()  # create the database here, so two processes never migrate it at once
    process = subprocess.Popen([sys.executable, "-m", "mlproject.cli", *args], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline:  # wait for the first distribution's runs, then interrupt the second
        time.sleep(0.5)
        if len(_runs(client, "config-run")) >= 4:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    statuses = [r.info.status for r in _runs(client, "config-run") + _runs(client, "sweep")]
    assert "RUNNING" not in statuses
    assert _runs(client, "sweep")[0].info.status == "KILLED"
    done = sum(r.info.status == "FINISHED" for r in _runs(client, "config-run"))
    assert 1 <= done < 8
    rerun = _cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{8 - done} runs logged, {done} already finished (skipped)" in rerun.stdout
    assert sum(r.info.status == "FINISHED" for r in _runs(client, "config-run")) == 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_mlflow_run_sweep_against_a_real_tracking_server(sweep_env, tmp_path: Path) -> None:
    """`mlflow run . -e sweep` with MLFLOW_TRACKING_URI=http://… of an `mlflow server` process on 127.0.0.1."""
    import urllib.request

    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
         str(tmp_path / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        env = {**sweep_env["env"], "MLFLOW_TRACKING_URI": url,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        params = [f"corpus={sweep_env['corpus']}", "distributions=clean", "batch_size=3", "workers=1",
                  "preprocess=channel:gray", "ocr=tesseract:lstm-fast", "classify=tfidf-logreg:l2,keywords:l2",
                  "extract=mrz-first:v1"]
        command = [str(Path(sys.executable).parent / "mlflow"), "run", ".", "-e", "sweep", "--env-manager", "local",
                   "--experiment-name", "cardflow-sweep"]
        for param in params:
            command += ["-P", param]
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        client = _client(env)
        nested = _runs(client, "config-run")
        assert len(nested) == 2 and all(r.info.status == "FINISHED" for r in nested)
        parent = client.get_run(nested[0].data.tags["mlflow.parentRunId"])
        assert parent.info.status == "FINISHED" and parent.data.params["grid.classify"].count(",") == 1
        local = client.download_artifacts(nested[0].info.run_id, "predictions.jsonl", str(tmp_path))
        assert len(Path(local).read_text().splitlines()) == 3
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_run_config_logs_one_run(sweep_env, tmp_path: Path) -> None:
    env = {**sweep_env["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'rc.db'}"}
    result = _cli("run-config", "--corpus", str(sweep_env["corpus"]), "--distribution", "clean", "--workers", "1",
                  "--preprocess", "channel:red", "--ocr", "tesseract:lstm-fast", "--classify", "keywords:l2",
                  "--extract", "label-rules:v1", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _runs(_client(env), "config-run")
    assert len(runs) == 1 and "mlflow.parentRunId" not in runs[0].data.tags
    assert runs[0].data.params["preprocess"] == "preprocess/channel:red"
    assert "step_breakdown.png" in {a.path for a in _client(env).list_artifacts(runs[0].info.run_id)}
    assert runs[0].data.tags["cardflow.most_expensive_step"] == "ocr"
    assert re.search(r"^  ocr +[0-9.]+ ms/doc +[0-9.]+%  ← most expensive$", result.stdout, re.MULTILINE), result.stdout
    refused = _cli("run-config", "--corpus", str(sweep_env["corpus"]), "--ocr", "tesseract:lstm-fast,tesseract:legacy",
                   env=env)
    assert refused.returncode == 2 and "run-config takes one variant" in refused.stderr


@pytest.mark.slow
def test_run_config_without_steps_runs_the_default_configuration_once(sweep_env, tmp_path: Path) -> None:
    """No step given: one configuration (the spec's default for every step) on one distribution — not the grid —
    from the CLI and from `mlflow run . -e run_config`."""
    from steps.spec import load_spec

    default = load_spec(default_catalog()).default
    env = {**sweep_env["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'rc0.db'}"}
    result = _cli("run-config", "--corpus", str(sweep_env["corpus"]), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _runs(_client(env), "config-run")
    assert len(runs) == 1
    assert {s: runs[0].data.params[s] for s in ("preprocess", "ocr", "classify", "extract")} == default.as_dict()
    assert runs[0].data.tags["cardflow.distribution"] == "clean"  # the corpus's first distribution
    assert f"{default.id} @ clean" in result.stdout
    assert "accuracy" in runs[0].data.tags["mlflow.note.content"]
    env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'rc1.db'}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "mlflow", "run", ".", "-e", "run_config", "--env-manager", "local",
                           "-P", f"corpus={sweep_env['corpus']}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    client = _client(env)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "tags.`cardflow.kind` = 'config-run'")  # `mlflow run` logs in its own experiment
    assert len(runs) == 1 and runs[0].data.params["config_id"] == default.id


@pytest.mark.slow
def test_the_notebook_regenerates_tables_and_plots(sweep_env, tmp_path: Path) -> None:
    env = {**sweep_env["env"], "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'nb.db'}"}
    result = _cli(*_sweep_args(sweep_env["corpus"], tmp_path / "r", "nb"), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    text, pictures = run_notebook("milestone1.ipynb", {"MLFLOW_TRACKING_URI": env["MLFLOW_TRACKING_URI"]})
    assert "8 runs" in text and "channel:red | tesseract:lstm-fast" in text
    assert pictures == 2 and "This sweep was exhaustive" in text
