"""A sweep's results as tables, from its MLflow runs (the parent run's sweep.json lists them).

Used by the sweep report and by analysis/milestone1.ipynb, so both show the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from steps.base import STEPS


@dataclass
class SweepData:
    manifest: dict[str, Any]
    parent_params: dict[str, str]
    runs: pd.DataFrame  # one row per (configuration, distribution)


def load_sweep(parent_run_id: str, client=None) -> SweepData:
    """Read sweep.json from the parent run and every listed run's params and metrics."""
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    parent = client.get_run(parent_run_id)
    path = client.download_artifacts(parent_run_id, "sweep.json")
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    rows = []
    for entry in manifest["runs"]:
        run = client.get_run(entry["run_id"])
        m, p = run.data.metrics, run.data.params
        rows.append({
            "run_id": entry["run_id"], "config_id": entry["config_id"], "distribution": entry["distribution"],
            "label": run.data.tags.get("cardflow.config_label", entry["config_id"]),
            **{step: p.get(step) for step in STEPS},
            "passed": int(m.get("assertions_passed", 0)), "total": int(m.get("assertions_total", 0)),
            "accuracy": m.get("accuracy"), "l1_accuracy": m.get("l1_accuracy"), "l2_accuracy": m.get("l2_accuracy"),
            "cer": m.get("cer"), "latency_p50": m.get("latency_ms.p50"), "latency_p95": m.get("latency_ms.p95"),
            "latency_p99": m.get("latency_ms.p99"), "throughput": m.get("throughput_docs_s"),
            "latency_p95_low": m.get("latency_ms.p95_ci_low", m.get("latency_ms.p95")),
            "latency_p95_high": m.get("latency_ms.p95_ci_high", m.get("latency_ms.p95")),
            "verdict": run.data.tags.get("cardflow.sla_verdict", "met" if m.get("sla_met") else "missed"),
            "measurements": int(m.get("latency_measurements", 1)),
            "other_cpu": m.get("load.other_cpu_share", 0.0),
            "contention": run.data.tags.get("cardflow.contention", "light") == "heavy",
            "documents": int(m.get("documents", 0)),
            **{f"step_{s}_p95": m.get(f"step.{s}.latency_ms.p95") for s in STEPS},
            **{f"step_{s}_mean": m.get(f"step.{s}.latency_ms.mean") for s in STEPS},
            **{k: v for k, v in m.items() if k.startswith(("assert.", "field."))},
        })
    df = pd.DataFrame(rows)
    if not df.empty:
        df["sla_met"] = df["verdict"] == "met"  # surely within the budget: the p95's interval is under it
    return SweepData(manifest, dict(parent.data.params), df)


def results_table(df: pd.DataFrame) -> pd.DataFrame:
    """The table the seed asks for: per configuration and distribution — accuracy as assertions passed /
    total and %, latency p50/p95 (ms per document) with the p95's 95% interval, the SLA verdict (met /
    uncertain / missed), how many times the latency was measured, and a flag where other processes took
    much of the machine meanwhile."""
    out = pd.DataFrame({
        "configuration": df["label"], "distribution": df["distribution"],
        "assertions": df["passed"].astype(str) + " / " + df["total"].astype(str),
        "accuracy %": (df["accuracy"] * 100).round(1),
        "p50 ms": df["latency_p50"].round(0), "p95 ms": df["latency_p95"].round(0),
        "p95 95% interval": [f"{lo:.0f}–{hi:.0f}" for lo, hi in zip(df["latency_p95_low"], df["latency_p95_high"],
                                                                   strict=True)],
        "SLA": df["verdict"], "measured": df["measurements"],
        "contention": [f"heavy ({c:.0%})" if h else "" for c, h in zip(df["other_cpu"], df["contention"], strict=True)],
    })
    return out.sort_values(["distribution", "accuracy %", "p95 ms"], ascending=[True, False, True]).reset_index(drop=True)


def best_per_distribution(df: pd.DataFrame, within_sla: bool = True) -> pd.DataFrame:
    """The most accurate configuration per distribution (ties: lower p95), among those surely meeting the SLA
    (verdict met) if any do; how many are uncertain is said beside."""
    rows = []
    for dist, part in df.groupby("distribution", sort=False):
        pool = part[part["sla_met"]] if within_sla and part["sla_met"].any() else part
        best = pool.sort_values(["accuracy", "latency_p95"], ascending=[False, True]).iloc[0]
        rows.append({"distribution": dist, "configuration": best["label"], "accuracy %": round(best["accuracy"] * 100, 1),
                     "p95 ms": round(best["latency_p95"]),
                     "p95 95% interval": f"{best['latency_p95_low']:.0f}–{best['latency_p95_high']:.0f}",
                     "SLA": best["verdict"], "meets SLA among": int(part["sla_met"].sum()),
                     "uncertain": int((part["verdict"] == "uncertain").sum())})
    return pd.DataFrame(rows)


def robustness(df: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: worst-case, mean and spread of accuracy across distributions, and whether the SLA
    holds everywhere. The most robust is the best worst case (ties: the best mean)."""
    grouped = df.groupby("label")
    out = pd.DataFrame({
        "worst %": grouped["accuracy"].min() * 100, "mean %": grouped["accuracy"].mean() * 100,
        "spread pts": (grouped["accuracy"].max() - grouped["accuracy"].min()) * 100,
        "worst distribution": grouped.apply(lambda g: g.loc[g["accuracy"].idxmin(), "distribution"], include_groups=False),
        "p95 ms (max)": grouped["latency_p95"].max(), "SLA everywhere": grouped["sla_met"].all().map({True: "yes", False: "no"}),
    })
    return out.sort_values(["worst %", "mean %"], ascending=False).round(1)


def accuracy_pivot(df: pd.DataFrame) -> pd.DataFrame:
    """Configuration × distribution accuracy (rows ordered by mean accuracy)."""
    pivot = df.pivot_table(index="label", columns="distribution", values="accuracy", aggfunc="mean")
    pivot = pivot[[d for d in dict.fromkeys(df["distribution"]) if d in pivot.columns]]
    return pivot.loc[pivot.mean(axis=1).sort_values(ascending=False).index]


def search_table(manifest: dict[str, Any]) -> pd.DataFrame:
    """A halving search's stages per distribution (sweep.json `search`): documents, configurations evaluated and
    kept, the stage's best and its accuracy, and where the final winner ranked at that stage. Empty for an
    exhaustive sweep."""
    search = manifest.get("search") or {}
    rows = []
    for dist, stages in (search.get("stages") or {}).items():
        ranks = (search.get("winner_ranks") or {}).get(dist, [])
        for stage in stages:
            k = stage["stage"]
            rows.append({"distribution": dist, "stage": k, "documents": stage["documents"],
                         "evaluated": stage["evaluated"], "kept": stage["kept"],
                         "best accuracy %": round(100 * stage["best_accuracy"], 1),
                         "winner's rank": ranks[k] if k < len(ranks) and ranks[k] is not None else "-"})
    return pd.DataFrame(rows)
