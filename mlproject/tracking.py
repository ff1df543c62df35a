"""MLflow at the edge: attach to the run `mlflow run` started, if any."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def attached_run() -> Iterator[Any | None]:
    """The MLflow run `mlflow run` created for this entry point (MLFLOW_RUN_ID), or None outside `mlflow run`."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        yield None
        return
    import mlflow

    with mlflow.start_run(run_id=run_id) as run:
        yield run
