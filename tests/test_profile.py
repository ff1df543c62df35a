"""Profiling: cost arithmetic, the recommender on hand-made tables, core restriction in a real worker
process, and a real 2 versions × 2 cores × 2 batch sizes profile with its runs, report and notebook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.recommend import Option, recommend, size
from common.config import ConfigError
from common.params import ParameterError
from mlproject.prices import cost_per_1k_docs
from mlproject.profile import write_inputs
from mlproject.profile_worker import Measurements, WorkOrder, read_inputs
from steps.modelstore import ModelStore
from tests.conftest import ROOT, run_notebook

PRICE = 0.05


def test_cost_per_1k_docs_arithmetic() -> None:
    # 2 cores busy 10 s for 100 documents at 0.036 per core-hour: 2 × 0.1 s × 1000 / 3600 × 0.036
    assert cost_per_1k_docs(2, 10.0, 100, 0.036) == pytest.approx(0.002)
    assert cost_per_1k_docs(1, 3600.0, 1000, 1.0) == pytest.approx(1.0)


def test_sizing_counts_replicas_and_the_wait_for_a_batch_to_fill() -> None:
    # 1.5 docs/s per replica at ≤ 80% busy carries 1.2 docs/s: 2 docs/s needs 2 replicas, each seeing 1 doc/s;
    # the first document of a batch of 4 waits for 3 more: 3 s.
    entry, replicas = size(Option("ocr", "ocr/a:1", 2, 4, 900.0, 1.5), load=2.0, price=PRICE, max_utilisation=0.8)
    assert replicas == 2 and entry.wait_ms == pytest.approx(3000.0) and entry.latency_ms == pytest.approx(3900.0)
    assert entry.cost_per_hour == pytest.approx(2 * 2 * PRICE)
    single, _ = size(Option("ocr", "ocr/a:1", 1, 1, 400.0, 3.0), load=2.0, price=PRICE, max_utilisation=0.8)
    assert single.replicas == 1 and single.wait_ms == 0.0


def _table() -> tuple[list[Option], dict[str, float]]:
    """preprocess: one fast option; ocr: `accurate` (slow) and `fast` (less accurate), each at 1 or 2 cores."""
    options = [
        Option("preprocess", "preprocess/p:1", 1, 1, 20.0, 50.0),
        Option("ocr", "ocr/accurate:1", 1, 1, 1800.0, 0.55),
        Option("ocr", "ocr/accurate:1", 2, 2, 1900.0, 1.05),
        Option("ocr", "ocr/fast:1", 1, 1, 500.0, 2.0),
        Option("ocr", "ocr/fast:1", 2, 2, 520.0, 3.8),
    ]
    accuracy = {"preprocess/p:1|ocr/accurate:1": 0.95, "preprocess/p:1|ocr/fast:1": 0.90}
    return options, accuracy


def test_recommender_picks_the_known_optimum() -> None:
    options, accuracy = _table()
    rec = recommend(options, accuracy, end_to_end_ms=3000, step_budgets_ms={"ocr": 2500}, load=1.0,
                    price_per_core_hour=PRICE, max_utilisation=0.8)
    # accurate at 1 core: 0.55×0.8 = 0.44 docs/s per replica → 3 replicas × 1 core = 3 cores;
    # accurate at 2 cores, batch 2: 1.05×0.8 = 0.84 → 2 replicas × 2 cores = 4 cores, and it waits for its batch
    # (1 doc at 0.5 docs/s per replica = 2000 ms → 3900 ms, over budget). So: accurate, 1 core, 3 replicas.
    best = rec.best
    assert best is not None and best.accuracy == 0.95
    ocr = best.steps["ocr"]
    assert (ocr.option.variant, ocr.option.cores, ocr.option.batch_size, ocr.replicas) == ("ocr/accurate:1", 1, 1, 3)
    assert best.cost_per_hour == pytest.approx((3 * 1 + 1 * 1) * PRICE)
    assert best.latency_ms == pytest.approx(1820.0)
    # fast on 2 cores at batch 2 (1520 ms, 2 cores) is beaten by fast on 1 core (500 ms, 1 core): pruned
    assert rec.considered == 2 and rec.feasible == 2 and rec.runners_up[0].accuracy == 0.90
    # the frontier: the cheapest plan (fast, 1 core) and the accurate one
    assert [(p.accuracy, round(p.cost_per_hour, 4)) for p in rec.frontier] == [(0.90, 0.1), (0.95, 0.2)]


def test_recommender_honours_the_sla() -> None:
    options, accuracy = _table()
    rec = recommend(options, accuracy, end_to_end_ms=3000, step_budgets_ms={"ocr": 1000}, load=1.0,
                    price_per_core_hour=PRICE)
    assert rec.best is not None and rec.best.config_id == "preprocess/p:1|ocr/fast:1"
    assert all(e.latency_ms <= 1000 for p in [rec.best, *rec.runners_up] for s, e in p.steps.items() if s == "ocr")
    rec = recommend(options, accuracy, end_to_end_ms=600, step_budgets_ms={}, load=1.0, price_per_core_hour=PRICE)
    assert rec.best is not None and rec.best.latency_ms <= 600 and rec.best.accuracy == 0.90


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"step_budgets_ms": {"ocr": 300}}, "tightest constraint: step budget: ocr p95 500 ms > budget 300 ms at best "
                                        "(ocr/fast:1, 1 cores, batch 1"),
    ({"end_to_end_ms": 400}, "tightest constraint: end-to-end SLA: the fastest options within every step budget sum "
                             "to 520 ms > 400 ms"),
    ({"load": 100.0, "max_replicas": 4}, "tightest constraint: load: step ocr cannot carry 100 documents/s with at "
                                         "most 4 replicas"),
])
def test_recommender_reports_no_feasible_configuration_with_the_tightest_constraint(kwargs, expected) -> None:
    options, accuracy = _table()
    args = {"end_to_end_ms": 3000, "step_budgets_ms": {}, "load": 1.0, "price_per_core_hour": PRICE} | kwargs
    rec = recommend(options, accuracy, **args)
    assert rec.best is None and rec.feasible == 0
    assert rec.reason.startswith("no feasible configuration") and expected in rec.reason


def test_the_recommender_refuses_a_load_that_is_not_positive() -> None:
    options, accuracy = _table()
    with pytest.raises(ParameterError, match="parameter load: the target load must be positive, got 0"):
        recommend(options, accuracy, end_to_end_ms=3000, step_budgets_ms={}, load=0, price_per_core_hour=PRICE)


def test_a_cell_crosses_the_process_boundary_as_typed_json(tmp_path: Path) -> None:
    """The work order and the measurements round-trip through JSON; a malformed order is refused naming its key."""
    order = WorkOrder(variant="ocr/tesseract:lstm-fast", threads=2, cpus=(0, 1), batch_size=4, warmup=1, min_batches=3,
                      min_seconds=2.0, inputs=str(tmp_path / "ocr.jsonl"), out=str(tmp_path / "result.json"))
    assert WorkOrder.from_json(order.to_json()) == order
    measured = Measurements(batch_ms=(10.5, 12.0), documents=8, wall_s=0.5, cpu_s=0.9, load_s=0.1, peak_rss_mb=210.0,
                            affinity=(0, 1), core_busy_pct=(90.0, 85.5), failures=0, batching="spread")
    assert Measurements.from_json(measured.to_json()) == measured
    bad = json.loads(order.to_json()) | {"cpus": [0, "1"]}
    with pytest.raises(ConfigError, match=r"cell.json: cpus\[1\]: expected an integer, got '1'"):
        WorkOrder.from_json(json.dumps(bad), "cell.json")
    with pytest.raises(ConfigError, match="cell.json: missing key 'out'"):
        WorkOrder.from_json(json.dumps({k: v for k, v in json.loads(order.to_json()).items() if k != "out"}),
                            "cell.json")


def test_step_inputs_cross_to_the_worker_exactly(tmp_path: Path) -> None:
    """Images travel as lossless PNG (the worker sees the parent's pixels), OCR results and classifications as
    their JSON; what the worker reads back is what the parent staged."""
    import numpy as np

    from steps.records import Classification, ExtractInput, ImageRecord, Line, OcrResult, Word

    rng = np.random.default_rng(3)
    images = [ImageRecord("a", rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)),
              ImageRecord("b", rng.integers(0, 256, (41, 29), dtype=np.uint8), ("gray", "otsu"))]
    back = read_inputs(write_inputs(tmp_path / "ocr.jsonl", "ocr", images), "ocr")
    assert [(r.doc_id, r.applied) for r in back] == [("a", ()), ("b", ("gray", "otsu"))]
    assert all(np.array_equal(r.image, i.image) and r.image.dtype == np.uint8
               for r, i in zip(back, images, strict=True))
    ocr = OcrResult("a", (Line("P<AURSMITH", 91.25, (1, 2, 30, 9), (Word("P<AURSMITH", 91.25, (1, 2, 30, 9)),)),),
                    (53, 37))
    classification = Classification("a", "passport", {"passport": 0.9}, "AUR.passport", {"AUR.passport": 0.8})
    assert read_inputs(write_inputs(tmp_path / "classify.jsonl", "classify", [ocr]), "classify") == [ocr]
    both = [ExtractInput(ocr, classification)]
    assert read_inputs(write_inputs(tmp_path / "extract.jsonl", "extract", both), "extract") == both


def _run_worker(tmp_path: Path, inputs: list, variant: str, threads: int, cpus: list[int], batch: int) -> Measurements:
    inputs_file = write_inputs(tmp_path / "inputs.jsonl", variant.split("/")[0], inputs)
    order = WorkOrder(variant=variant, threads=threads, cpus=tuple(cpus), batch_size=batch, warmup=1, min_batches=2,
                      min_seconds=0.0, inputs=str(inputs_file), out=str(tmp_path / "out.json"))
    (tmp_path / "cell.json").write_text(order.to_json())
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-m", "mlproject.profile_worker", str(tmp_path / "cell.json")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return Measurements.from_json((tmp_path / "out.json").read_text())


@pytest.mark.slow
def test_a_worker_allowed_one_core_never_runs_on_two(small_corpus: Path, tmp_path: Path) -> None:
    """Tesseract asked to spread a batch of 4 over 2 threads but allowed 1 CPU: its affinity stays that CPU and
    it never uses more than one core's worth of CPU time; allowed 2 CPUs, the same cell uses more than one."""
    from corpus.loaders import load
    from steps.runner import decode

    available = sorted(os.sched_getaffinity(0))
    assert len(available) >= 2, "this test needs a machine with 2 cores"
    images = [decode(d) for d in list(load(small_corpus))[:4]]
    one = _run_worker(tmp_path, images, "ocr/tesseract:lstm-fast", threads=2, cpus=[available[0]], batch=4)
    assert one.affinity == (available[0],)
    assert one.cpu_s / one.wall_s <= 1.05
    assert one.batching == "spread" and one.failures == 0
    two = _run_worker(tmp_path, images, "ocr/tesseract:lstm-fast", threads=2, cpus=available[:2], batch=4)
    assert two.affinity == tuple(available[:2])
    assert two.cpu_s / two.wall_s > 1.2  # the batch really is spread over both cores


@pytest.fixture(scope="module")
def tiny_profile(small_corpus: Path, trained_store: ModelStore, tmp_path_factory) -> tuple[dict, Path, str]:
    """A real 2 versions × 2 cores × 2 batch sizes profile of preprocessing: (env, its folder, parent run id)."""
    tmp_path = tmp_path_factory.mktemp("tiny-profile")
    env = {**os.environ, "CARDFLOW_MODELS": str(trained_store.root),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    args = ["profile", "--corpus", str(small_corpus), "--distributions", "clean", "--step", "preprocess",
            "--versions", "channel:gray,otsu:gray", "--cores", "1,2", "--batch-sizes", "1,2", "--min-batches", "2",
            "--name", "tiny", "--reports", str(tmp_path / "reports"), "--load", "1", "--latency-repeats", "1",
            "--min-seconds", "0.3"]
    done = subprocess.run([sys.executable, "-m", "mlproject.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "most expensive step of the default configuration: ocr" in done.stdout
    return env, tmp_path, done.stdout.split("parent run ", 1)[1].split()[0]


@pytest.mark.slow
def test_a_small_profile_produces_its_runs_report_and_notebook(tiny_profile: tuple[dict, Path, str]) -> None:
    env, tmp_path, parent_id = tiny_profile
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("cardflow-profile")
    parent = client.search_runs([experiment.experiment_id], "tags.`cardflow.kind` = 'profile'")
    assert len(parent) == 1 and parent[0].info.status == "FINISHED" and parent[0].info.run_id == parent_id
    assert parent[0].data.params["min_seconds"] == "0.3"
    cells = client.search_runs([experiment.experiment_id], "tags.`cardflow.kind` = 'profile-cell'")
    assert len(cells) == 8
    assert {(r.data.params["variant"], r.data.params["cores"], r.data.params["batch_size"]) for r in cells} == {
        (v, c, b) for v in ("preprocess/otsu:gray", "preprocess/channel:gray") for c in ("1", "2") for b in ("1", "2")}
    keys = {"latency_ms.p50", "latency_ms.p95", "latency_ms.p99", "batch_latency_ms.p95", "throughput_docs_s",
            "cpu_utilisation", "peak_rss_mb", "cost_per_1k_docs", "accuracy", "oversubscribed"}
    for run in cells:
        assert keys <= set(run.data.metrics), keys - set(run.data.metrics)
        assert run.data.tags["mlflow.parentRunId"] == parent[0].info.run_id
        assert run.data.params["batching"] == "spread"
        assert len(run.data.params["cpus"].split(",")) == int(run.data.params["cores"])
        m = run.data.metrics
        # cost as logged = cores × time per document × 1000 / 3600 × price
        assert m["cost_per_1k_docs"] == pytest.approx(
            int(run.data.params["cores"]) * (1.0 / m["throughput_docs_s"]) * 1000 / 3600
            * float(run.data.params["price_per_core_hour"]), rel=1e-6)
    accuracy = {r.data.params["variant"]: r.data.metrics["accuracy"] for r in cells}
    assert 0.3 < accuracy["preprocess/otsu:gray"] <= 1.0 and 0.3 < accuracy["preprocess/channel:gray"] <= 1.0
    report = tmp_path / "reports" / "tiny"
    for name in ("report.md", "report.html", "profile.csv", "breakdown.png", "version_accuracy_latency.png",
                 "version_accuracy_throughput.png", "batch_curves.png", "utilisation.png", "frontier.png"):
        assert (report / name).is_file(), name
    text = (report / "report.md").read_text()
    assert "Most expensive: **ocr**" in text and "| preprocess | otsu:gray" in text
    assert "## Recommendation" in text

    text, pictures = run_notebook("milestone2.ipynb", {"MLFLOW_TRACKING_URI": env["MLFLOW_TRACKING_URI"],
                                                       "CARDFLOW_MODELS": env["CARDFLOW_MODELS"]})
    assert "8 cells" in text and "most expensive step: ocr" in text
    assert pictures == 6

    again = subprocess.run([sys.executable, "-m", "mlproject.cli", "recommend", "--profile", parent[0].info.run_id,
                            "--budget", "ocr=10"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 3 and "no feasible configuration; tightest constraint: step budget: ocr" in again.stdout


def test_bad_profile_parameters_are_refused(tmp_path: Path) -> None:
    """Refused before any work: the empty model store stays empty (no classifier trained first)."""
    store = tmp_path / "models"
    store.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "CARDFLOW_MODELS": str(store)}
    for args, message in ((["--step", "ocrx"], "parameter step: unknown step 'ocrx'; valid: auto, preprocess"),
                          (["--cores", "0"], "parameter cores must be positive"),
                          (["--min-seconds", "-1"], "parameter min_seconds"),
                          (["--min-seconds", "inf"], "parameter min_seconds: expected a finite number"),
                          (["--corpus", "/no/such"], "parameter corpus: /no/such does not exist"),
                          (["--step", "ocr", "--versions", "tesseract:nope"], "parameter versions: unknown ocr variant")):
        done = subprocess.run([sys.executable, "-m", "mlproject.cli", "profile", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert not any(store.iterdir()), f"{args}: trained before refusing"


@pytest.mark.slow
def test_mlflow_run_profile_entry_point(small_corpus: Path, trained_store: ModelStore, tmp_path: Path) -> None:
    """`mlflow run . -e profile -P …`: the entry point's run is the profile's parent, cells nested under it."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CARDFLOW_MODELS": str(trained_store.root),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "run", ".", "-e", "profile", "--env-manager", "local",
         "-P", f"corpus={small_corpus}", "-P", "distributions=clean", "-P", "step=preprocess",
         "-P", "versions=channel:gray", "-P", "cores=1", "-P", "batch_sizes=1,2", "-P", "name=ep",
         "-P", "min_seconds=0.3"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = MlflowClient().search_runs(experiment_ids=["0"])
    parents = [r for r in runs if r.data.tags.get("cardflow.kind") == "profile"]
    cells = [r for r in runs if r.data.tags.get("cardflow.kind") == "profile-cell"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and len(cells) == 2
    assert parents[0].data.params["min_seconds"] == "0.3"  # the entry point's parameter reached the profile
    assert {r.data.tags["mlflow.parentRunId"] for r in cells} == {parents[0].info.run_id}
    assert {r.data.params["batch_size"] for r in cells} == {"1", "2"}
    assert "profile.json" in {a.path for a in MlflowClient().list_artifacts(parents[0].info.run_id)}


def test_accuracy_table_reads_each_version_with_the_other_steps_at_their_default(small_corpus: Path,
                                                                                   trained_store: ModelStore) -> None:
    """Two profiled steps whose lists leave out their defaults: each version's accuracy is still measured
    with every other step at its default (the defaults join the grid)."""
    from corpus.loaders import load
    from mlproject.profile import accuracy_table, version_accuracy
    from steps.catalog import default_catalog
    from steps.spec import load_spec

    catalog = default_catalog(trained_store)
    base = load_spec(catalog).default
    docs = [d for d in load(small_corpus) if d.distribution == "clean"][:3]
    versions = {"classify": ("classify/keywords:l2",), "extract": ("extract/label-rules:v1",)}
    table = accuracy_table(catalog, docs, base, ("classify", "extract"), versions, 4)
    assert len(table) == 4  # (keywords, default classify) × (label-rules, default extract)
    for step, variant in (("classify", "classify/keywords:l2"), ("extract", "extract/label-rules:v1")):
        assert 0.0 < version_accuracy(table, base, step, variant) <= 1.0
    assert version_accuracy(table, base, "extract", base.extract) == table[base.id]["accuracy"]


@pytest.mark.slow
def test_the_recommendation_becomes_a_kustomize_overlay_that_validates(tiny_profile: tuple[dict, Path, str],
                                                                       trained_store: ModelStore,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`cardflow serve overlay` on the tiny profile: refused while a plan's variant is unregistered or its alias
    holds nothing (naming the step and the command that fixes it), exit 3 when nothing is feasible; with --pin,
    an overlay over overlays/production whose rendered InferenceServices validate against KServe's CRD and carry
    the plan's versions, cores, batch sizes, replicas and the profiled cell's memory."""
    from mlflow.tracking import MlflowClient

    from analysis.profile import asked_recommendation, load_profile
    from registry.register import TAG_VARIANT, register_all
    from serving.overlay import memory_mi
    from steps.catalog import default_catalog
    from steps.spec import load_spec
    from tests.test_deploy import render, validate_custom

    env, tmp_path, parent_id = tiny_profile
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])  # register_all below, in this process
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    work = tmp_path / "k8s"
    render("overlays/production", work)  # copies serving/k8s with the example credentials, as test_deploy does
    out = work / "overlays" / "recommended"

    def overlay(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mlproject.cli", "serve", "overlay", "--profile", parent_id,
                               "--out", str(out), "--base", str(work / "overlays" / "production"), *extra],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    data = load_profile(parent_id, client)
    plan, _ = asked_recommendation(data, load="3")
    plan = plan.best
    unregistered = overlay("--load", "3")
    assert unregistered.returncode == 2 and "has no registered version of cardflow.preprocess." in unregistered.stderr
    assert "cardflow registry register --variants preprocess/" in unregistered.stderr

    catalog = default_catalog(trained_store)
    wanted = {*load_spec(catalog).default.as_dict().values(), *(s.option.variant for s in plan.steps.values())}
    registered = {r.variant_id: r for r in register_all(catalog, trained_store, variant_ids=sorted(wanted))}
    for step in ("ocr", "classify", "extract"):  # preprocess's alias is left unset
        entry = registered[plan.steps[step].option.variant]
        client.set_registered_model_alias(entry.name, "champion", entry.version)
    refused = overlay("--load", "3")
    assert refused.returncode == 2 and "step preprocess: cardflow.preprocess." in refused.stderr, refused.stderr
    assert "@champion holds nothing" in refused.stderr and "--alias champion) or pass --pin" in refused.stderr
    assert not out.exists()  # nothing written when refused
    endless = overlay("--load", "inf")
    assert endless.returncode == 2 and "parameter load: expected a finite number" in endless.stderr
    infeasible = overlay("--sla-ms", "1")
    assert infeasible.returncode == 3 and "no feasible plan" in infeasible.stdout and not out.exists()

    done = overlay("--load", "3", "--pin")
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / 'kustomization.yaml'}" in done.stdout
    services = {d["metadata"]["name"]: d for d in render("overlays/recommended", work) if d["kind"] == "InferenceService"}
    assert set(services) == {f"cardflow-{s}" for s in ("preprocess", "ocr", "classify", "extract")}
    for step, sized in plan.steps.items():
        doc = services[f"cardflow-{step}"]
        validate_custom(doc)
        predictor = doc["spec"]["predictor"]
        container = predictor["containers"][0]
        option = sized.option
        entry = registered[option.variant]
        assert client.get_model_version(entry.name, entry.version).tags[TAG_VARIANT] == option.variant
        select = ["--version", str(entry.version)] if step == "preprocess" else ["--alias", "champion"]
        assert container["args"] == ["serve", "step", "--step", step, "--model", entry.name.rsplit(".", 1)[1], *select,
                                     "--threads", str(option.cores), "--max-batch-size", str(option.batch_size),
                                     "--host", "0.0.0.0", "--port", "8080"]
        assert container["resources"]["requests"]["cpu"] == container["resources"]["limits"]["cpu"] == str(option.cores)
        assert predictor["minReplicas"] == max(sized.replicas, 2) and predictor["maxReplicas"] == 2 * predictor["minReplicas"]
        assert "podAntiAffinity" in predictor["affinity"]  # overlays/production's placement is kept
    cell = data.cells[(data.cells["variant"] == plan.steps["preprocess"].option.variant)
                      & (data.cells["cores"] == plan.steps["preprocess"].option.cores)
                      & (data.cells["batch_size"] == plan.steps["preprocess"].option.batch_size)]
    memory = services["cardflow-preprocess"]["spec"]["predictor"]["containers"][0]["resources"]
    assert memory["requests"]["memory"] == f"{memory_mi(float(cell['peak_rss_mb'].max()))}Mi"
    assert memory["limits"]["memory"] == f"{2 * memory_mi(float(cell['peak_rss_mb'].max()))}Mi"
