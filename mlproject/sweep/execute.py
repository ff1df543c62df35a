"""Executing a sweep's tasks: in this process (one worker) or on a local process pool, each worker with a
catalog of its own built once. A task arrives as JSON (`Task.to_json`) and comes back as a ChunkResult:
every configuration's outcomes on the task's documents, the time of each unique computation, the warm-up
runs it made, and the machine's load while it ran (other processes' share of the CPUs)."""

from __future__ import annotations

import os
import resource
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import Internal
from mlproject.sweep.plan import Executor, Task
from steps.catalog import Catalog, Configuration, default_catalog
from steps.modelstore import ModelStore
from steps.runner import DocumentOutcome, evaluate_batches

_WORKER: dict[str, Catalog] = {}


@dataclass
class ChunkResult:
    group: tuple[str, str]
    chunk: int
    outcomes: dict[str, list[DocumentOutcome]]  # configuration id -> outcomes, documents in order
    node_seconds: dict[str, float]  # unique computation -> wall seconds
    peak_mb: float
    warmup_ms: dict[str, float] = field(default_factory=dict)  # variant id -> its warm-up run in this worker
    other_cpu_share: float = 0.0  # CPU time of processes outside the sweep over the machine's CPU time, 0..1
    node_docs: dict[str, int] = field(default_factory=dict)  # unique step computation -> documents it computed


class LoadMeter:
    """The machine's CPU time spent outside this sweep (the sweep: the process that started it and all its
    children, the pool's workers included) over an interval, as a share of all CPUs' time."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(os.getppid() if _WORKER else os.getpid())
        self._cpus = psutil.cpu_count() or 1

    def _sweep_cpu(self) -> float:
        total = 0.0
        for proc in [self._root, *self._root.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except self._psutil.Error:  # a child that ended in between
                continue
        return total

    def _busy(self) -> float:
        t = self._psutil.cpu_times()
        return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) + getattr(t, "steal", 0.0)

    def start(self) -> None:
        self._wall, self._busy0, self._own0 = time.perf_counter(), self._busy(), self._sweep_cpu()

    def share(self) -> float:
        wall = time.perf_counter() - self._wall
        other = (self._busy() - self._busy0) - (self._sweep_cpu() - self._own0)
        return min(1.0, max(0.0, other / (wall * self._cpus))) if wall > 0 else 0.0


def evaluate(task: Task, catalog: Catalog) -> ChunkResult:
    """A task's batches through the tree of its configurations (each shared prefix once per batch); without
    reuse (benchmarks), every configuration from scratch."""
    configs = [Configuration(*cid.split("|")) for cid in task.config_ids]
    outcomes: dict[str, list[DocumentOutcome]] = {c.id: [] for c in configs}
    node_seconds: dict[str, float] = {}
    node_docs: dict[str, int] = {}
    warmup_ms: dict[str, float] = {}
    batches = task.batches()
    meter = LoadMeter()
    meter.start()
    parts = [evaluate_batches(catalog, batches, configs)] if task.reuse else [
        evaluate_batches(catalog, batches, [c]) for c in configs]
    share = meter.share()
    for k, part in enumerate(parts):
        warmup_ms.update(part.warmup_ms)
        for cid, found in part.outcomes.items():
            outcomes[cid].extend(found)
        for node, t in part.nodes.items():
            key = f"{task.group[0]}#{node}" if task.reuse else f"{task.group[0]}#{configs[k].id}#{node}"
            node_seconds[key] = node_seconds.get(key, 0.0) + t.wall_ms / 1000.0
            if node != "decode":
                node_docs[key] = node_docs.get(key, 0) + len(task.docs)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return ChunkResult(task.group, task.chunk, outcomes, node_seconds, peak_mb, warmup_ms, share, node_docs)


def _init_worker(store_root: str) -> None:
    """A pool worker: Ctrl-C left to the parent, and a catalog of its own, once, over the caller's model store."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    _WORKER["catalog"] = default_catalog(ModelStore(Path(store_root)))


def _evaluate_in_worker(task_json: str) -> ChunkResult:
    return evaluate(Task.from_json(task_json), _WORKER["catalog"])


def run_tasks(tasks: Sequence[Task], workers: int, catalog: Catalog, on_result: Callable[[ChunkResult], None],
              executor: Executor | None = None) -> None:
    """Every task, handing each result to `on_result` as it arrives (in task order within what arrived
    together). One worker: in this process, with the caller's catalog; more: a process pool; executor ray:
    Ray tasks (mlproject/sweep/execute_ray.py)."""
    if executor is not None and executor.kind == "ray":
        from mlproject.sweep.execute_ray import run_tasks_ray

        run_tasks_ray(tasks, catalog, on_result, executor.address, workers)
        return
    if workers <= 1:
        for task in tasks:
            on_result(evaluate(task, catalog))
        return
    if catalog.store is None:
        raise Internal("a catalog built by hand (no model store) cannot be rebuilt in worker processes: "
                       "run it with workers=1")
    store_root = str(catalog.store.root)
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(store_root,)) as pool:
        futures: set[Future] = {pool.submit(_evaluate_in_worker, task.to_json()) for task in tasks}
        try:
            while futures:
                done, futures = wait(futures, return_when=FIRST_COMPLETED)
                for result in sorted((f.result() for f in done), key=lambda r: (r.group, r.chunk)):
                    on_result(result)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
