"""One profiling cell — (variant, cores, batch size) — in a process of its own.

    python -m mlproject.profile_worker CELL.json

CELL.json is a WorkOrder (written by mlproject/profile.py); the step's input records are JSON lines in the
step's wire codec (steps/codec.py: images as lossless BMP, so the worker sees exactly the parent's pixels).
The parent starts this process with the thread-count variables (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
MKL_NUM_THREADS, OMP_THREAD_LIMIT) already set in its environment; the first thing it does, before any
numerical library is imported, is restrict itself to the allowed CPUs (sched_setaffinity). It then loads the
variant with that many threads, runs warm-up batches, and times batches of the step's inputs while a sampler
thread records resident memory (this process and its children) and the busy share of each allowed core. The
Measurements go to the order's `out` file as JSON; nothing here talks to MLflow.

Only the standard library and common/ are imported at module level: numpy, OpenCV, ONNX Runtime and Tesseract
start threads when imported, so they must come after the affinity is set.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import NonNegativeFloat, NonNegativeInt, PositiveInt, load


@dataclass(frozen=True)
class WorkOrder:
    """What one cell's process does: run `variant` with `threads` threads on `cpus`, in batches of `batch_size`
    (`warmup` batches first, then at least `min_batches` and `min_seconds` of timed work) over the input records in
    `inputs` (JSON lines, the step's wire codec); write the Measurements to `out`."""

    variant: str
    threads: PositiveInt
    cpus: tuple[NonNegativeInt, ...]
    batch_size: PositiveInt
    warmup: NonNegativeInt
    min_batches: PositiveInt
    min_seconds: NonNegativeFloat
    inputs: str
    out: str
    store: str = ""  # the caller's model store ("" : $CARDFLOW_MODELS or models/)
    # the stability rule (steps/latency.py): after the first window (the minimum above), more windows of as many
    # batches until two successive p95 estimates (over every batch so far) agree within stability_pct, at most
    # max_windows windows in all and while the timed work stays under max_seconds
    max_windows: PositiveInt = 1
    stability_pct: NonNegativeFloat = 10.0
    max_seconds: NonNegativeFloat = 60.0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str, source: str = "work order") -> WorkOrder:
        return load(cls, json.loads(text), source)


@dataclass(frozen=True)
class Measurements:
    """What a cell measured: every timed batch's wall time, the totals, and what the process ran on."""

    batch_ms: tuple[float, ...]
    documents: int
    wall_s: float
    cpu_s: float  # user + system, this process and its children
    load_s: float
    peak_rss_mb: float
    affinity: tuple[int, ...]  # every CPU the process was allowed while timed
    core_busy_pct: tuple[float, ...]  # per allowed core, system-wide busy share (other processes included)
    failures: int
    batching: str  # how the variant meets a batch (tensor, spread, sequential)
    windows: int = 1  # measuring windows timed (the stability rule)
    stable: bool = False  # the last two p95 estimates agreed within the stability percentage
    started_unix: float = 0.0  # when the timed work began and ended (time.time(), seconds)
    finished_unix: float = 0.0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str, source: str = "measurements") -> Measurements:
        return load(cls, json.loads(text), source)


def read_inputs(path: Path, step: str) -> list[Any]:
    """The step's input records from JSON lines written with `codec(step).encode_inputs`."""
    from steps.codec import codec

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return codec(step).decode(rows)


def _sampler(stop: threading.Event, samples: dict, cpus: tuple[int, ...], period: float = 0.05) -> None:
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


def run_cell(order: WorkOrder) -> Measurements:
    os.sched_setaffinity(0, order.cpus)  # before numpy, OpenCV, ONNX Runtime or Tesseract start threads
    import psutil

    from steps.catalog import default_catalog
    from steps.modelstore import ModelStore
    from steps.records import StepFailure

    catalog = default_catalog(ModelStore(Path(order.store)) if order.store else None)  # this process's one catalog
    variant = catalog.get(order.variant)
    inputs = read_inputs(Path(order.inputs), variant.step)
    variant.set_threads(order.threads)
    started = time.perf_counter()
    variant.load()
    load_s = time.perf_counter() - started
    size = order.batch_size

    def batch_at(k: int) -> list:  # full batches, cycling through the inputs
        return [inputs[(k * size + j) % len(inputs)] for j in range(size)]

    for k in range(order.warmup):
        variant.run(batch_at(k))
    # At least every input once, at least min_batches batches and at least min_seconds of timed work
    # (cheap steps need many batches for a stable p95).
    at_least = max(order.min_batches, -(-len(inputs) // size))
    proc = psutil.Process()
    samples: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, args=(stop, samples, order.cpus), daemon=True)
    sampler.start()
    cpu0 = proc.cpu_times()
    wall0 = time.perf_counter()
    started_unix = time.time()
    batch_ms, failures, seen = [], 0, set()
    k = order.warmup

    def timed_batch() -> None:
        nonlocal k, failures, seen
        batch = batch_at(k)
        k += 1
        t = time.perf_counter()
        outputs = variant.run(batch)
        batch_ms.append((time.perf_counter() - t) * 1000.0)
        failures += sum(1 for o in outputs if isinstance(o, StepFailure))
        seen |= set(os.sched_getaffinity(0))

    while len(batch_ms) < at_least or time.perf_counter() - wall0 < order.min_seconds:
        timed_batch()
    window = len(batch_ms)
    p95s = [_p95(batch_ms)]
    settled = False
    while len(p95s) < order.max_windows and time.perf_counter() - wall0 < order.max_seconds:
        for _ in range(window):
            timed_batch()
        p95s.append(_p95(batch_ms))  # the estimate over every batch timed so far
        settled = p95s[-2] > 0 and abs(p95s[-1] - p95s[-2]) <= order.stability_pct / 100.0 * p95s[-2]
        if settled:
            break
    wall = time.perf_counter() - wall0
    cpu1 = proc.cpu_times()
    stop.set()
    sampler.join()
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system) + \
        (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    busy = samples.get("core_busy") or [[0.0] * len(order.cpus)]
    per_core = tuple(sum(row[c] for row in busy) / len(busy) for c in range(len(busy[0])))
    return Measurements(batch_ms=tuple(batch_ms), documents=len(batch_ms) * size, wall_s=wall, cpu_s=cpu_s,
                        load_s=load_s, peak_rss_mb=samples.get("peak_rss", proc.memory_info().rss) / 2**20,
                        affinity=tuple(sorted(seen)), core_busy_pct=per_core, failures=failures,
                        batching=variant.batching, windows=len(p95s), stable=settled,
                        started_unix=started_unix, finished_unix=time.time())


def _p95(values: list[float]) -> float:
    ordered = sorted(values)  # numpy is not imported at module level here (see the module docstring)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> int:
    path = Path(sys.argv[1])
    order = WorkOrder.from_json(path.read_text(), str(path))
    Path(order.out).write_text(run_cell(order).to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
