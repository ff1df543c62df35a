"""Successive halving vs the exhaustive sweep, in one run on the same corpus, grid and pool (`make bench-search`).

Both evaluate with the sweep's own tasks (shared prefixes once per document, the local process pool) and log
nothing to MLflow, so what is compared is the search alone. Per distribution it prints the best configuration
each finds and its accuracy on the whole corpus, the gap in accuracy points and where the halving's winner ranks
in the exhaustive order; then the work each needed: document-step computations (one step variant on one
document, a shared prefix counted once), their summed compute seconds, and wall time.

Target (issue 13): halving within 1 accuracy point of the exhaustive best on >= 95% of the distributions while
computing <= 15% of the exhaustive work. The default grid is the whole catalog except the slow OCR engines
(legacy Tesseract, RapidOCR, the band readers: 1.5-3 s a page here), so that both searches finish in ~15 minutes
on 2 cores; --ocr takes any list.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FAST_OCR = "tesseract:lstm-fast,tesseract:lstm-fast-mrz"


def _accuracy(outcomes) -> float:
    from steps.scoring import Summary

    summary = Summary()
    for outcome in outcomes:
        summary.add(outcome)
    return summary.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=32, help="generated documents per distribution (default 32)")
    parser.add_argument("--distributions", default="clean,phone", help="comma-separated (default clean,phone)")
    parser.add_argument("--seed", type=int, default=4141, help="corpus seed (default 4141)")
    parser.add_argument("--ocr", default=FAST_OCR, help=f"OCR variants (default {FAST_OCR})")
    parser.add_argument("--batch-size", type=int, default=2, help="documents per batch (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="pool processes (default 2)")
    parser.add_argument("--settings", default="5:2,4:2,3:4", help="halving settings to try, "
                        "eta:first_docs,… (default 5:2 — the CLI's —, 4:2 and 3:4)")
    args = parser.parse_args()

    from corpus.generate import GenerateSpec, generate
    from mlproject.sweep import SweepResult, build_request, search_evaluator
    from mlproject.sweep.halving import SearchParams, run_halving
    from mlproject.train import ensure_trained
    from steps.catalog import default_catalog
    from steps.spec import load_spec

    catalog = default_catalog()
    spec = load_spec(catalog)
    dists = tuple(args.distributions.split(","))
    work = Path(tempfile.mkdtemp(prefix="cardflow-bench-search-"))
    generate(GenerateSpec(work / "corpus", args.docs, args.seed, dists), workers=args.workers, progress=False)
    grid = {step: ",".join(v.split("/", 1)[1] for v in catalog.ids(step)) for step in ("preprocess", "classify",
                                                                                        "extract")}
    req = build_request(catalog=catalog, spec=spec, corpus=work / "corpus", distributions=",".join(dists),
                        batch_size=args.batch_size, workers=args.workers, ocr=args.ocr, **grid)
    ensure_trained(catalog, req.grid.classify, workers=args.workers, spec=spec)
    configs = req.configurations
    docs = {d: [doc for doc in req.corpus if doc.distribution == d] for d in dists}
    todo = {d: list(configs) for d in dists}
    print(f"{len(configs)} configurations ({' × '.join(str(len(v)) for v in req.grid.as_dict().values())}) × "
          f"{len(dists)} distributions, {args.docs} documents each, batch {args.batch_size}, {args.workers} workers")

    exhaustive = SweepResult(parent_run_id="", report_dir=None)
    started = time.perf_counter()
    found = search_evaluator(req, catalog, exhaustive)(todo, docs)
    wall_full = time.perf_counter() - started
    accuracy = {key: _accuracy(outcomes) for key, outcomes in found.items()}
    full_work = sum(exhaustive.node_docs.values())
    full_seconds = sum(exhaustive.node_seconds.values())
    print(f"exhaustive: {wall_full:.0f} s wall, {full_work} document-step computations, {full_seconds:.0f} s compute")

    rows, summary = [], []
    for setting in args.settings.split(","):
        eta, first = (int(x) for x in setting.split(":"))
        result = SweepResult(parent_run_id="", report_dir=None)
        started = time.perf_counter()
        search = run_halving(todo, docs, SearchParams("halving", eta, first), args.batch_size,
                             search_evaluator(req, catalog, result))
        wall = time.perf_counter() - started
        close = 0
        for dist in dists:
            order = sorted((c.id for c in configs), key=lambda cid: -accuracy[(cid, dist)])
            best = order[0]
            winner = search.survivors(dist)[0]
            gap = 100 * (accuracy[(best, dist)] - accuracy[(winner, dist)])
            close += gap <= 1.0
            stages = " → ".join(str(len(s.evaluated)) for s in search.stages[dist])
            rows.append((f"{eta}:{first}", dist, best, 100 * accuracy[(best, dist)], winner,
                         100 * accuracy[(winner, dist)], gap, order.index(winner) + 1, stages))
        work_share = sum(result.node_docs.values()) / full_work
        summary.append((f"{eta}:{first}", close, len(dists), work_share, sum(result.node_seconds.values()) / full_seconds,
                        wall / wall_full))

    print("\n| eta:first | distribution | exhaustive best | % | halving's winner | % | gap pts | its exhaustive rank "
          "| configurations per stage |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]} | {r[5]:.1f} | {r[6]:.1f} | {r[7]} | {r[8]} |")
    print("\n| eta:first | within 1 pt | document-step computations vs exhaustive | compute seconds | wall |"
          "\n|---|---|---|---|---|")
    for s in summary:
        print(f"| {s[0]} | {s[1]}/{s[2]} | {s[3]:.1%} | {s[4]:.1%} | {s[5]:.1%} |")
    print("(targets: within 1 point on >= 95% of the distributions, <= 15% of the exhaustive work)")


if __name__ == "__main__":
    main()
