"""Latency you can trust: percentiles with a confidence interval, three-way SLA verdicts, and the stability
rule that decides when a re-measurement has settled. Pure numpy: no MLflow, no processes.

A document's latency is the wall time of the batch it rode in, so the documents of one batch are not
independent samples: the interval of a percentile is a bootstrap over *batches* (whole batches resampled
with replacement, the percentile taken over their documents), seeded so that the same timings always give
the same interval.

Verdicts against a budget (p95 ≤ budget):
  met        the interval's upper end is within the budget
  missed     its lower end is over the budget
  uncertain  the interval straddles the budget (measure more, or treat it as near the line)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

QUANTILES = (50, 95, 99)
VERDICTS = ("met", "uncertain", "missed")
SLA_MET_VALUE = {"met": 1.0, "uncertain": 0.5, "missed": 0.0}  # the sla_met metric: certain cases keep 1 / 0


@dataclass(frozen=True)
class MeasureParams:
    """How latency is measured and re-measured (configs/pipeline.yaml `measure:`; sweep / run-config /
    profile parameters --latency-repeats, --stability-pct, --max-measure-s).

    repeats        re-measuring windows at most for a configuration whose verdict is uncertain or that is on
                   a distribution's accuracy–latency Pareto front (0: measure once, as before)
    stability_pct  successive windows agree when their p95 differ by at most this share of the earlier one
    max_measure_s  wall-time cap on all re-measuring of one sweep
    confidence     of the bootstrap interval
    resamples      bootstrap resamples
    contention     another processes' CPU share of the machine (0..1) above which a run is flagged as measured
                   under heavy contention
    """

    repeats: int = 3
    stability_pct: float = 10.0
    max_measure_s: float = 120.0
    confidence: float = 0.95
    resamples: int = 1000
    contention: float = 0.25

    def validate(self) -> None:
        from common.params import ParameterError

        if self.repeats < 0:
            raise ParameterError(f"parameter latency_repeats: expected 0 or more, got {self.repeats}")
        if not 0 < self.stability_pct < 100:
            raise ParameterError(f"parameter stability_pct: expected a percentage in (0, 100), got {self.stability_pct}")
        if self.max_measure_s < 0:
            raise ParameterError(f"parameter max_measure_s: expected 0 or more seconds, got {self.max_measure_s}")


def percentile_ci(batches: Sequence[Sequence[float]], q: float, *, confidence: float = 0.95,
                  resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The `confidence` interval of the q-th percentile of the documents' values, by a bootstrap over
    `batches` (each a batch's documents' values). One batch: the interval is that batch's percentile."""
    groups = [np.asarray(b, float) for b in batches if len(b)]
    if not groups:
        return float("nan"), float("nan")
    if len(groups) == 1:
        value = float(np.percentile(groups[0], q))
        return value, value
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(groups), size=(resamples, len(groups)))
    stats = _resampled_percentiles(groups, picks, q)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def _resampled_percentiles(groups: Sequence[np.ndarray], picks: np.ndarray, q: float,
                           cells: int = 4_000_000) -> np.ndarray:
    """np.percentile(concatenate(groups[i] for i in row), q) for every row of `picks`, without building the
    resamples: a row is a count per group, so the k-th smallest value of its resample is found on the cumulative
    counts over all values sorted once. (A Python loop over 1,000 resamples took ~3 s for a cheap step's
    thousands of batches.) Rows go in chunks of at most `cells` (rows × values) entries."""
    sizes = np.array([len(g) for g in groups])
    values = np.concatenate(groups)
    order = np.argsort(values, kind="stable")
    ordered, owner = values[order], np.repeat(np.arange(len(groups)), sizes)[order]
    out = np.empty(len(picks))
    step = max(1, cells // len(values))
    for start in range(0, len(picks), step):
        rows = picks[start:start + step]
        r = np.arange(len(rows))[:, None]
        counts = np.bincount((rows + r * len(groups)).ravel(), minlength=len(rows) * len(groups))
        cumulative = np.cumsum(counts.reshape(len(rows), len(groups))[:, owner], axis=1)
        total = cumulative[:, -1]
        h = (total - 1) * q / 100.0  # numpy's default ("linear") method on each resample
        lo = np.floor(h).astype(int)
        hi = np.minimum(lo + 1, total - 1)
        span = int(total.max()) + 1  # rows side by side on one increasing axis
        flat = (cumulative + r * span).ravel()
        at = np.searchsorted(flat, np.stack([lo, hi], 1) + r * span, side="right") - r * len(values)
        below, above = ordered[at[:, 0]], ordered[at[:, 1]]
        out[start:start + len(rows)] = below + (h - lo) * (above - below)
    return out


def verdict(low: float, high: float, budget: float) -> str:
    """'met', 'missed' or 'uncertain': the interval [low, high] against the budget (see the module docstring)."""
    if high <= budget:
        return "met"
    if low > budget:
        return "missed"
    return "uncertain"


def interval_metrics(batches: Sequence[Sequence[float]], prefix: str, *, confidence: float = 0.95,
                     resamples: int = 1000) -> dict[str, float]:
    """`<prefix>.p50|p95|p99` and their intervals `<prefix>.pNN_ci_low|high` over the documents of `batches`."""
    values = np.concatenate([np.asarray(b, float) for b in batches]) if batches else np.array([])
    out: dict[str, float] = {}
    if values.size == 0:
        return out
    for q in QUANTILES:
        low, high = percentile_ci(batches, q, confidence=confidence, resamples=resamples, seed=q)
        out[f"{prefix}.p{q}"] = float(np.percentile(values, q))
        out[f"{prefix}.p{q}_ci_low"], out[f"{prefix}.p{q}_ci_high"] = low, high
    return out


def stable(p95s: Sequence[float], stability_pct: float) -> bool:
    """Whether the last two windows' p95 agree within `stability_pct` percent of the earlier one."""
    if len(p95s) < 2:
        return False
    before, last = p95s[-2], p95s[-1]
    return before > 0 and abs(last - before) <= stability_pct / 100.0 * before


def pareto_front(points: Mapping[str, tuple[float, float]]) -> set[str]:
    """The keys of `points` (accuracy, latency) no other point beats on both (higher accuracy, lower latency)."""
    front = set()
    for key, (acc, lat) in points.items():
        if not any((a >= acc and t <= lat) and (a > acc or t < lat) for k, (a, t) in points.items() if k != key):
            front.add(key)
    return front
