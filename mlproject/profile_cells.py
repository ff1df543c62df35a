"""Profiling cells: the (variant, cores, batch size) grid, each cell's inputs and its own process
(mlproject/profile_worker.py), and the metrics a cell's measurements give."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.params import ParameterError
from mlproject.prices import cost_per_1k_docs
from mlproject.profile_worker import Measurements, WorkOrder
from steps.codec import codec
from steps.latency import interval_metrics

if TYPE_CHECKING:
    from mlproject.profile import ProfileRequest

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class ProfileError(ParameterError):
    """A profile parameter is wrong, or a cell could not be profiled; the message names it."""


@dataclass(frozen=True)
class Cell:
    step: str
    variant: str
    cores: int
    batch_size: int
    cpus: tuple[int, ...]
    oversubscribed: bool


def plan_cells(req: ProfileRequest, steps: tuple[str, ...]) -> list[Cell]:
    available = sorted(os.sched_getaffinity(0))
    cells = []
    for step in steps:
        for variant, cores, batch in itertools.product(req.versions[step], req.cores, req.batch_sizes):
            over = cores > len(available)
            cells.append(Cell(step, variant, cores, batch, tuple(available if over else available[:cores]), over))
    return cells


def write_inputs(path: Path, step: str, records: Sequence[Any]) -> Path:
    """A step's input records as JSON lines in the step's wire codec, for the cells' workers to read back."""
    with path.open("w") as out:
        for row in codec(step).encode_inputs(records):
            out.write(json.dumps(row) + "\n")
    return path


def work_order(cell: Cell, inputs_path: Path, req: ProfileRequest, workdir: Path, store: str = "") -> WorkOrder:
    """What the cell's process does, over the caller's model store ("" : $CARDFLOW_MODELS or models/)."""
    return WorkOrder(variant=cell.variant, threads=cell.cores, cpus=cell.cpus, batch_size=cell.batch_size,
                     warmup=req.warmup, min_batches=req.min_batches, min_seconds=req.min_seconds,
                     inputs=str(inputs_path), out=str(workdir / "result.json"), store=store,
                     max_windows=1 + req.measure.repeats, stability_pct=req.measure.stability_pct,
                     max_seconds=max(req.min_seconds, req.measure.max_measure_s))


def run_order(order: WorkOrder, workdir: Path) -> Measurements:
    """One cell in its own process (mlproject/profile_worker.py) with the libraries' thread counts set to the
    cell's cores; returns what it measured."""
    cell_file = workdir / "cell.json"
    cell_file.write_text(order.to_json())
    threads = str(order.threads)
    env = {**os.environ, **{v: threads for v in THREAD_VARIABLES}, "OMP_THREAD_LIMIT": threads}
    done = subprocess.run([sys.executable, "-m", "mlproject.profile_worker", str(cell_file)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise ProfileError(f"profiling {order.variant} on {order.threads} cores at batch {order.batch_size} failed "
                           f"(exit {done.returncode}):\n{tail}")
    return Measurements.from_json(Path(order.out).read_text(), order.out)


def cell_metrics(cell: Cell, measured: Measurements, accuracy: float, price: float) -> dict[str, float]:
    batch_ms = np.asarray(measured.batch_ms)
    per_doc = np.repeat(batch_ms, cell.batch_size)  # a document's latency is its batch's wall time
    docs = measured.documents
    allowed = len(measured.affinity)
    return {
        **interval_metrics([[ms] * cell.batch_size for ms in measured.batch_ms], "latency_ms"),
        "latency_ms.mean": float(per_doc.mean()),
        "measure_windows": float(measured.windows), "measure_stable": float(measured.stable),
        "batch_latency_ms.p50": float(np.percentile(batch_ms, 50)),
        "batch_latency_ms.p95": float(np.percentile(batch_ms, 95)),
        "batch_latency_ms.p99": float(np.percentile(batch_ms, 99)),
        "throughput_docs_s": docs / measured.wall_s,
        "cpu_utilisation": measured.cpu_s / (measured.wall_s * allowed),  # per allowed core, 0..1
        "cpu_cores_used": measured.cpu_s / measured.wall_s,
        "core_busy_pct": float(np.mean(measured.core_busy_pct)),
        "peak_rss_mb": measured.peak_rss_mb, "load_s": measured.load_s,
        "cost_per_1k_docs": cost_per_1k_docs(cell.cores, measured.wall_s, docs, price),
        "accuracy": accuracy, "documents": float(docs), "failures": float(measured.failures),
        "oversubscribed": float(cell.oversubscribed),
    }
