"""Profile analysis: the cells of a `cardflow profile` run as a table, its plots, the recommendation
and the report (reports/<profile>/report.md|html). Everything is read back from MLflow (the parent
run's profile.json and its nested runs), so analysis/milestone2.ipynb regenerates the same output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.plots import figure
from analysis.recommend import Option, Recommendation, explain, recommend
from analysis.report import write_html
from common.params import ParameterError, is_default, or_default, positive_float

STEP_ORDER = ("preprocess", "ocr", "classify", "extract")
METRICS = {"latency_ms.p50": "p50_ms", "latency_ms.p95": "p95_ms", "latency_ms.p99": "p99_ms",
           "throughput_docs_s": "throughput", "cpu_utilisation": "cpu_utilisation", "core_busy_pct": "core_busy_pct",
           "peak_rss_mb": "peak_rss_mb", "cost_per_1k_docs": "cost_per_1k", "accuracy": "accuracy"}


@dataclass
class ProfileData:
    manifest: dict[str, Any]
    cells: pd.DataFrame  # one row per (step, variant, cores, batch size)

    @property
    def name(self) -> str:
        return self.manifest["name"]


def load_profile(parent_run_id: str, client=None) -> ProfileData:
    """profile.json from the parent run; each cell's figures from its own MLflow run."""
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    with open(client.download_artifacts(parent_run_id, "profile.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    rows = []
    for entry in manifest["cells"]:
        run = client.get_run(entry["run_id"])
        m, p = run.data.metrics, run.data.params
        rows.append({"run_id": entry["run_id"], "step": p["step"], "variant": p["variant"], "version": p["version"],
                     "cores": int(p["cores"]), "batch_size": int(p["batch_size"]), "batching": p["batching"],
                     "oversubscribed": p["oversubscribed"] == "True", "cpus": p["cpus"],
                     **{short: m.get(key) for key, short in METRICS.items()}})
    return ProfileData(manifest, pd.DataFrame(rows))


def profile_table(data: ProfileData) -> pd.DataFrame:
    """Variant | Batch size | Cores | Latency p50/p95 | Throughput | Cost per 1k docs | Accuracy (the seed's table)."""
    df = data.cells.sort_values(["step", "variant", "cores", "batch_size"], key=lambda c: c.map(
        {s: k for k, s in enumerate(STEP_ORDER)}) if c.name == "step" else c)
    currency = data.manifest["prices"]["currency"]
    return pd.DataFrame({
        "Step": df["step"], "Variant": df["variant"].str.split("/").str[1], "Batch size": df["batch_size"],
        "Cores": df["cores"].astype(str) + df["oversubscribed"].map({True: " (oversubscribed)", False: ""}),
        "Latency p50 (ms)": df["p50_ms"].round(0), "Latency p95 (ms)": df["p95_ms"].round(0),
        "Throughput (docs/s)": df["throughput"].round(2), f"Cost per 1k docs ({currency})": df["cost_per_1k"].round(4),
        "CPU util. per core": (df["cpu_utilisation"] * 100).round(0).astype(int).astype(str) + "%",
        "Accuracy": (df["accuracy"] * 100).round(1).astype(str) + "%",
    }).reset_index(drop=True)


def options(data: ProfileData) -> list[Option]:
    """Every profiled cell as a way to run its step, plus the default variant of each step not profiled as
    measured by the breakdowns (one thread, at batch size 1 and at the SLA batch size)."""
    out = [Option(r.step, r.variant, int(r.cores), int(r.batch_size), float(r.p95_ms), float(r.throughput),
                  bool(r.oversubscribed)) for r in data.cells.itertuples()]
    m = data.manifest
    for batch, rows in ((m["sla"]["batch_size"], m["breakdown"]), (1, m.get("breakdown_batch1", []))):
        for row in rows:
            if row["step"] not in m["steps"]:
                # each document's figure is its batch's wall time: a batch of `batch` takes mean_ms
                throughput = batch * 1000.0 / row["mean_ms"] if row["mean_ms"] > 0 else 1e9
                out.append(Option(row["step"], m["base_configuration"][row["step"]], 1, batch, row["p95_ms"],
                                  throughput))
    return out


def recommendation(data: ProfileData, *, load: float | None = None, end_to_end_ms: float | None = None,
                   step_budgets_ms: dict[str, float] | None = None) -> Recommendation:
    m = data.manifest
    accuracy = {cid: v["accuracy"] for cid, v in m["accuracy"].items()}
    return recommend(options(data), accuracy, end_to_end_ms=end_to_end_ms or m["sla"]["end_to_end_ms"],
                     step_budgets_ms=step_budgets_ms if step_budgets_ms is not None else m["sla"]["steps_ms"],
                     load=load or m["load_docs_s"], price_per_core_hour=m["prices"]["price_per_core_hour"],
                     max_utilisation=m["max_utilisation"], max_replicas=m["max_replicas"])


def asked_recommendation(data: ProfileData, *, load: Any = None, sla_ms: Any = None,
                         budgets: Sequence[str] | None = None) -> tuple[Recommendation, float]:
    """The recommendation for a command's --load, --sla-ms and --budget STEP=MS (each defaulting to the
    profile's), and the end-to-end budget it used. Parameters are checked, naming the one at fault."""
    step_budgets = dict(data.manifest["sla"]["steps_ms"])
    for item in budgets or ():
        step, _, value = item.partition("=")
        if step not in step_budgets or not value:
            raise ParameterError(f"parameter budget: expected STEP=MS with STEP one of {', '.join(step_budgets)}, "
                                 f"got {item!r}")
        step_budgets[step] = positive_float("budget", value)
    end_to_end = positive_float("sla_ms", or_default(sla_ms, data.manifest["sla"]["end_to_end_ms"]))
    load = None if is_default(load) else positive_float("load", load)
    rec = recommendation(data, load=load, end_to_end_ms=end_to_end, step_budgets_ms=step_budgets)
    return rec, end_to_end


def plan_table(rec: Recommendation) -> pd.DataFrame:
    rows = []
    for rank, plan in enumerate([p for p in [rec.best, *rec.runners_up] if p is not None], start=1):
        rows.append({"rank": rank, "configuration": plan.config_id.replace("|", " | "),
                     "accuracy %": round(plan.accuracy * 100, 1), "end-to-end ms": round(plan.latency_ms),
                     **{f"{s} (cores×replicas, batch)": f"{e.option.cores}×{e.replicas}, b{e.option.batch_size}"
                        for s, e in plan.steps.items()},
                     "cost/hour": round(plan.cost_per_hour, 4), "cost/1k docs": round(plan.cost_per_1k_docs, 4)})
    return pd.DataFrame(rows)


def frontier_table(rec: Recommendation) -> pd.DataFrame:
    return pd.DataFrame([{"configuration": p.config_id.replace("|", " | "), "accuracy %": round(p.accuracy * 100, 1),
                          "cost/hour": round(p.cost_per_hour, 4), "cost/1k docs": round(p.cost_per_1k_docs, 4),
                          "end-to-end ms": round(p.latency_ms)} for p in rec.frontier])


# --- plots ---------------------------------------------------------------------------------------

def breakdown_png(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """One stacked bar: mean latency per document per step, the most expensive step named."""
    ordered = sorted(rows, key=lambda r: STEP_ORDER.index(r["step"]))
    fig, ax = figure((8, 2.4))
    left = 0.0
    colours = {"preprocess": "#8ecae6", "ocr": "#fb8500", "classify": "#219ebc", "extract": "#8338ec"}
    for row in ordered:
        ax.barh([0], [row["mean_ms"]], left=left, color=colours.get(row["step"]), label=f"{row['step']} "
                f"{row['mean_ms']:.0f} ms ({row['share'] * 100:.0f}%)")
        left += row["mean_ms"]
    top = max(rows, key=lambda r: r["mean_ms"])
    ax.set_yticks([])
    ax.set_xlabel("mean latency per document (ms)")
    ax.set_title(f"{title}\nmost expensive step: {top['step']} ({top['share'] * 100:.0f}% of the time)", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def version_scatter_png(cells: pd.DataFrame, x: str, xlabel: str, path: Path, log_x: bool = False) -> Path:
    """Model version vs accuracy vs latency (or throughput): one panel per step, every cell a point."""
    steps = [s for s in STEP_ORDER if s in set(cells["step"])]
    fig, axes = figure((6 * len(steps), 4.2), 1, len(steps), squeeze=False)
    for ax, step in zip(axes[0], steps, strict=True):
        part = cells[cells["step"] == step]
        for variant, group in part.groupby("variant"):
            ax.scatter(group[x], group["accuracy"] * 100, s=18 + 6 * group["cores"], alpha=0.75,
                       label=variant.split("/")[1])
        ax.set_title(step)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("pipeline accuracy (%)")
        if log_x:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="version (size: cores)", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def batch_curves_png(cells: pd.DataFrame, path: Path) -> Path:
    """Latency p95 and throughput vs batch size, one line per core count; rows: step × version."""
    keys = [(s, v) for s in STEP_ORDER for v in sorted(set(cells[cells["step"] == s]["variant"]))]
    fig, axes = figure((11, 2.6 * len(keys)), len(keys), 2, squeeze=False)
    for (step, variant), row in zip(keys, axes, strict=True):
        part = cells[cells["variant"] == variant]
        for cores, group in part.groupby("cores"):
            group = group.sort_values("batch_size")
            over = " (oversubscribed)" if group["oversubscribed"].any() else ""
            row[0].plot(group["batch_size"], group["p95_ms"], marker="o", label=f"{cores} cores{over}")
            row[1].plot(group["batch_size"], group["throughput"], marker="o", label=f"{cores} cores{over}")
        row[0].set_ylabel(f"{variant.split('/')[1]}\np95 ms/doc", fontsize=8)
        row[1].set_ylabel("docs/s", fontsize=8)
        for ax in row:
            ax.set_xlabel("batch size")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        row[0].set_title(f"{step}: latency p95", fontsize=9)
        row[1].set_title(f"{step}: throughput", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def utilisation_png(cells: pd.DataFrame, path: Path) -> Path:
    """CPU utilisation per allowed core vs batch size, one line per (version, cores)."""
    steps = [s for s in STEP_ORDER if s in set(cells["step"])]
    fig, axes = figure((6 * len(steps), 4), 1, len(steps), squeeze=False)
    for ax, step in zip(axes[0], steps, strict=True):
        for (variant, cores), group in cells[cells["step"] == step].groupby(["variant", "cores"]):
            group = group.sort_values("batch_size")
            ax.plot(group["batch_size"], group["cpu_utilisation"] * 100, marker="o",
                    label=f"{variant.split('/')[1]}, {cores} cores")
        ax.set_ylim(0, 105)
        ax.set_title(step)
        ax.set_xlabel("batch size")
        ax.set_ylabel("CPU utilisation per allowed core (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def frontier_png(rec: Recommendation, path: Path, currency: str, steps: tuple[str, ...] = ("ocr",)) -> Path:
    fig, ax = figure((7, 4))
    if rec.per_config:
        ax.scatter([p.cost_per_1k_docs for p in rec.per_config], [p.accuracy * 100 for p in rec.per_config],
                   color="#bbb", s=14, label="best plan of each feasible configuration")
    if rec.frontier:
        xs = [p.cost_per_1k_docs for p in rec.frontier]
        ys = [p.accuracy * 100 for p in rec.frontier]
        ax.step(xs, ys, where="post", color="#444")
        ax.scatter(xs, ys, color="#fb8500", zorder=3)
        for p in rec.frontier:
            label = ", ".join(p.steps[s].option.variant.split("/")[1] for s in steps if s in p.steps)
            ax.annotate(label, (p.cost_per_1k_docs, p.accuracy * 100),
                        fontsize=7, xytext=(4, -10), textcoords="offset points")
        if rec.best:
            ax.scatter([rec.best.cost_per_1k_docs], [rec.best.accuracy * 100], s=140, facecolors="none",
                       edgecolors="red", label="recommended")
            ax.legend(fontsize=8)
    ax.margins(x=0.3, y=0.1)
    ax.set_xlabel(f"cost per 1,000 documents at the target load ({currency})")
    ax.set_ylabel("pipeline accuracy (%)")
    ax.set_title("accuracy / cost frontier of feasible plans", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


# --- the report ----------------------------------------------------------------------------------

def write_profile_report(parent_run_id: str, out_dir: Path, data: ProfileData | None = None) -> Path:
    data = data or load_profile(parent_run_id)
    m = data.manifest
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = data.cells
    currency = m["prices"]["currency"]
    base = " | ".join(m["base_configuration"][s] for s in STEP_ORDER)
    breakdown_png(m["breakdown"], out_dir / "breakdown.png", f"default configuration: {base}")
    version_scatter_png(cells, "p95_ms", "latency p95 per document (ms)", out_dir / "version_accuracy_latency.png",
                        log_x=True)
    version_scatter_png(cells, "throughput", "throughput (documents/s)", out_dir / "version_accuracy_throughput.png")
    batch_curves_png(cells, out_dir / "batch_curves.png")
    utilisation_png(cells, out_dir / "utilisation.png")
    rec = recommendation(data)
    frontier_png(rec, out_dir / "frontier.png", currency, tuple(m["steps"]))
    table = profile_table(data)
    table.to_csv(out_dir / "profile.csv", index=False)
    bd = pd.DataFrame(m["breakdown"])
    bd["share"] = (bd["share"] * 100).round(1)
    bd = bd.rename(columns={"share": "share %"}).round(1)
    over = cells[cells["oversubscribed"]]
    batching = cells.groupby("variant")["batching"].first()
    md = "\n".join([
        f"# Profile {m['name']}", "",
        f"Each step variant × CPU cores × batch size ran in a process of its own restricted to that many cores "
        f"(CPU affinity) with the libraries' thread counts set to match, after {m['warmup_batches']} warm-up "
        f"batch(es), at least {m['min_batches']} timed batches and "
        f"{m.get('min_seconds', 0):g} s of timed work per cell (every input at least once). Corpus `{m['corpus']}` ({m['documents']} documents: {', '.join(m['distributions'])}; manifest "
        f"{m['corpus_manifest_sha256'][:12]}). This machine has {m['machine_cores']} cores. MLflow parent run "
        f"`{parent_run_id}`; one nested run per cell. The profile took {m['wall_s']:.0f} s.", "",
        "## Where the time goes", "",
        f"The default configuration ({base}) at the SLA batch size ({m['sla']['batch_size']}) on one core, per step "
        f"(latency per document = its batch's wall time). Most expensive: **{m['breakdown'][0]['step']}**; "
        f"profiled: **{', '.join(m['steps'])}**.", "", bd.to_markdown(index=False), "",
        "![breakdown](breakdown.png)", "",
        "## How batches run", "",
        "\n".join(f"- `{v}`: " + {"tensor": "real batching — the batch goes through the model as one tensor, "
                                             "the cores as intra-op threads",
                                   "spread": "no batch input — the batch's documents are spread over the allowed "
                                             "cores (one model instance per thread)",
                                   "sequential": "pure Python — documents one after another; extra cores idle"}[b]
                  for v, b in batching.items()), "",
        ("**Oversubscribed cells**: " + ", ".join(sorted({f'{c} cores' for c in over['cores']})) +
         f" asked for more cores than this machine has ({m['machine_cores']}); they ran with that many threads "
         "on all available cores and are marked in every table and plot. Their figures are what this machine "
         "measured, not a projection." if len(over) else "No cell asked for more cores than the machine has."), "",
        "## The table", "",
        f"Latency per document (a document waits for its batch), throughput of one process, cost = cores × wall "
        f"time × {m['prices']['price_per_core_hour']} {currency} per core-hour ({m['prices']['source']}). Accuracy: "
        "the pipeline's assertions passed with this version and every other step at its default.", "",
        table.to_markdown(index=False), "",
        "## Plots", "",
        "![version vs accuracy vs latency](version_accuracy_latency.png)", "",
        "![version vs accuracy vs throughput](version_accuracy_throughput.png)", "",
        "![latency and throughput vs batch size](batch_curves.png)", "",
        "![CPU utilisation vs batch size](utilisation.png)", "",
        "## Recommendation", "",
        f"SLA: end to end {m['sla']['end_to_end_ms']:.0f} ms p95 per document, per step "
        + ", ".join(f"{s} {v:.0f} ms" for s, v in m["sla"]["steps_ms"].items())
        + f"; target load {m['load_docs_s']:g} documents/s; replicas at most {m['max_utilisation'] * 100:.0f}% busy, "
        f"at most {m['max_replicas']} per step. Steps not profiled run their default variant on one core, at batch "
        "size 1 or the SLA batch size, as measured by the breakdown. The wait for a batch to fill is counted at "
        "every step on its own (a conservative bound: a step fed whole batches by the step before waits less).", "",
        explain(rec, end_to_end_ms=m["sla"]["end_to_end_ms"], price_per_core_hour=m["prices"]["price_per_core_hour"],
                currency=currency), "",
        "### The best plans", "", plan_table(rec).to_markdown(index=False) if rec.best else "(none feasible)", "",
        "### Accuracy / cost frontier", "",
        frontier_table(rec).to_markdown(index=False) if rec.frontier else "(none feasible)", "",
        "![frontier](frontier.png)", "",
    ])
    (out_dir / "report.md").write_text(md, encoding="utf-8")
    write_html(md, m["name"], out_dir / "report.html")
    return out_dir
