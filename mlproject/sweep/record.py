"""What one (configuration, distribution) run records, built from its outcomes: metrics, predictions,
per-step latencies, the level-2 confusion matrix and (run-config) the per-step breakdown plot. Pure: no MLflow."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.plots import confusion_png, step_breakdown_png
from steps.base import STEPS
from steps.catalog import Configuration
from steps.latency import MeasureParams
from steps.runner import DocumentOutcome
from steps.scoring import Summary, latency_metrics, sla_verdict
from steps.spec import Sla


@dataclass
class RunRecord:
    """Everything one (configuration, distribution) run logs."""

    config: Configuration
    distribution: str
    metrics: dict[str, float]
    files: dict[str, bytes]  # artifact name -> content
    mean_latency_ms: float
    most_expensive_step: str = ""
    outcomes: list[DocumentOutcome] | None = None  # kept while the sweep may re-measure the run's latency
    contention: float = MeasureParams().contention
    search: dict[str, str] = field(default_factory=dict)  # --search halving: cardflow.search* tags

    def verdict(self, sla: Sla) -> str:
        """'met' / 'uncertain' / 'missed' (steps/latency.py; a miss under heavy contention is uncertain)."""
        return sla_verdict(self.metrics, sla.end_to_end_ms, self.contention)

    @property
    def name(self) -> str:
        return f"{self.config.label} @ {self.distribution}"

    def description(self, sla: Sla) -> str:
        """One line for the MLflow run page: accuracy, latency against the SLA, where the time goes."""
        m = self.metrics
        measured = int(m.get("latency_measurements", 1))
        load = m.get("load.other_cpu_share", 0.0)
        return (f"**{self.config.label}** on `{self.distribution}`: accuracy {m.get('accuracy', 0):.1%} "
                f"({m.get('assertions_passed', 0):.0f}/{m.get('assertions_total', 0):.0f} assertions); p95 "
                f"{m.get('latency_ms.p95', 0):.0f} ms per document (95% interval {m.get('latency_ms.p95_ci_low', 0):.0f}"
                f"–{m.get('latency_ms.p95_ci_high', 0):.0f} ms, {measured} measurement{'s' * (measured > 1)}), "
                f"SLA {sla.end_to_end_ms:.0f} ms **{self.verdict(sla)}**; most expensive step: "
                f"{self.most_expensive_step}; other processes used {load:.0%} of the CPUs meanwhile.")


def step_means(metrics: dict[str, float]) -> dict[str, float]:
    return {s: metrics[f"step.{s}.latency_ms.mean"] for s in STEPS if f"step.{s}.latency_ms.mean" in metrics}


def build_record(config: Configuration, distribution: str, outcomes: list[DocumentOutcome], sla: Sla,
                 peak_mb: float, breakdown_plot: bool = False, measure: MeasureParams | None = None,
                 other_cpu_share: float = 0.0) -> RunRecord:
    summary = Summary()
    lines = []
    for outcome in outcomes:
        assertions = summary.add(outcome)
        row = {**outcome.to_json(), "assertions": assertions, "truth_l2": outcome.truth.l2 if outcome.truth else None}
        lines.append(json.dumps(row, ensure_ascii=False))
    measure = measure or MeasureParams()
    metrics = {**summary.metrics(), **latency_metrics(outcomes, sla, measure, other_cpu_share), "peak_rss_mb": peak_mb,
               "latency_measurements": 1.0}
    metrics = {k: float(v) for k, v in metrics.items() if v is not None}
    files = {"predictions.jsonl": ("\n".join(lines) + "\n").encode(),
             "step_latency.csv": step_latency_csv(outcomes).encode()}
    labelled = [(o.truth.l2, (o.classification.l2 if o.classification else None) or "none")
                for o in outcomes if o.truth and o.truth.l2]
    means = step_means(metrics)
    top = max(means, key=means.get) if means else ""
    with tempfile.TemporaryDirectory() as tmp:
        if labelled:
            png = confusion_png([t for t, _ in labelled], [p for _, p in labelled], Path(tmp) / "c.png",
                                title=f"level 2 — {config.label} @ {distribution}")
            files["confusion_l2.png"] = png.read_bytes()
        if breakdown_plot:
            path = step_breakdown_png({f"{config.label} @ {distribution}": means}, Path(tmp) / "b.png",
                                      f"where the time goes — most expensive step: {top}")
            files["step_breakdown.png"] = path.read_bytes()
    mean = sum(o.end_to_end_ms for o in outcomes) / len(outcomes)
    return RunRecord(config, distribution, metrics, files, mean, top, outcomes, measure.contention)


def step_latency_csv(outcomes: list[DocumentOutcome]) -> str:
    lines = ["step,p50_ms,p95_ms,p99_ms,mean_ms"]
    for step in [*STEPS, "end_to_end"]:
        values = np.array([o.end_to_end_ms if step == "end_to_end" else o.latency_ms.get(step, np.nan) for o in outcomes])
        lines.append(f"{step},{np.percentile(values, 50):.3f},{np.percentile(values, 95):.3f},"
                     f"{np.percentile(values, 99):.3f},{values.mean():.3f}")
    return "\n".join(lines) + "\n"


def breakdown_text(metrics: dict[str, float]) -> str:
    """One line per step: mean latency per document and its share, the most expensive first."""
    means = step_means(metrics)
    total = sum(means.values()) or 1.0
    return "\n".join(f"  {s:<10} {v:8.1f} ms/doc  {v / total * 100:5.1f}%" + ("  ← most expensive" if k == 0 else "")
                     for k, (s, v) in enumerate(sorted(means.items(), key=lambda kv: -kv[1])))
