"""Profile cells as Ray tasks (`cardflow profile --executor ray [--ray-address HOST:PORT]`).

- Each cell is one Ray task asking for as many CPUs as the cell has cores (`num_cpus`), so Ray never places
  more cells on a node than the node has cores. A cell asking for more cores than the largest node has asks for
  all of that node's CPUs and is marked oversubscribed, as on one machine.
- Ray counts CPUs but does not pin them. On its node, a cell takes a CPU set of its own: one lock file per CPU
  (fcntl.flock, node-local) held for the whole cell, so two cells running side by side on a node never share a
  core, whatever else Ray runs there. The cell's process (mlproject/profile_worker.py) is then restricted to
  those CPUs (sched_setaffinity) with the libraries' thread counts set to the cell's cores, exactly as locally.
- What a cell needs travels with it: its WorkOrder as JSON, the step's inputs (JSON lines, in Ray's object
  store, written to a node-local file named by their sha256). Models come from the node's model store (the path
  the driver names, or $CARDFLOW_MODELS on the node), verified as in the local pool; the variant's fingerprint
  must equal the driver's, so a node with other models fails the profile, naming the variant.
- A worker lost mid-cell (process killed, node gone) has its cell retried by Ray (`max_retries`); the driver
  logs each cell once, when its measurements arrive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from common.errors import BadInput, CardflowError, Internal
from mlproject.profile_cells import Cell, run_order
from mlproject.profile_worker import Measurements, WorkOrder
from mlproject.sweep.execute_ray import MAX_RETRIES, _catalog, connect, require_ray

LOCK_WAIT_S = 600.0  # a cell waits this long at most for its node's CPUs (Ray admitted it: they are freeing)


def _cpu_locks_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / f"cardflow-ray-cpus-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def cpu_set(count: int, wait_s: float = LOCK_WAIT_S) -> Iterator[tuple[int, ...]]:
    """`count` CPUs of this process's affinity that no other cell on this node holds, held until the block ends
    (all of them when `count` is more than the node has)."""
    allowed = sorted(os.sched_getaffinity(0))
    want = min(count, len(allowed))
    folder = _cpu_locks_dir()
    deadline = time.monotonic() + wait_s
    held: dict[int, IO[bytes]] = {}
    try:
        while True:
            for cpu in allowed:
                if len(held) == want:
                    break
                if cpu in held:
                    continue
                handle = (folder / f"cpu{cpu}.lock").open("ab")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                held[cpu] = handle
            if len(held) == want:
                break
            if time.monotonic() > deadline:
                raise Internal(f"no {want} free CPUs on Ray node {os.uname().nodename} after {wait_s:.0f} s "
                               f"(locks in {folder}); another profile holds them")
            time.sleep(0.05)
        yield tuple(sorted(held))
    finally:
        for handle in held.values():
            handle.close()  # closing the file releases its lock


def _inputs_file(data: bytes) -> Path:
    folder = Path(tempfile.gettempdir()) / f"cardflow-ray-inputs-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()}.jsonl"
    if not path.exists():
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        part.write_bytes(data)
        part.replace(path)
    return path


def profile_cell_remote(order_json: str, inputs: bytes, store_root: str, fingerprint: str) -> dict[str, Any]:
    """One cell on a Ray worker (module-level so Ray ships it by reference to this module): its measurements,
    the node and whether the node had fewer CPUs than the cell's cores."""
    catalog = _catalog(store_root)
    order = WorkOrder.from_json(order_json)
    found = catalog.get(order.variant).fingerprint()
    if found != fingerprint:
        raise BadInput(f"variant {order.variant} on Ray node {os.uname().nodename} is not the driver's (fingerprint "
                       f"{found} ≠ {fingerprint}): the node's model store or code differs")
    store = os.environ.get("CARDFLOW_MODELS") or store_root
    with tempfile.TemporaryDirectory(prefix="cardflow-cell-") as tmp, cpu_set(order.threads) as cpus:
        local = dataclasses.replace(order, cpus=cpus, inputs=str(_inputs_file(inputs)),
                                    out=str(Path(tmp) / "result.json"), store=store)
        measured = run_order(local, Path(tmp))
    return {"measurements": measured.to_json(), "node": os.uname().nodename,
            "oversubscribed": order.threads > len(cpus)}


def largest_node_cpus() -> int:
    ray = require_ray()
    return max((int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=0)


def run_cells_ray(cells: Sequence[Cell], orders: Sequence[WorkOrder], inputs: dict[str, bytes], store_root: str,
                  fingerprints: dict[str, str], address: str | None,
                  on_result: Callable[[int, Cell, Measurements, str], None]) -> None:
    """Every cell as a Ray task with `num_cpus` = its cores (at most the largest node's CPUs); each result handed
    to `on_result(index, cell as it ran, measurements, node)` as it arrives."""
    ray = require_ray()
    cluster = connect(address, len(os.sched_getaffinity(0)))
    largest = largest_node_cpus()
    if largest < 1:
        raise BadInput(f"parameter ray_address: the Ray cluster at {cluster['address']} has no node with a CPU")
    print(f"Ray cluster at {cluster['address']}: {cluster['nodes']} node(s), {cluster['cpus']} CPUs; "
          f"the largest node has {largest}")
    remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(profile_cell_remote)
    refs = {step: ray.put(data) for step, data in inputs.items()}
    pending = {}
    for k, (cell, order) in enumerate(zip(cells, orders, strict=True)):
        ref = remote.options(num_cpus=min(cell.cores, largest)).remote(
            order.to_json(), refs[cell.step], store_root, fingerprints[cell.variant])
        pending[ref] = k
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                k = pending.pop(ref)
                cell = cells[k]
                try:
                    answer = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, CardflowError):  # the cell's own error, as it raised it
                        raise cause from None
                    raise Internal(f"Ray task for the cell {cell.variant} · {cell.cores} cores · batch "
                                   f"{cell.batch_size} failed: {exc}") from exc
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
                    raise Internal(f"Ray task for the cell {cell.variant} · {cell.cores} cores · batch "
                                   f"{cell.batch_size} was lost {MAX_RETRIES + 1} times ({type(exc).__name__})"
                                   ) from exc
                measured = Measurements.from_json(answer["measurements"], "a Ray cell's measurements")
                ran = dataclasses.replace(cell, cpus=measured.affinity,
                                          oversubscribed=cell.cores > largest or answer["oversubscribed"])
                on_result(k, ran, measured, answer["node"])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
