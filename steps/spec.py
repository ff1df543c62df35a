"""The pipeline spec (configs/pipeline.yaml) as frozen, typed objects, validated against the catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from steps.base import STEPS
from steps.catalog import Catalog, Configuration
from steps.errors import StepError

DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "configs" / "pipeline.yaml"


@dataclass(frozen=True)
class TrainingSpec:
    n: int
    seed: int
    distributions: tuple[str, ...]
    preprocess: str
    ocr: str
    families: tuple[str, ...]


@dataclass(frozen=True)
class Sla:
    batch_size: int
    end_to_end_ms: float
    steps_ms: dict[str, float] = field(default_factory=dict)

    def verdict(self, end_to_end_p95: float, steps_p95: dict[str, float]) -> dict[str, bool]:
        """SLA met, end to end and per step, judged on p95 latency per document."""
        out = {"end_to_end": end_to_end_p95 <= self.end_to_end_ms}
        for step, budget in self.steps_ms.items():
            out[step] = steps_p95.get(step, float("inf")) <= budget
        return out


@dataclass(frozen=True)
class PipelineSpec:
    default: Configuration
    training: TrainingSpec
    sla: Sla
    grid: dict[str, tuple[str, ...]]
    distributions: tuple[str, ...]
    raw: dict[str, Any]


def _need(data: dict, key: str, where: str) -> Any:
    if key not in data:
        raise StepError(f"{where}: missing key {key!r}")
    return data[key]


def load_spec(catalog: Catalog, path: Path = DEFAULT_SPEC) -> PipelineSpec:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise StepError(f"cannot read pipeline spec {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise StepError(f"{path}: not valid YAML ({exc})") from exc
    where = str(path)
    default = catalog.configuration(_need(data, "default_configuration", where))
    t = _need(data, "training", where)
    training = TrainingSpec(
        n=int(_need(t, "n", f"{where} training")), seed=int(_need(t, "seed", f"{where} training")),
        distributions=tuple(_need(t, "distributions", f"{where} training")),
        preprocess=catalog.resolve("preprocess", _need(t, "preprocess", f"{where} training")),
        ocr=catalog.resolve("ocr", _need(t, "ocr", f"{where} training")),
        families=tuple(_need(t, "families", f"{where} training")),
    )
    s = _need(data, "sla", where)
    sla = Sla(batch_size=int(_need(s, "batch_size", f"{where} sla")),
              end_to_end_ms=float(_need(s, "end_to_end_ms", f"{where} sla")),
              steps_ms={k: float(v) for k, v in (s.get("steps_ms") or {}).items()})
    unknown = set(sla.steps_ms) - set(STEPS)
    if unknown:
        raise StepError(f"{where} sla.steps_ms: unknown step(s) {', '.join(sorted(unknown))}; steps: {', '.join(STEPS)}")
    if sla.batch_size < 1:
        raise StepError(f"{where} sla.batch_size must be at least 1, got {sla.batch_size}")
    grid_raw = data.get("grid") or {}
    grid = {step: tuple(catalog.resolve(step, name) for name in grid_raw.get(step, [getattr(default, step)]))
            for step in STEPS}
    distributions = tuple(data.get("distributions") or ("clean",))
    return PipelineSpec(default, training, sla, grid, distributions, data)
