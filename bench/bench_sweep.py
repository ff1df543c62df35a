"""Sweep benchmark: shared-prefix reuse against its floor and against a naive sweep, measured in one run.

Prints, on the same corpus and default grid (configs/pipeline.yaml):
  - the sweep's wall time (with reuse, MLflow logging included);
  - the floor: the unique step computations alone (sum of their wall times / workers);
  - the wall time of a naive sweep that recomputes every configuration from scratch;
  - reuse honesty: 3 configurations re-run end to end with the plain pipeline runner (no reuse, same
    batches, same number of concurrent processes), their mean latency per document against the
    latency the reusing sweep attributed to them.
Run with `make bench-sweep` (N documents per distribution: BENCH_N, default 3).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from corpus.generate import GenerateSpec, generate
from corpus.loaders import load
from mlproject.sweep import build_request, run_sweep
from steps.catalog import Configuration, default_catalog
from steps.pipeline import Pipeline

_PIPE: dict = {}


def _plain(task: tuple[str, list]) -> list[float]:
    config_id, docs = task
    catalog = _PIPE.setdefault("catalog", default_catalog())
    pipeline = Pipeline(Configuration(*config_id.split("|")), catalog)
    pipeline.load()
    return [o.end_to_end_ms for o in pipeline.run_batch(docs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=int(os.environ.get("BENCH_N", "3")), help="documents per distribution")
    parser.add_argument("--distributions", default="clean,phone")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cardflow-bench-sweep-"))
    corpus = tmp / "corpus"
    generate(GenerateSpec(corpus, args.n, 3, tuple(args.distributions.split(","))), workers=args.workers, progress=False)
    timings = {}
    results = {}
    for mode, reuse in (("reuse", True), ("naive", False)):
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / f'{mode}.db'}"
        request = build_request(corpus=corpus, distributions=None, workers=args.workers, reuse=reuse,
                                name=f"bench-{mode}", report_root=tmp / "reports")
        started = time.perf_counter()
        results[mode] = run_sweep(request, progress=False, write_report=False)
        timings[mode] = time.perf_counter() - started
    reuse = results["reuse"]
    floor = reuse.unique_compute_s / args.workers
    configs = len(request.configurations)
    print(f"sweep benchmark: {configs} configurations × {len(request.distributions)} distributions, "
          f"{len(load(corpus))} documents, batch size {request.batch_size}, {args.workers} workers")
    print(f"  sweep (shared-prefix reuse): {timings['reuse']:8.1f} s")
    print(f"  floor (unique computations): {floor:8.1f} s   sweep / floor = {timings['reuse'] / floor:.2f}x (target <= 1.25)")
    print(f"  naive (every config alone):  {timings['naive']:8.1f} s   naive / sweep = "
          f"{timings['naive'] / timings['reuse']:.2f}x (target >= 3)")
    # Reuse honesty: three configurations through the plain pipeline runner, same batches, same concurrency.
    picks = [request.configurations[k] for k in (0, configs // 2, configs - 1)]
    docs = [d for d in load(corpus)]
    tasks = []
    for config in picks:
        for dist in request.distributions:
            part = [d for d in docs if d.distribution == dist]
            tasks += [(config.id, part[k : k + request.batch_size]) for k in range(0, len(part), request.batch_size)]
    with ProcessPoolExecutor(args.workers) as pool:
        measured = list(pool.map(_plain, tasks))
    print("  reuse honesty (mean end-to-end ms per document, reused figure vs plain re-run):")
    index = 0
    for config in picks:
        plain = []
        for dist in request.distributions:
            batches = -(-len([d for d in docs if d.distribution == dist]) // request.batch_size)
            for values in measured[index : index + batches]:
                plain += values
            index += batches
        reused = statistics.mean(reuse.mean_latency_ms[(config.id, d)] for d in request.distributions)
        plain_mean = statistics.mean(plain)
        print(f"    {config.label:70s} reused {reused:7.0f}  plain {plain_mean:7.0f}  "
              f"ratio {reused / plain_mean:.3f} ({'within' if abs(reused / plain_mean - 1) <= 0.10 else 'OUTSIDE'} 10%)")


if __name__ == "__main__":
    main()
