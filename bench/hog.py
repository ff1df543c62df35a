"""A CPU hog for measuring under contention: two busy processes, detached by a double fork so that their
parent is init — not the caller, not a sweep it starts — killed when the block ends. Used by
bench/bench_stability.py (--hog) and tests/test_latency.py."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

_PROGRAM = """
import os, sys
if os.fork() == 0:
    os.setsid()
    for _ in range(int(sys.argv[2])):
        if os.fork() == 0:
            with open(sys.argv[1], "a") as fh:
                fh.write(f"{os.getpid()}\\n")
            while True:
                pass
    os._exit(0)
"""


@contextlib.contextmanager
def cpu_hog(folder: Path, processes: int = 2) -> Iterator[list[int]]:
    """`processes` busy processes for the block (their pids), written down in `folder`."""
    pids = folder / f"hog-{time.monotonic_ns()}.pids"
    subprocess.run([sys.executable, "-c", _PROGRAM, str(pids), str(processes)], check=True)
    deadline = time.monotonic() + 10
    while (not pids.exists() or len(pids.read_text().split()) < processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = [int(p) for p in pids.read_text().split()] if pids.exists() else []
    try:
        yield started
    finally:
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
