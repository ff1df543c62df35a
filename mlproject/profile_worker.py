"""One profiling cell — (variant, cores, batch size) — in a process of its own.

    python -m mlproject.profile_worker CELL.json

The parent (mlproject/profile.py) starts it with the thread-count variables (OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, OMP_THREAD_LIMIT) already set in its environment; the first
thing this process does, before any numerical library is imported, is restrict itself to the allowed
CPUs (sched_setaffinity). It then loads the variant with that many threads, runs warm-up batches,
and times batches of the step's inputs while a sampler thread records resident memory (this process
and its children) and the busy share of each allowed core. Results go to the cell's `out` file as
JSON; nothing here talks to MLflow.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path


def _sampler(stop: threading.Event, samples: dict, cpus: list[int], period: float = 0.05) -> None:
    import psutil

    proc = psutil.Process()
    psutil.cpu_percent(percpu=True)  # primes the per-core counters
    while not stop.wait(period):
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            continue
        samples["peak_rss"] = max(samples.get("peak_rss", 0), rss)
        per_core = psutil.cpu_percent(percpu=True)
        samples.setdefault("core_busy", []).append([per_core[c] for c in cpus if c < len(per_core)])


def run_cell(cell: dict) -> dict:
    os.sched_setaffinity(0, cell["cpus"])  # before numpy, OpenCV, ONNX Runtime or Tesseract start threads
    import pickle

    import psutil

    from steps.catalog import default_catalog

    inputs = pickle.loads(Path(cell["inputs"]).read_bytes())
    variant = default_catalog().get(cell["variant"])
    variant.set_threads(cell["threads"])
    started = time.perf_counter()
    variant.load()
    load_s = time.perf_counter() - started
    size = cell["batch_size"]

    def batch_at(k: int) -> list:  # full batches, cycling through the inputs
        return [inputs[(k * size + j) % len(inputs)] for j in range(size)]

    for k in range(cell["warmup"]):
        variant.run(batch_at(k))
    # At least every input once, at least min_batches batches and at least min_seconds of timed work
    # (cheap steps need many batches for a stable p95).
    at_least = max(cell["min_batches"], -(-len(inputs) // size))
    proc = psutil.Process()
    samples: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, args=(stop, samples, cell["cpus"]), daemon=True)
    sampler.start()
    cpu0 = proc.cpu_times()
    wall0 = time.perf_counter()
    batch_ms, failures, seen = [], 0, set()
    k = cell["warmup"]
    while len(batch_ms) < at_least or time.perf_counter() - wall0 < cell.get("min_seconds", 0.0):
        batch = batch_at(k)
        k += 1
        t = time.perf_counter()
        outputs = variant.run(batch)
        batch_ms.append((time.perf_counter() - t) * 1000.0)
        failures += sum(1 for o in outputs if type(o).__name__ == "StepFailure")
        seen |= set(os.sched_getaffinity(0))
    wall = time.perf_counter() - wall0
    cpu1 = proc.cpu_times()
    stop.set()
    sampler.join()
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system) + \
        (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    busy = samples.get("core_busy") or [[0.0] * len(cell["cpus"])]
    per_core = [sum(row[k] for row in busy) / len(busy) for k in range(len(busy[0]))]
    return {
        "batch_ms": batch_ms, "documents": len(batch_ms) * size, "wall_s": wall, "cpu_s": cpu_s,
        "load_s": load_s, "peak_rss_mb": samples.get("peak_rss", proc.memory_info().rss) / 2**20,
        "affinity": sorted(seen), "core_busy_pct": per_core, "failures": failures, "batching": variant.batching,
    }


def main() -> int:
    cell = json.loads(Path(sys.argv[1]).read_text())
    result = run_cell(cell)
    Path(cell["out"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
