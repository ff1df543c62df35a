"""The written answer of a sweep: reports/<sweep>/report.md and report.html with tables and plots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import markdown
import pandas as pd

from analysis.plots import accuracy_vs_latency_png, heatmap_png, search_png, step_breakdown_png
from analysis.real import CorpusInfo, best_by_mrz, describe_corpus, mrz_table
from analysis.sweep import (
    SweepData,
    accuracy_pivot,
    best_per_distribution,
    load_sweep,
    results_table,
    robustness,
    search_table,
)
from corpus.capture import load_presets
from steps.base import STEPS
from steps.catalog import Catalog

OBJECTIVE = (
    "CardFlow reads identity documents: a photo or scan goes through **preprocess** (colour channel, "
    "binarisation, contrast, rectification) → **OCR** (Tesseract in several model versions, RapidOCR) → "
    "**classify** (level 1: document type; level 2: issuer × type) → **extract** (fields, and the MRZ with its "
    "check digits). A configuration picks one variant per step. This report answers: which configuration is "
    "best, under which capture distribution, and within the latency SLA?"
)
ASSERTIONS = [
    ("class_l1", "the predicted document type is right"),
    ("class_l2", "the predicted issuer × type is right (a level-1 classifier predicts none: fails)"),
    ("field.<name>", "each printed field is read exactly right after normalisation (case, diacritics, separators; dates as ISO)"),
    ("mrz_lines", "every MRZ line is read exactly right (documents with an MRZ)"),
    ("mrz_valid", "every check digit of the MRZ as read is valid (documents with an MRZ)"),
]


def _escape(value):
    """A cell with its '|' escaped (configuration labels carry them), so that a markdown table keeps its columns."""
    return value.replace("|", "\\|") if isinstance(value, str) else value


def _md_table(df: pd.DataFrame, index: bool = False) -> str:
    cells = df.map(_escape)
    if index:
        cells.index = [_escape(label) for label in cells.index]
    return cells.to_markdown(index=index)


def _catalog_section(data: SweepData, catalog: Catalog) -> tuple[str, str]:
    grid = data.manifest["grid"]
    rows, counts = [], []
    possible = 1
    for step in STEPS:
        total = len(catalog.ids(step))
        possible *= total
        counts.append({"step": step, "variants in the catalog": total, "in this sweep": len(grid[step])})
        for vid in grid[step]:
            variant = catalog.get(vid)
            rows.append({"step": step, "variant": vid, "what": variant.description})
    configs = 1
    for step in STEPS:
        configs *= len(grid[step])
    runs = configs * len(data.manifest["distributions"])
    summary = (f"{_md_table(pd.DataFrame(counts))}\n\n**{possible}** configurations are possible with the whole catalog; "
               f"this sweep ran **{configs}** configurations × **{len(data.manifest['distributions'])}** distributions "
               f"= **{runs}** runs.")
    return _md_table(pd.DataFrame(rows)), summary


def _data_section(data: SweepData, info: CorpusInfo) -> str:
    df = data.runs
    docs = df.groupby("distribution", sort=False)["documents"].max()
    presets = load_presets()
    # A real corpus's distribution is its dataset's name, not a capture preset: its images are as captured.
    rows = [{"distribution": d, "documents": int(docs[d]),
             "capture": presets[d].description if d in presets else "as photographed or scanned (real images)"}
            for d in data.manifest["distributions"] if d in docs.index]
    return (f"Corpus `{data.manifest['corpus']}` (manifest sha256 `{data.manifest['corpus_manifest_sha256'][:16]}…`): "
            f"{info.text}\n\n" + _md_table(pd.DataFrame(rows)))


def _mrz_section(data: SweepData, client, csv_path: Path) -> str:
    """Exact MRZ and all-fields figures per configuration, for a corpus whose MRZ ground truth is real (written
    to `csv_path` too); empty when no run has MRZ ground truth."""
    table = mrz_table(data, client)
    if table.empty:
        return ""
    table.to_csv(csv_path, index=False)
    return "\n".join([
        "## Real documents: MRZ read exactly, every field right", "",
        "Per configuration and distribution, over the documents with MRZ ground truth: **MRZ exact** — every MRZ "
        "line read exactly (the `mrz_lines` assertion); **all fields exact** — every ground-truth field the extract "
        "step can produce read exactly after normalisation; the MRZ's check digits all valid as read; documents a "
        "step failed on. A real issuer's level-2 class is not one the classifiers were trained on, so the overall "
        "accuracy in the tables below understates these documents: these columns are the ones to compare. Also "
        "in `mrz_real.csv`.", "",
        "Best per distribution (most MRZs exact, then most documents with every field right, then lower p95):", "",
        _md_table(best_by_mrz(table)), "", _md_table(table), ""])


def write_sweep_report(parent_run_id: str, out_dir: Path, catalog: Catalog, client=None) -> Path:
    """Write report.md, report.html and the plots for a sweep's parent run; returns the folder. The catalog
    describes the variants and counts the configurations possible."""
    data = load_sweep(parent_run_id, client)
    info = describe_corpus(data.manifest["corpus"])
    out_dir.mkdir(parents=True, exist_ok=True)
    df = data.runs
    sla = data.manifest["sla"]
    measure_share = (data.manifest.get("measuring") or {}).get("contention", 0.25)
    accuracy_vs_latency_png(df, sla["end_to_end_ms"], out_dir / "accuracy_vs_latency.png")
    pivot = accuracy_pivot(df)
    heatmap_png(pivot, out_dir / "accuracy_heatmap.png", "accuracy (%) per configuration × distribution")
    table = results_table(df)
    table.to_csv(out_dir / "results.csv", index=False)
    best = best_per_distribution(df)
    robust = robustness(df)
    where = _breakdown_section(df, best, robust.index[0], out_dir / "step_breakdown.png")
    variants_table, counts = _catalog_section(data, catalog)
    top = robust.index[0]
    budgets = ", ".join(f"{s} {v:.0f} ms" for s, v in sla["steps_ms"].items())
    md = "\n".join([
        f"# CardFlow sweep report — {data.manifest['name']}",
        "",
        f"Generated {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} from MLflow parent run `{parent_run_id}`. "
        f"Batch size {data.manifest['batch_size']} (fixed across configurations). Latency is per document "
        f"(a document waits for its whole batch), end to end; the SLA is p95 ≤ {sla['end_to_end_ms']:.0f} ms "
        f"end to end (per-step budgets: {budgets}). Every p95 comes with a 95% interval (a bootstrap over the "
        "batches), and the verdict is three-way: **met** when the interval is under the budget, **missed** when it "
        "is over it, **uncertain** when it straddles it. Uncertain runs and those on a Pareto front were "
        "re-measured: more passes over the same batches until two successive p95 estimates agree (`measured` "
        "counts the passes); the first run of each variant in a "
        "worker is a warm-up, never counted. A run measured while other processes took more than "
        f"{measure_share:.0%} of the CPUs is flagged *heavy* under `contention`.{_measuring_note(data)}",
        "", "## The pipeline", "", OBJECTIVE, "",
        "```\nimage ─▶ preprocess ─▶ ocr ─▶ classify ─▶ extract ─▶ prediction\n```", "",
        "## Data and distributions", "", _data_section(data, info), "",
        "## Models and versions per step", "", variants_table, "",
        "## How many configurations", "", counts, "",
        "## Assertions", "",
        "A configuration's accuracy is assertions passed / assertions evaluated over all its documents; a document "
        "that failed in a step fails all of its assertions.", "",
        "\n".join(f"- `{name}`: {what}" for name, what in ASSERTIONS), "",
        *([_mrz_section(data, client, out_dir / "mrz_real.csv")] if info.real_mrz else []),
        *_search_section(data, out_dir),
        "## Best configuration per distribution", "",
        "Most accurate configuration surely meeting the SLA (verdict met; ties: lower p95 latency); "
        "`uncertain` counts the configurations near the line.", "", _md_table(best), "",
        "## Most robust configuration", "",
        f"**{top}** — the best worst case across distributions ({robust.iloc[0]['worst %']:.1f}% on "
        f"{robust.iloc[0]['worst distribution']}; mean {robust.iloc[0]['mean %']:.1f}%).", "",
        _md_table(robust.head(10), index=True), "",
        "## Where the time goes", "", where, "",
        "## Accuracy vs latency", "", "![accuracy vs latency](accuracy_vs_latency.png)", "",
        "## Accuracy per configuration and distribution", "", "![heat map](accuracy_heatmap.png)", "",
        "## Every configuration and distribution", "",
        "Accuracy as assertions passed / total and %, latency per document p50/p95 (ms) with the p95's 95% "
        "interval, SLA verdict, measurements, contention. Also in `results.csv`.", "", _md_table(table), "",
    ])
    (out_dir / "report.md").write_text(md, encoding="utf-8")
    write_html(md, data.manifest["name"], out_dir / "report.html")
    return out_dir


def _search_section(data: SweepData, out_dir: Path) -> list[str]:
    """A halving search (sweep.json `search`): the stages per distribution and where the winner ranked."""
    table = search_table(data.manifest)
    if table.empty:
        return []
    search = data.manifest["search"]
    search_png(table, out_dir / "search.png")
    pruned = len(search.get("pruned", []))
    return ["## The search", "",
            f"Successive halving on documents (eta {search['search_eta']}, {search['search_first_docs']} documents "
            "first): every configuration on the first documents of each distribution, the best 1/eta of them on eta "
            "times as many, and so on to the whole corpus; the tables below rank only the configurations that got "
            f"there. The {pruned} pruned (configuration, distribution) pairs are runs too, tagged "
            "`cardflow.search=pruned` with `cardflow.search_stage` and `cardflow.search_documents`.", "",
            _md_table(table), "", "![search](search.png)", ""]


def _measuring_note(data) -> str:
    """What the re-measuring cost, from the parent run's sweep.json."""
    info = data.manifest.get("measuring") or {}
    if not info:
        return ""
    return (f" This sweep re-measured {info.get('runs_remeasured', 0)} runs in {info.get('windows', 0)} passes "
            f"({info.get('seconds', 0.0):.0f} s); verdicts at the end: {info.get('met', 0)} met, "
            f"{info.get('uncertain', 0)} uncertain, {info.get('missed', 0)} missed.")


def _breakdown_section(df: pd.DataFrame, best: pd.DataFrame, robust_label: str, path: Path) -> str:
    """Per-step mean latency of the best configuration per distribution and of the most robust one."""
    bars: dict[str, dict[str, float]] = {}
    picks = [(r["configuration"], r["distribution"]) for _, r in best.iterrows()]
    picks += [(robust_label, d) for d in df["distribution"].unique()]
    for label, dist in picks:
        row = df[(df["label"] == label) & (df["distribution"] == dist)]
        if row.empty:
            continue
        means = {s: float(row.iloc[0][f"step_{s}_mean"]) for s in STEPS if pd.notna(row.iloc[0].get(f"step_{s}_mean"))}
        if means:
            bars[f"{label} @ {dist}"] = means
    if not bars:
        return "(no per-step means recorded)"
    step_breakdown_png(bars, path, "mean latency per document per step")
    tops = {}
    for means in bars.values():
        top = max(means, key=means.get)
        tops[top] = tops.get(top, 0) + 1
    top, count = max(tops.items(), key=lambda kv: kv[1])
    return (f"Mean latency per document per step for the best configuration of each distribution and the most robust "
            f"one. The most expensive step is **{top}** in {count} of {len(bars)} of them; every run also records "
            "`step.<step>.latency_ms.mean` and the tag `cardflow.most_expensive_step`.\n\n"
            "![per-step breakdown](step_breakdown.png)")


def write_html(md: str, title: str, path: Path) -> Path:
    """The markdown report as a standalone HTML page (pictures referenced beside it)."""
    html = markdown.markdown(md, extensions=["tables", "fenced_code"])
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
             "table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:3px 6px}"
             "th{background:#f0f0f0}img{max-width:100%}code{background:#f5f5f5}")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
                    f"<style>{style}</style></head><body>{html}</body></html>", encoding="utf-8")
    return path
