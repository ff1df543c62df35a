"""Latency stability benchmark: the same sweep three times, measured the old way and the new way, in one run.

The sweep (issue 14's): seed 9191, 16 documents per distribution, all seven distributions,
`otsu:gray | tesseract:lstm-fast-mrz | tfidf-logreg:l2 | mrz-first:v1` and its `rectify:gray` twin, batch 4,
the spec's SLA. Each repetition runs in a tracking store of its own (nothing is reused between them).

  before  no warm-up run (CARDFLOW_NO_WARMUP=1), measured once (--latency-repeats 0), and the verdict the old
          way: met when the p95 is within the budget, else missed;
  after   warm-up out of the numbers, the p95's bootstrap interval, three-way verdicts, and the uncertain and
          Pareto-front runs re-measured in stability windows.

Printed per configuration × distribution: the three p95s, their spread (max / min) and the verdicts; then,
per mode, the median and worst spread among runs whose verdict is stable, the number of (configuration,
distribution) whose verdict flips (before: any change; after: met ↔ missed only — a move to or from
`uncertain` is not a flip), and the wall time of each mode (the cost of re-measuring).

    make bench-stability            (BENCH_N, BENCH_REPEATS to change the 16 documents and the 3 runs)
    python bench/bench_stability.py --sla-ms 1300 --hog 2
                                    a budget near the p95s, and a CPU hog (two busy processes, not the sweep's)
                                    beside both modes' second run: the issue's scenario, a run under contention
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from hog import cpu_hog  # bench/hog.py (this script's folder)

from corpus.generate import GenerateSpec, generate
from mlproject.sweep import build_request, run_sweep
from steps.catalog import default_catalog
from steps.spec import load_spec

CONFIGS = {"preprocess": "otsu:gray,rectify:gray", "ocr": "tesseract:lstm-fast-mrz", "classify": "tfidf-logreg:l2",
           "extract": "mrz-first:v1"}
DISTRIBUTIONS = ("clean", "scan", "phone", "lowlight", "glare", "colorcast", "mixed")


@contextlib.contextmanager
def _hog(on: bool, tmp: Path) -> Iterator[None]:
    """The CPU hog (bench/hog.py) for the block when `on`."""
    if not on:
        yield
        return
    with cpu_hog(tmp):
        yield


def _sweep(tmp: Path, corpus: Path, mode: str, k: int, workers: int, sla_ms: float | None) -> tuple[dict, float]:
    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / f'{mode}-{k}.db'}"
    os.environ["CARDFLOW_NO_WARMUP"] = "1" if mode == "before" else "0"
    MlflowClient().search_experiments()  # the schema is created before the clock starts
    catalog = default_catalog()
    spec = load_spec(catalog)
    request = build_request(catalog=catalog, spec=spec, corpus=corpus, workers=workers, name=f"{mode}-{k}",
                            report_root=tmp / "reports", latency_repeats=0 if mode == "before" else None,
                            sla_ms=sla_ms, **CONFIGS)
    started = time.perf_counter()
    result = run_sweep(request, catalog, spec=spec, progress=False, write_report=False)
    wall = time.perf_counter() - started
    client = MlflowClient()
    out = {}
    for (_, dist), run_id in result.runs.items():
        run = client.get_run(run_id)
        m = run.data.metrics
        label = run.data.tags["cardflow.config_label"].split(" | ")[0]
        old_way = "met" if m["latency_ms.p95"] <= request.sla.end_to_end_ms else "missed"
        out[(label, dist)] = {"p95": m["latency_ms.p95"], "low": m.get("latency_ms.p95_ci_low"),
                              "high": m.get("latency_ms.p95_ci_high"),
                              "verdict": old_way if mode == "before" else run.data.tags["cardflow.sla_verdict"],
                              "measured": int(m.get("latency_measurements", 1)),
                              "other_cpu": m.get("load.other_cpu_share", 0.0)}
    return out, wall


def _flips(verdicts: list[str], mode: str) -> bool:
    certain = set(verdicts) - ({"uncertain"} if mode == "after" else set())
    return len(certain) > 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=int(os.environ.get("BENCH_N", "16")))
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_REPEATS", "3")))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sla-ms", type=float, help="end-to-end budget (default: the spec's, 3000 ms)")
    parser.add_argument("--hog", type=int, default=0, help="run number (1-based) that runs beside a CPU hog, in both "
                        "modes (default 0: none)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench-stability/bench_stability.json"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cardflow-bench-stability-"))
    corpus = tmp / "corpus"
    generate(GenerateSpec(corpus, args.n, 9191, DISTRIBUTIONS), workers=args.workers, progress=False)
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    walls: dict[str, list[float]] = {"before": [], "after": []}
    for k in range(args.repeats):  # the modes interleaved: both see the same drift of the machine
        for mode in ("before", "after"):
            with _hog(k + 1 == args.hog, tmp):
                got, wall = _sweep(tmp, corpus, mode, k, args.workers, args.sla_ms)
            runs[mode].append(got)
            walls[mode].append(wall)
            print(f"{mode} #{k + 1}: {wall:.0f} s{' (beside a CPU hog)' if k + 1 == args.hog else ''}", flush=True)
    summary = {}
    for mode in ("before", "after"):
        print(f"\n{mode}:")
        print(f"  {'configuration':<14} {'distribution':<10} {'p95 ms per run':<24} spread  verdicts")
        spreads, flips = [], 0
        for key in sorted(runs[mode][0]):
            p95s = [r[key]["p95"] for r in runs[mode]]
            verdicts = [r[key]["verdict"] for r in runs[mode]]
            spread = max(p95s) / min(p95s)
            flipped = _flips(verdicts, mode)
            flips += flipped
            if not flipped and len(set(verdicts)) == 1:
                spreads.append(spread)
            extra = "" if mode == "before" else "  measured " + ",".join(str(r[key]["measured"]) for r in runs[mode])
            print(f"  {key[0]:<14} {key[1]:<10} {' / '.join(f'{p:6.0f}' for p in p95s):<24} {spread:5.2f}×  "
                  f"{' '.join(verdicts)}{'  FLIP' if flipped else ''}{extra}")
        summary[mode] = {"median_spread": statistics.median(spreads) if spreads else None,
                         "max_spread_stable": max(spreads) if spreads else None, "flips": flips,
                         "pairs": len(runs[mode][0]), "wall_s": walls[mode]}
        print(f"  p95 spread (max/min over {args.repeats} runs) among stable verdicts: median "
              f"{summary[mode]['median_spread']:.2f}×, worst {summary[mode]['max_spread_stable']:.2f}×; "
              f"verdict flips: {flips} of {len(runs[mode][0])}; wall per sweep "
              f"{statistics.mean(walls[mode]):.0f} s")
    extra = statistics.mean(walls["after"]) - statistics.mean(walls["before"])
    print(f"\nre-measuring costs {extra:+.0f} s per sweep on average "
          f"({statistics.mean(walls['after']) / statistics.mean(walls['before']):.2f}× the old way's wall time)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "runs": {m: [{f"{a}|{b}": v for (a, b), v in r.items()}
                                                                    for r in runs[m]] for m in runs}}, indent=1))
    print(f"JSON: {args.out.resolve()}")


if __name__ == "__main__":
    main()
