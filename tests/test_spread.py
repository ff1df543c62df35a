"""Spread variants: a batch's documents on parallel threads, each thread with its own model state."""

from __future__ import annotations

import threading
import time

import pytest

from steps.base import NoParams, Variant
from steps.records import StepFailure


class Echo(Variant):
    step = "preprocess"
    model = "echo"
    spread = True

    def __init__(self, fail_setup: bool = False) -> None:
        super().__init__("v1", NoParams())
        self.fail_setup = fail_setup
        self.setups: list[str] = []

    def _thread_setup(self) -> None:
        if self.fail_setup and threading.current_thread() is not threading.main_thread():
            raise RuntimeError("no model for this thread")
        self._local.state = threading.current_thread().name
        self.setups.append(self._local.state)

    def process(self, item):
        if item == "bad":
            raise ValueError("unreadable")
        time.sleep(0.05)
        return (item, self._local.state)


def test_a_batch_is_spread_over_the_threads_in_order_with_per_thread_state() -> None:
    variant = Echo()
    variant.set_threads(2)
    out = variant.run(["a", "b", "c", "bad", "d"])
    assert [o[0] for o in out if not isinstance(o, StepFailure)] == ["a", "b", "c", "d"]
    assert isinstance(out[3], StepFailure) and "unreadable" in out[3].reason
    assert len({o[1] for o in out if not isinstance(o, StepFailure)}) == 2  # both pool threads worked
    assert len(variant.setups) == 2 and variant.batching == "spread"


def test_changing_the_thread_count_after_loading_takes_effect() -> None:
    variant = Echo()
    variant.run(["a", "b"])  # loaded with one thread: no pool
    variant.set_threads(3)
    out = variant.run(["a", "b", "c"])
    assert len({o[1] for o in out}) == 3


def test_a_failing_thread_setup_fails_the_load_fast_and_leaves_it_unloaded() -> None:
    variant = Echo(fail_setup=True)
    variant.set_threads(2)
    started = time.perf_counter()
    with pytest.raises(Exception):  # noqa: B017 — the thread's error or the broken barrier, whichever comes first
        variant.load()
    assert time.perf_counter() - started < 5
    assert not variant._loaded and variant._pool is None
