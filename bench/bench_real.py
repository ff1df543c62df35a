"""Real documents: how many MRZs each configuration reads exactly, how many documents it gets every field of
right, and its time per document against the SLA, on ../shared/data/real-dev/, measured in one run.

Sets (each scored on its documents with MRZ ground truth):
  mrz_more                  25 specimen and sample passports and ID cards (TD3, TD1, French 2x36): scans, web
                            images, phone photos
  passporteye_testdata      the 4 images with full ground truth; the other 34 carry only PassportEye's validity
                            score, so for them: how many come out with every MRZ check digit valid (secondary)
  midv2020_templates_sidtd  the 2 Azerbaijani passport templates with an MRZ (the Albanian ID fronts have none)
  midv2020-rendered         MIDV-2020's real-format TD3 MRZ strings (aze_passport_mrz_vectors.json; 99 of the 100
                            are TD3, one has a 43-character line) printed by corpus/mrz_cards.py on the generator's
                            passport pages, one set per capture preset (clean, phone)
Configurations (default): the pipeline spec's default; `channel:gray | tesseract:lstm-fast-mrz | <its classify>
| mrz-only:v1`; the default before the band readers, `otsu:gray | tesseract:lstm-fast-mrz | <its classify> |
mrz-first:v1`; and the spec's default with each OCR variant whose id contains mrz, band or ensemble in the
catalog at run time (`--configs` chooses others: `default` or "preprocess | ocr | classify | extract").

Per set × configuration: documents; MRZ exact (every line read exactly: steps/scoring.py's `mrz_lines`); exact
per line; all fields exact (every ground-truth field the extract step can produce, steps/extract/layouts.FIELDS,
exactly right after steps/normalize.py); MRZ check digits all valid; failures (a step raised); seconds per
document, mean / median / p95 (a document waits for its whole batch, at the SLA's batch size, as the SLA counts
it); and the best configuration per set (most MRZs exact, then most documents with every field exact, then the
lower median). Then per configuration, over every real image (the rendered sets left out): median and p95
against configs/pipeline.yaml's SLA, and the CPU seconds per document with the share of a core the batches had
(below 100%: the machine was shared, and the wall times include waiting for a core).

    make bench-real    (python bench/bench_real.py [--sets a,b] [--configs default,...] [--limit N] [--workers 2])

Reads: ../shared/data/real-dev/ in place. Writes: the rendered corpus under reports/bench-real/ (--work) and
the table as JSON (--out, default reports/bench-real/bench_real.json). Classifiers never trained are trained
first (once), as `cardflow predict` does.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from analysis.real import missed_fields
from corpus.loaders import load
from corpus.mrz_cards import render_corpus
from corpus.records import DocumentRef
from mlproject.sweep.execute import ChunkResult, run_tasks
from mlproject.sweep.plan import Task
from mlproject.train import ensure_trained
from steps.catalog import Catalog, Configuration, default_catalog
from steps.extract.layouts import FIELDS
from steps.runner import DocumentOutcome
from steps.scoring import document_assertions
from steps.spec import PipelineSpec, load_spec

ROOT = Path(__file__).resolve().parent.parent
REAL_DEV = ROOT.parent / "shared" / "data" / "real-dev"
RENDERED = "midv2020-rendered"
SETS = ("mrz_more", "passporteye_testdata", "midv2020_templates_sidtd", RENDERED)
VECTORS = "midv2020_templates_sidtd/aze_passport_mrz_vectors.json"
OCR_WORDS = ("mrz", "band", "ensemble")  # an OCR variant whose name holds one of these is benchmarked
MRZ_ONLY = ("preprocess/channel:gray", "ocr/tesseract:lstm-fast-mrz", None, "extract/mrz-only:v1")
BEFORE = ("preprocess/otsu:gray", "ocr/tesseract:lstm-fast-mrz", None, "extract/mrz-first:v1")  # issue 11's "today"


@dataclass(frozen=True)
class RealSet:
    """One row group of the table: its documents and where they come from."""

    name: str
    docs: tuple[DocumentRef, ...]
    source: str
    real_images: bool


# ── what is run ──────────────────────────────────────────────────────────────────────────────────


def default_configurations(catalog: Catalog, spec: PipelineSpec) -> dict[str, str]:
    """Configuration id -> why it is in the table: the spec's default, the MRZ-only configuration, and the
    default with every OCR variant of the catalog whose name holds one of OCR_WORDS."""
    base = spec.default
    chosen = {base.id: "the pipeline spec's default"}
    preprocess, ocr, _, extract = MRZ_ONLY
    mrz_only = Configuration(preprocess, ocr, base.classify, extract)
    if all(vid in catalog.ids() for vid in mrz_only.ids()):
        chosen.setdefault(mrz_only.id, "MRZ only")
    before = Configuration(BEFORE[0], BEFORE[1], base.classify, BEFORE[3])
    if all(vid in catalog.ids() for vid in before.ids()):
        chosen.setdefault(before.id, "the default before the MRZ band readers")
    for vid in catalog.ids("ocr"):
        if any(word in vid.split("/", 1)[1] for word in OCR_WORDS):
            chosen.setdefault(dataclasses.replace(base, ocr=vid).id, f"the default with {vid}")
    return chosen


def parse_configurations(text: str | None, catalog: Catalog, spec: PipelineSpec) -> dict[str, str]:
    """--configs: comma-separated, each `default` or four variants "preprocess | ocr | classify | extract"."""
    if not text:
        return default_configurations(catalog, spec)
    chosen: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        config = spec.default if item == "default" else catalog.parse(item)
        chosen.setdefault(config.id, "the pipeline spec's default" if config == spec.default else "--configs")
    return chosen


def load_sets(names: Sequence[str], real_dev: Path, work: Path, distributions: Sequence[str],
              limit: int | None, rendered_limit: int | None) -> list[RealSet]:
    """The documents of each named set (the first `limit` of each; of the rendered one, the first
    `rendered_limit` vectors under each capture, at most `limit`), the rendered one rendered first (kept
    between runs: it is rebuilt only when its vectors, presets or renderer change)."""
    sets = []
    for name in names:
        if name == RENDERED:
            first = min((n for n in (limit, rendered_limit) if n), default=None)
            out = work / (f"{RENDERED}-first{first}" if first else RENDERED)
            manifest = render_corpus(real_dev / VECTORS, out, tuple(distributions), limit=first)
            docs = load(out).documents
            for dist in distributions:
                part = tuple(d for d in docs if d.distribution == dist)
                sets.append(RealSet(f"{RENDERED}/{dist}", part, manifest["description"], real_images=False))
            continue
        corpus = load(real_dev / name)
        docs = corpus.documents
        if name == "midv2020_templates_sidtd":
            docs = tuple(d for d in docs if d.truth and d.truth.mrz_lines)
        sets.append(RealSet(name, docs[:limit], str(real_dev / name), real_images=True))
    return sets


def plan(sets: Sequence[RealSet], configs: Sequence[Configuration], batch_size: int) -> list[Task]:
    """Tasks of two batches each, per set and preprocessing prefix (its configurations share the prefix)."""
    tasks = []
    step = 2 * batch_size
    for real in sets:
        for prefix in dict.fromkeys(c.preprocess for c in configs):
            ids = tuple(c.id for c in configs if c.preprocess == prefix)
            for k, first in enumerate(range(0, len(real.docs), step)):
                tasks.append(Task((real.name, prefix), k, real.docs[first:first + step], ids, batch_size, True))
    return tasks


def run(sets: Sequence[RealSet], configs: Sequence[Configuration], catalog: Catalog, batch_size: int, workers: int,
        progress: bool) -> dict[tuple[str, str], list[DocumentOutcome]]:
    """(set, configuration id) -> outcomes in document order."""
    tasks = plan(sets, configs, batch_size)
    chunks: dict[tuple[str, str], list[ChunkResult]] = {}
    bar = tqdm(total=sum(len(t.docs) for t in tasks), desc="bench-real", unit="doc", disable=not progress)

    def collect(chunk: ChunkResult) -> None:
        chunks.setdefault(chunk.group, []).append(chunk)
        bar.update(len(next(iter(chunk.outcomes.values()))))

    run_tasks(tasks, workers, catalog, collect)
    bar.close()
    outcomes: dict[tuple[str, str], list[DocumentOutcome]] = {}
    for (set_name, _), parts in chunks.items():
        for chunk in sorted(parts, key=lambda c: c.chunk):
            for config_id, found in chunk.outcomes.items():
                outcomes.setdefault((set_name, config_id), []).extend(found)
    return outcomes


# ── scoring ──────────────────────────────────────────────────────────────────────────────────────


def document_score(outcome: DocumentOutcome, fields: Iterable[str] = FIELDS) -> dict[str, Any]:
    """One document: MRZ exact (all lines) and per line, every producible ground-truth field exact, MRZ check
    digits valid, seconds. Exactness is steps/scoring.py's (`mrz_lines`, `field.<name>`), the fields counted
    the sweep report's (analysis/real.py)."""
    truth, ext = outcome.truth, outcome.extraction
    failed = outcome.failure is not None
    read = tuple(ext.mrz_lines) if ext is not None and not failed else ()
    row: dict[str, Any] = {"doc_id": outcome.doc_id, "seconds": outcome.end_to_end_ms / 1000.0,
                           "cpu_seconds": outcome.cpu_ms / 1000.0,
                           "failure": outcome.failure.to_json() if failed else None,
                           "mrz_valid": bool(ext is not None and not failed and ext.mrz_valid),
                           "mrz_read": list(read), "has_mrz_truth": bool(truth and truth.mrz_lines)}
    if truth is None:
        return row
    assertions = document_assertions(truth, outcome)
    if truth.mrz_lines:
        row["mrz_exact"] = assertions["mrz_lines"]
        row["lines_exact"] = [k < len(read) and read[k] == line for k, line in enumerate(truth.mrz_lines)]
    missed = missed_fields(assertions, fields)
    if missed is not None:
        row["fields_exact"], row["fields_missed"] = not missed, missed
    return row


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def seconds_summary(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None, "p95": None}
    return {"mean": statistics.fmean(values), "median": statistics.median(values),
            "p95": float(np.percentile(np.asarray(values, float), 95))}


def set_score(outcomes: Sequence[DocumentOutcome], sla_s: float, fields: Iterable[str] = FIELDS,
              meta: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One set × configuration. Documents without MRZ ground truth count only for time, failures and (where
    `meta` gives PassportEye's `expected_valid_score`) the secondary validity figure."""
    rows = [document_score(o, fields) for o in outcomes]
    scored = [r for r in rows if r["has_mrz_truth"]]
    with_fields = [r for r in scored if "fields_exact" in r]
    width = max((len(r["lines_exact"]) for r in scored), default=0)
    per_line = []
    for k in range(width):
        flags = [r["lines_exact"][k] for r in scored if len(r["lines_exact"]) > k]
        per_line.append({"line": k + 1, "exact": sum(flags), "of": len(flags)})
    seconds = seconds_summary([r["seconds"] for r in rows])
    wall = sum(r["seconds"] for r in rows)
    out: dict[str, Any] = {
        "documents": len(rows), "scored": len(scored), "failures": sum(r["failure"] is not None for r in rows),
        "mrz_exact": sum(r["mrz_exact"] for r in scored),
        "mrz_exact_share": _share(sum(r["mrz_exact"] for r in scored), len(scored)),
        "mrz_line_exact": per_line,
        "fields_exact": sum(r["fields_exact"] for r in with_fields), "fields_scored": len(with_fields),
        "fields_exact_share": _share(sum(r["fields_exact"] for r in with_fields), len(with_fields)),
        "fields_missed": dict(Counter(name for r in with_fields for name in r["fields_missed"]).most_common()),
        "mrz_valid": sum(r["mrz_valid"] for r in scored),
        "mrz_valid_share": _share(sum(r["mrz_valid"] for r in scored), len(scored)),
        "seconds": seconds, "cpu_seconds": seconds_summary([r["cpu_seconds"] for r in rows]),
        "core_share": sum(r["cpu_seconds"] for r in rows) / wall if wall else None,
        "within_sla": {key: seconds[key] is not None and seconds[key] <= sla_s for key in ("median", "p95")},
        "per_document": rows,
    }
    unscored = [r for r in rows if not r["has_mrz_truth"]]
    if unscored:
        author = [r for r in unscored if _score_of(meta, r["doc_id"]) == 100]
        out["validity_only"] = {"documents": len(unscored), "mrz_valid": sum(r["mrz_valid"] for r in unscored),
                                "passporteye_100": len(author),
                                "mrz_valid_of_passporteye_100": sum(r["mrz_valid"] for r in author)}
    return out


def _score_of(meta: Mapping[str, Mapping[str, Any]] | None, doc_id: str) -> Any:
    return (meta or {}).get(doc_id, {}).get("expected_valid_score")


def best_configuration(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Most MRZs exact, then most documents with every field exact, then the lower median time."""
    return max(results, key=lambda r: (r["mrz_exact"], r["fields_exact"], -(r["seconds"]["median"] or 0.0)))


# ── the report ───────────────────────────────────────────────────────────────────────────────────


def _count(count: int, total: int) -> str:
    return f"{count}/{total} {count / total:6.1%}" if total else "–"


def _line(result: dict[str, Any], label_width: int) -> str:
    s = result["seconds"]
    lines = " ".join(f"L{p['line']} {p['exact']}/{p['of']}" for p in result["mrz_line_exact"]) or "–"
    times = "   –" if s["median"] is None else f"{s['mean']:5.2f} {s['median']:6.2f} {s['p95']:5.2f}"
    return (f"  {result['label']:<{label_width}}  {_count(result['mrz_exact'], result['scored']):>13}  {lines:<22}"
            f"{_count(result['fields_exact'], result['fields_scored']):>13}  "
            f"{_count(result['mrz_valid'], result['scored']):>13}  {result['failures']:>4}  {times}")


def print_report(report: dict[str, Any], write: Callable[[str], None] = print) -> None:
    """The table: one block per set, a row per configuration, the best of the set; then time against the SLA."""
    sla_s = report["sla"]["end_to_end_s"]
    width = max(len(c["label"]) for c in report["configurations"])
    write(f"real-document benchmark: {len(report['configurations'])} configurations × {len(report['sets'])} sets, "
          f"batch size {report['batch_size']}, {report['workers']} workers, {report['wall_s']:.0f} s wall "
          f"(commit {report['git_commit'][:10]})")
    for c in report["configurations"]:
        write(f"  {c['label']:<{width}}  ({c['why']})")
    header = (f"  {'configuration':<{width}}  {'MRZ exact':>13}  {'exact per line':<22}{'all fields':>13}  "
              f"{'MRZ valid':>13}  {'fail':>4}  s/doc mean median   p95")
    for real in report["sets"]:
        rows = [r for r in report["results"] if r["set"] == real["name"]]
        first = rows[0]
        write(f"\n{real['name']}: {first['documents']} documents, {first['scored']} with MRZ ground truth — "
              f"{real['source']}")
        write(header)
        for row in rows:
            write(_line(row, width))
            if row["fields_missed"]:
                missed = ", ".join(f"{name} {n}" for name, n in row["fields_missed"].items())
                write(f"  {'':<{width}}  fields missed (documents): {missed}")
            if "validity_only" in row:
                v = row["validity_only"]
                write(f"  {'':<{width}}  without full ground truth: every MRZ check digit valid on {v['mrz_valid']}/"
                      f"{v['documents']} (on {v['mrz_valid_of_passporteye_100']}/{v['passporteye_100']} of those "
                      f"PassportEye's author scored 100)")
        write(f"  best: {report['best'][real['name']]}")
    write(f"\ntime per document on every real image (rendered sets left out) against the SLA "
          f"(p95 ≤ {sla_s:.1f} s end to end at batch size {report['batch_size']}):")
    for c in report["configurations"]:
        t = report["real_images"].get(c["id"])
        if t and t["median"] is not None:
            write(f"  {c['label']:<{width}}  {t['documents']:>3} documents  median {t['median']:5.2f} s "
                  f"({'within' if t['median'] <= sla_s else 'OUTSIDE'})  p95 {t['p95']:5.2f} s "
                  f"({'within' if t['p95'] <= sla_s else 'OUTSIDE'});  CPU per document median "
                  f"{t['cpu']['median']:5.2f} s, p95 {t['cpu']['p95']:5.2f} s (the batches had "
                  f"{t['core_share']:.0%} of a core)")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the table and the JSON hold."""
    started = time.perf_counter()
    catalog = default_catalog()
    spec = load_spec(catalog)
    chosen = parse_configurations(args.configs, catalog, spec)
    configs = [Configuration(*cid.split("|")) for cid in chosen]
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise SystemExit(f"unknown set(s) {', '.join(unknown)}; sets: {', '.join(SETS)}")
    sets = load_sets(names, args.real_dev, args.work, tuple(args.rendered_distributions.split(",")), args.limit,
                     args.rendered_limit)
    ensure_trained(catalog, [c.classify for c in configs], spec=spec)
    batch_size = args.batch_size or spec.sla.batch_size
    outcomes = run(sets, configs, catalog, batch_size, args.workers, progress=not args.no_progress)
    sla_s = spec.sla.end_to_end_ms / 1000.0
    results = []
    for real in sets:
        meta = {d.doc_id: d.meta for d in real.docs}
        for config in configs:
            score = set_score(outcomes[(real.name, config.id)], sla_s, meta=meta)
            results.append({"set": real.name, "configuration": config.id, "label": config.label, **score})
    real_images = {}
    real = {s.name: s.real_images for s in sets}
    for config in configs:
        rows = [row for r in results if r["configuration"] == config.id and real[r["set"]] for row in r["per_document"]]
        wall = sum(row["seconds"] for row in rows)
        real_images[config.id] = {"documents": len(rows), **seconds_summary([row["seconds"] for row in rows]),
                                  "cpu": seconds_summary([row["cpu_seconds"] for row in rows]),
                                  "core_share": sum(row["cpu_seconds"] for row in rows) / wall if wall else None}
    return {
        "generated": dt.datetime.now().isoformat(timespec="seconds"), "git_commit": git_commit(),
        "real_dev": str(args.real_dev), "batch_size": batch_size, "workers": args.workers,
        "sla": {"end_to_end_s": sla_s, "batch_size": spec.sla.batch_size},
        "fields_scored": list(FIELDS),
        "configurations": [{"id": cid, "label": Configuration(*cid.split("|")).label, "why": why}
                           for cid, why in chosen.items()],
        "sets": [{"name": s.name, "documents": len(s.docs), "source": s.source, "real_images": s.real_images}
                 for s in sets],
        "results": results,
        "best": {s.name: best_configuration([r for r in results if r["set"] == s.name])["label"] for s in sets},
        "real_images": real_images,
        "wall_s": time.perf_counter() - started,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of: {', '.join(SETS)}")
    parser.add_argument("--configs", default=None,
                        help="comma-separated configurations: 'default' or \"preprocess | ocr | classify | extract\" "
                             "(default: the spec's default, MRZ-only, and every OCR variant named *mrz*, *band*, "
                             "*ensemble*)")
    parser.add_argument("--limit", type=int, default=None, help="at most N documents per set")
    parser.add_argument("--rendered-limit", type=int, default=0,
                        help="render only the first N of the 99 TD3 vectors under each capture (default 0: all)")
    parser.add_argument("--rendered-distributions", default="clean,phone",
                        help="capture presets of the rendered set (configs/distributions.yaml)")
    parser.add_argument("--batch-size", type=int, default=None, help="documents per batch (default: the SLA's)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one core each)")
    parser.add_argument("--real-dev", type=Path, default=REAL_DEV, help="the real-dev folder (read in place)")
    parser.add_argument("--work", type=Path, default=ROOT / "reports" / "bench-real",
                        help="where the rendered corpus is written (kept between runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench-real" / "bench_real.json",
                        help="the table as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    report = benchmark(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print_report(report)
    print(f"\nJSON: {args.out}")
    return report


if __name__ == "__main__":
    main()
