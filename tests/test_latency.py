"""Latency you can trust: intervals, three-way verdicts, the stability rule, warm-up out of the numbers, and a
sweep beside a CPU hog (a real sweep process, a real MLflow store; the hog is two busy processes that are not
the sweep's children)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus.generate import GenerateSpec, generate
from steps.base import NoParams, Variant
from steps.latency import MeasureParams, interval_metrics, pareto_front, percentile_ci, stable, verdict
from steps.runner import DocumentOutcome, _each, warm_up
from steps.scoring import latency_metrics, sla_verdict
from steps.spec import Sla
from tests.conftest import ROOT


def _outcomes(batch_ms: list[float], size: int = 4) -> list[DocumentOutcome]:
    return [DocumentOutcome(doc_id=f"d{b}-{k}", source="", distribution="clean", truth=None, end_to_end_ms=ms,
                            batch_size=size, cpu_ms=ms * 0.9, batch_id=f"b{b}")
            for b, ms in enumerate(batch_ms) for k in range(size)]


@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_each_resample_percentile_is_numpys_on_the_concatenated_batches(q: int) -> None:
    """The counting shortcut equals np.percentile over each resample built the slow way: ragged batches, ties,
    and chunks of every size (a chunk smaller than one resample's values included)."""
    import numpy as np

    from steps.latency import _resampled_percentiles

    rng = np.random.default_rng(q)
    groups = [rng.exponential(100, size=rng.integers(1, 6)).round(rng.integers(0, 2)) for _ in range(23)]
    picks = rng.integers(len(groups), size=(150, len(groups)))
    slow = np.array([np.percentile(np.concatenate([groups[i] for i in row]), q) for row in picks])
    for cells in (1, 97, 10_000):
        assert np.allclose(_resampled_percentiles(groups, picks, q, cells=cells), slow, rtol=1e-12, atol=1e-9)


def test_verdicts_are_three_way() -> None:
    assert verdict(900, 1100, 1200) == "met"
    assert verdict(1250, 1400, 1200) == "missed"
    assert verdict(1100, 1300, 1200) == "uncertain"
    assert verdict(1200, 1200, 1200) == "met"  # a budget is a bound: at it is within it


def test_the_interval_is_over_batches_deterministic_and_holds_the_estimate() -> None:
    batches = [[ms] * 4 for ms in (800, 850, 900, 2000, 820, 870, 910, 880)]
    low, high = percentile_ci(batches, 95)
    assert (low, high) == percentile_ci(batches, 95)  # seeded: same timings, same interval
    assert low < 2000 <= high and low >= 800
    narrow = percentile_ci([[ms] * 4 for ms in [800, 850, 900, 820, 870, 910, 880] * 6], 95)
    assert narrow[1] - narrow[0] < high - low  # steady batches: a tight interval
    assert percentile_ci([[700, 700]], 95) == (700.0, 700.0)  # one batch: nothing to resample
    metrics = interval_metrics(batches, "latency_ms")
    for q in (50, 95, 99):
        assert metrics[f"latency_ms.p{q}_ci_low"] <= metrics[f"latency_ms.p{q}"] <= metrics[f"latency_ms.p{q}_ci_high"]


def test_latency_metrics_give_the_verdict_and_cpu_per_document() -> None:
    steady = _outcomes([1000, 1050, 980, 1020, 1010, 990])
    near = _outcomes([1000, 1050, 980, 1400, 1010, 990])
    for outcomes, budget, expected in [(steady, 3000, "met"), (steady, 500, "missed"), (near, 1200, "uncertain")]:
        metrics = latency_metrics(outcomes, Sla(batch_size=4, end_to_end_ms=budget), MeasureParams())
        assert sla_verdict(metrics, budget) == expected
        assert metrics["sla_met"] == {"met": 1.0, "uncertain": 0.5, "missed": 0.0}[expected]
    metrics = latency_metrics(steady, Sla(batch_size=4, end_to_end_ms=3000))
    assert metrics["cpu_ms_per_doc"] == pytest.approx(sum([1000, 1050, 980, 1020, 1010, 990]) / 6 * 0.9 / 4)


def test_stability_rule_and_pareto_front() -> None:
    assert not stable([1000], 10)
    assert stable([1000, 1090], 10) and not stable([1000, 1110], 10)
    assert stable([1500, 1000, 1050], 10)  # the last two windows decide
    points = {"fast": (0.80, 500.0), "best": (0.95, 2000.0), "dominated": (0.79, 900.0), "tie": (0.80, 500.0)}
    assert pareto_front(points) == {"fast", "best", "tie"}


class ColdStart(Variant):
    """Its first document in a process is slow (as a model's first page through Tesseract is), then fast."""

    step = "preprocess"
    model = "cold-start"

    def __init__(self) -> None:
        super().__init__("v1", NoParams())
        self.calls = 0

    def process(self, item):
        self.calls += 1
        time.sleep(0.4 if self.calls == 1 else 0.01)
        return item


def test_runs_measured_under_heavy_load_near_the_budget_are_re_measured() -> None:
    from types import SimpleNamespace

    from mlproject.sweep.record import RunRecord
    from mlproject.sweep.remeasure import choose
    from steps.catalog import Configuration

    def record(low: float, high: float, share: float) -> RunRecord:
        metrics = {"latency_ms.p95": (low + high) / 2, "latency_ms.p95_ci_low": low, "latency_ms.p95_ci_high": high,
                   "load.other_cpu_share": share, "accuracy": 0.9}
        return RunRecord(Configuration("a", "b", "c", "d"), "clean", metrics, {}, 0.0, outcomes=[object()])

    req = SimpleNamespace(sla=Sla(batch_size=4, end_to_end_ms=1000.0), measure=MeasureParams())
    assert choose(req, [record(600, 800, 0.6)])  # met, but under heavy load within 2× of the budget
    assert choose(req, [record(1200, 1900, 0.6)])  # missed under load: uncertain, chosen anyway
    assert not choose(req, [record(600, 800, 0.1)])  # met on a quiet machine: a certain verdict stands
    assert not choose(req, [record(100, 200, 0.6)])  # far under the budget even under load
    assert not choose(req, [record(2500, 3000, 0.1)])  # far over it, quiet


def test_the_first_run_in_a_process_is_a_warm_up_never_counted() -> None:
    from steps.runner import BatchResult

    variant, result = ColdStart(), BatchResult()
    outputs, times = _each(variant, [["a", "b"], ["c", "d"]], result)
    assert outputs == [["a", "b"], ["c", "d"]]
    assert result.warmup_ms[variant.id] >= 400  # measured, and kept apart
    assert all(t.wall_ms < 200 for t in times)  # no batch carries the cold start
    assert warm_up(variant, ["e"]) is None  # once per process
    again = ColdStart()  # the same variant id, a new object (a version loaded from the registry, as a gate does)
    assert again.id == variant.id and warm_up(again, ["f"]) is not None and again.calls == 1
    assert variant.calls == 5


def test_bad_measuring_parameters_are_refused_by_name(tmp_path: Path) -> None:
    from common.params import ParameterError
    from mlproject.sweep.plan import measure_params

    with pytest.raises(ParameterError, match="latency_repeats"):
        measure_params(MeasureParams(), latency_repeats="-1")
    with pytest.raises(ParameterError, match="stability_pct"):
        measure_params(MeasureParams(), stability_pct="150")
    with pytest.raises(ParameterError, match="max_measure_s"):
        measure_params(MeasureParams(), max_measure_s="soon")
    got = measure_params(MeasureParams(), latency_repeats="2", stability_pct="5", max_measure_s="30")
    assert (got.repeats, got.stability_pct, got.max_measure_s) == (2, 5.0, 30.0)


# ── a sweep beside a CPU hog ──────────────────────────────────────────────────────────────────────────

def _hog_module():
    spec = importlib.util.spec_from_file_location("hog", ROOT / "bench" / "hog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def cpu_hog(tmp_path: Path):
    with _hog_module().cpu_hog(tmp_path) as pids:
        assert len(pids) == 2
        yield


def _run_config(env: dict, corpus: Path, sla_ms: float, repeats: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlproject.cli", "run-config", "--corpus", str(corpus), "--workers", "1",
         "--batch-size", "2", "--preprocess", "channel:gray", "--ocr", "tesseract:lstm-fast", "--classify",
         "keywords:l2", "--extract", "label-rules:v1", "--sla-ms", str(sla_ms), "--latency-repeats", str(repeats),
         "--max-measure-s", "60"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)


def _last_run(env: dict):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("cardflow-sweep")
    return client.search_runs([experiment.experiment_id], "tags.`cardflow.kind` = 'config-run'",
                              order_by=["attributes.start_time DESC"], max_results=1)[0]


@pytest.mark.slow
def test_under_a_cpu_hog_far_verdicts_hold_and_near_ones_are_uncertain_or_remeasured(
        tmp_path: Path, trained_store, request) -> None:
    corpus = tmp_path / "corpus"
    generate(GenerateSpec(corpus, 8, 21, ("clean",)), workers=1, progress=False)
    base = {**os.environ, "CARDFLOW_MODELS": str(trained_store.root)}
    quiet = {**base, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'quiet.db'}"}
    done = _run_config(quiet, corpus, 60_000, 0)
    assert done.returncode == 0, done.stderr[-3000:]
    calm = _last_run(quiet)
    p95 = calm.data.metrics["latency_ms.p95"]
    assert calm.data.tags["cardflow.sla_verdict"] == "met"
    assert calm.data.metrics["latency_ms.p95_ci_low"] <= p95 <= calm.data.metrics["latency_ms.p95_ci_high"]

    request.getfixturevalue("cpu_hog")
    far_env = {**base, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'far.db'}"}
    done = _run_config(far_env, corpus, 50 * p95, 2)
    assert done.returncode == 0, done.stderr[-3000:]
    far = _last_run(far_env)
    assert far.data.tags["cardflow.sla_verdict"] == "met"  # far from the budget: the hog does not flip it
    assert far.data.metrics["load.other_cpu_share"] > 0.25  # and the run says it was measured under load
    assert far.data.tags["cardflow.contention"] == "heavy"

    near_env = {**base, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'near.db'}"}
    done = _run_config(near_env, corpus, p95, 2)  # the budget on the quiet p95: near the line
    assert done.returncode == 0, done.stderr[-3000:]
    near = _last_run(near_env)
    m, tag = near.data.metrics, near.data.tags["cardflow.sla_verdict"]
    assert tag in ("uncertain", "met", "missed")
    if tag != "uncertain":  # a certain verdict near the line only after measuring again, and its interval says so
        assert m["latency_measurements"] >= 2
        assert verdict(m["latency_ms.p95_ci_low"], m["latency_ms.p95_ci_high"], p95) == tag
    assert tag in done.stdout
