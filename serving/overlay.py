"""`cardflow serve overlay`: the profile's recommendation as a kustomize overlay, so the winner runs in production
as it was measured.

    cardflow serve overlay --profile RUN_ID --out serving/k8s/overlays/recommended [--load 4] [--pin]
    kubectl apply -k serving/k8s/overlays/recommended

The overlay builds on overlays/production (anti-affinity, routers) and sets, per step's InferenceService, what the
recommended plan measured: the model and its version, CPU requests and limits equal to the plan's cores (a
step's cores are its own, as in the profile), memory from the cell's peak RSS, the batch size (`--max-batch-size`)
and threads, and `minReplicas` = the plan's replicas for the target load, at least `--min-replicas` (2, as
overlays/production, for availability), `maxReplicas` twice that.

Which version a pod loads: the alias (default champion) when it names the recommended variant; when it does not,
the overlay is refused naming the step, what the alias holds and the promote command, unless `--pin` serves the
recommended variant's registered version by number. A variant that is not registered is refused: register it
first. The registry checked is $MLFLOW_TRACKING_URI's, which should be the team server the pods load from.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analysis.profile import ProfileData, asked_recommendation, load_profile
from analysis.recommend import Plan, Recommendation
from common.errors import Conflict, NotFound
from common.params import ParameterError
from registry.package import family, model_name
from registry.register import TAG_VARIANT
from steps.base import STEPS
from tracking.edge import client_for, mlflow_errors, probe, tracking_uri

PRODUCTION = Path(__file__).resolve().parent / "k8s" / "overlays" / "production"
MIN_MEMORY_MI = 256  # a step server's floor: Python, KServe and the registry loader before any model


class OverlayError(Conflict):
    """The plan contradicts what exists: the alias holds another variant, or the output file is not an overlay
    this command wrote."""


@dataclass(frozen=True)
class Served:
    """What one step's pods run, from the plan and the registry."""

    step: str
    variant: str  # e.g. ocr/tesseract:lstm-fast
    model: str  # registered model, cardflow.<step>.<family>
    version: str
    select: tuple[str, str]  # ("--alias", "champion") or ("--version", "3")
    cores: int
    batch_size: int
    replicas: int
    p95_ms: float
    memory_mi: int | None  # None: no cell measured this option (a step not profiled): the base's memory stays



def memory_mi(peak_rss_mb: float | None) -> int | None:
    """The memory request for a measured peak RSS: 1.25× it, rounded up to 64 Mi, at least MIN_MEMORY_MI."""
    if peak_rss_mb is None or not math.isfinite(peak_rss_mb) or peak_rss_mb <= 0:
        return None
    return max(MIN_MEMORY_MI, 64 * math.ceil(peak_rss_mb * 1.25 / 64))


def _peak_rss(data: ProfileData, step: str, variant: str, cores: int, batch: int) -> float | None:
    cells = data.cells
    if cells.empty:
        return None
    hit = cells[(cells["step"] == step) & (cells["variant"] == variant) & (cells["cores"] == cores)
                & (cells["batch_size"] == batch)]
    value = hit["peak_rss_mb"].max() if len(hit) else None
    return None if value is None or value != value else float(value)


def resolve(plan: Plan, data: ProfileData, client, *, alias: str, pin: bool) -> list[Served]:
    """Each step's served version: the alias's when it holds the plan's variant, else (with pin) the variant's
    newest registered version; refused naming the step otherwise."""
    from mlflow.exceptions import MlflowException

    out = []
    for step in STEPS:
        sized = plan.steps[step]
        variant = sized.option.variant
        name = model_name(step, family(variant))
        versions = client.search_model_versions(f"name = '{name}'")  # none: [] (a failure: mlflow_errors above)
        mine = sorted((v for v in versions if v.tags.get(TAG_VARIANT) == variant and v.status == "READY"),
                      key=lambda v: int(v.version))
        if not mine:
            raise NotFound(f"step {step}: the plan's {variant} has no registered version of {name}: register it "
                               f"first (cardflow registry register --variants {variant})")
        try:
            held = client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):  # not "no such alias"
                raise
            held = None
        if held is not None and held.tags.get(TAG_VARIANT) == variant:
            version, select = str(held.version), ("--alias", alias)
        elif pin:
            version = str(mine[-1].version)
            select = ("--version", version)
        else:
            holds = "nothing" if held is None else f"version {held.version} ({held.tags.get(TAG_VARIANT, '?')})"
            raise OverlayError(f"step {step}: {name}@{alias} holds {holds}, the plan wants {variant} (version "
                               f"{mine[-1].version}): promote it (cardflow registry promote {name} --version "
                               f"{mine[-1].version} --alias {alias}) or pass --pin to serve version "
                               f"{mine[-1].version} by number")
        option = sized.option
        out.append(Served(step, variant, name, version, select, option.cores, option.batch_size, sized.replicas,
                          option.p95_ms, memory_mi(_peak_rss(data, step, variant, option.cores, option.batch_size))))
    return out


def _patches(s: Served, min_replicas: int) -> list[dict[str, Any]]:
    args = ["serve", "step", "--step", s.step, "--model", s.model.rsplit(".", 1)[1], *s.select,
            "--threads", str(s.cores), "--max-batch-size", str(s.batch_size), "--host", "0.0.0.0", "--port", "8080"]
    container = "/spec/predictor/containers/0"
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": f"{container}/args", "value": args},
        {"op": "replace", "path": "/spec/predictor/minReplicas", "value": max(s.replicas, min_replicas)},
        {"op": "replace", "path": "/spec/predictor/maxReplicas", "value": 2 * max(s.replicas, min_replicas)},
        {"op": "replace", "path": f"{container}/resources/requests/cpu", "value": str(s.cores)},
        {"op": "replace", "path": f"{container}/resources/limits/cpu", "value": str(s.cores)},
    ]
    if s.memory_mi is not None:
        ops += [{"op": "replace", "path": f"{container}/resources/requests/memory", "value": f"{s.memory_mi}Mi"},
                {"op": "replace", "path": f"{container}/resources/limits/memory", "value": f"{2 * s.memory_mi}Mi"}]
    return ops


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


class _Literal(str):
    """A patch: written as a YAML block (`|`), as a person would write it."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))


def overlay_text(plan: Plan, served: list[Served], *, base: str, profile: str, end_to_end_ms: float,
                 currency: str, min_replicas: int = 2) -> str:
    """The kustomization.yaml: a header saying what was measured, then one JSON patch per step."""
    lines = [f"# Written by `cardflow serve overlay --profile {profile}`: the recommended plan at {plan.load:g} documents/s",
             f"# within {end_to_end_ms:g} ms end to end (p95): {plan.config_id}",
             f"# accuracy {plan.accuracy * 100:.1f}% (assertions passed), end to end {plan.latency_ms:.0f} ms, "
             f"{plan.cost_per_hour:.4f} {currency}/hour.",
             "# Per step: the served version, cores (requests = limits), batch size, replicas, measured p95 per document."]
    for s in served:
        lines.append(f"#   {s.step}: {s.model} v{s.version} ({' '.join(s.select)}), {s.cores} core(s), batch "
                     f"{s.batch_size}, {s.replicas} replica(s) for the load, p95 {_ms(s.p95_ms)} ms"
                     + ("" if s.memory_mi is not None else "; memory: the base's (not profiled)"))
    lines.append(f"# minReplicas: the plan's replicas, at least {min_replicas} for availability (--min-replicas); "
                 "maxReplicas twice that.")
    lines.append("# Regenerate it rather than edit it: kubectl apply -k <this folder>")
    body = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": [base],
            "patches": [{"target": {"group": "serving.kserve.io", "kind": "InferenceService",
                                    "name": f"cardflow-{s.step}"},
                         "patch": _Literal(yaml.safe_dump(_patches(s, min_replicas), sort_keys=False,
                                                          default_flow_style=None, width=1000))}
                        for s in served]}
    return "\n".join(lines) + "\n" + yaml.dump(body, Dumper=_Dumper, sort_keys=False, width=1000)


def write_overlay(*, profile: str, out: Path, base: Path = PRODUCTION, load: Any = None, sla_ms: Any = None,
                  budgets: list[str] | None = None, alias: str = "champion", pin: bool = False,
                  min_replicas: int = 2) -> tuple[Path | None, Recommendation]:
    """Recommend on the profile and write `out`/kustomization.yaml over `base`; (None, the recommendation with its
    reason) when nothing is feasible (a result, not an error: the command exits 3, as `cardflow recommend`)."""
    if min_replicas < 1:
        raise ParameterError(f"parameter --min-replicas: must be at least 1, got {min_replicas}")
    if not (base / "kustomization.yaml").is_file():
        raise ParameterError(f"parameter --base: {base} has no kustomization.yaml")
    if out.exists() and not out.is_dir():
        raise ParameterError(f"parameter --out: {out} is a file, not a folder")
    target = out / "kustomization.yaml"
    if target.exists() and "Written by `cardflow serve overlay" not in target.read_text(errors="replace"):
        raise OverlayError(f"parameter --out: {target} exists and was not written by `cardflow serve overlay`: "
                           f"choose another folder")
    uri = tracking_uri()
    probe(uri)  # an unreachable server is said at once (exit 4), not after MLflow's retries
    with mlflow_errors(uri, f"profile run {profile!r}"):
        client = client_for(uri)
        data = load_profile(profile, client)
        rec, end_to_end = asked_recommendation(data, load=load, sla_ms=sla_ms, budgets=budgets)
        if rec.best is None:
            return None, rec
        served = resolve(rec.best, data, client, alias=alias, pin=pin)
    out.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(base.resolve(), out.resolve())
    target.write_text(overlay_text(rec.best, served, base=relative, profile=profile, end_to_end_ms=end_to_end,
                                   currency=data.manifest["prices"]["currency"], min_replicas=min_replicas))
    return target, rec
