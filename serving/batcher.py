"""Adaptive batching for V2 requests (what KServe's batcher does only for V1, kserve#2275).

Requests that arrive within `max_batch_delay_ms` of the first waiting one, up to `max_batch_size` documents,
run as one `run(batch)` call; each gets its own documents' results back. Requests queued while a batch
computes go together into the next one without waiting, so the batch grows with the load. The default delay
is 0, as Triton's dynamic batcher's `max_queue_delay_microseconds`: a lone request never waits, and batches
form from what queues up while the previous one computes (measured by `make bench-serve`). A request is
never split: one larger than `max_batch_size` runs alone. One compute thread per server: batches run one
after another, each variant using its own threads inside.

A request's bad input is refused before it is queued, so it never fails its batch-mates; a document the
variant fails on is that document's own error row. Queue time (arrival → its batch starts) is measured
apart from compute time (the `run` call).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Batched:
    """What a request gets back: its outputs, what computed them, and where its time went."""

    outputs: list[Any]
    served: Any  # whatever `run` said served the batch (the step server: its Served version)
    queue_s: float
    compute_s: float
    batch_documents: int
    batch_requests: int


@dataclass
class _Pending:
    records: Sequence[Any]
    future: asyncio.Future
    arrived: float = field(default_factory=time.perf_counter)


class AdaptiveBatcher:
    """`await submit(records)`; `run(all_records) -> (served, outputs)` is called in the compute thread."""

    def __init__(self, run: Callable[[list[Any]], tuple[Any, list[Any]]], max_batch_size: int = 4,
                 max_batch_delay_ms: float = 0.0) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_delay_s = max(0.0, max_batch_delay_ms) / 1000
        self._queue: asyncio.Queue[_Pending] | None = None
        self._carry: _Pending | None = None
        self._task: asyncio.Task | None = None
        self._compute = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cardflow-compute")

    async def submit(self, records: Sequence[Any]) -> Batched:
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
        pending = _Pending(records, asyncio.get_running_loop().create_future())
        await self._queue.put(pending)
        return await pending.future

    async def _next(self) -> _Pending:
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        assert self._queue is not None
        return await self._queue.get()

    async def _collect(self) -> list[_Pending]:
        """The next batch: the first waiting request, then whatever fits that arrives before its deadline."""
        assert self._queue is not None
        first = await self._next()
        batch, documents = [first], len(first.records)
        deadline = first.arrived + self.max_delay_s
        while documents < self.max_batch_size:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if documents + len(item.records) > self.max_batch_size:
                self._carry = item
                break
            batch.append(item)
            documents += len(item.records)
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            batch = [p for p in batch if not p.future.done()]  # a client that went away
            if not batch:
                continue
            records = [r for p in batch for r in p.records]
            started = time.perf_counter()
            try:
                served, outputs = await loop.run_in_executor(self._compute, self.run, records)
            except Exception as exc:  # noqa: BLE001 — handed to every request of the batch, which reports it
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            compute_s = time.perf_counter() - started
            at = 0
            for p in batch:
                mine = list(outputs[at:at + len(p.records)])
                at += len(p.records)
                if not p.future.done():
                    p.future.set_result(Batched(mine, served, started - p.arrived, compute_s, len(records), len(batch)))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._compute.shutdown(wait=False, cancel_futures=True)
