"""`cardflow registry …`: register, list, promote, rollback, history, load — one function per command, each
printing its result and returning the exit status (3 when a gate refuses)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.errors import EXIT_REFUSED
from common.params import ParameterError
from mlproject.context import Context
from registry.errors import RegistryNotFound
from registry.gates import Decision, Gatekeeper, gate_spec, history, history_table
from registry.loader import Loader
from registry.register import Registered, register_all, versions, versions_table
from steps.base import STEPS
from steps.catalog import Catalog
from steps.errors import StepError, UnknownVariant
from tracking.edge import fail_over_fast, mlflow_errors, probe, tracking_uri


def _variant_id(catalog: Catalog, name: str) -> str:
    """A full variant id from an id or a name unique within its step."""
    if "/" in name:
        return catalog.resolve(name.split("/", 1)[0], name)
    for step in STEPS:
        try:
            return catalog.resolve(step, name)
        except StepError:
            continue
    raise UnknownVariant(f"parameter variants: unknown variant {name!r}; `cardflow variants` lists them")


def register(ctx: Context, variants: Sequence[str] | None, steps: Sequence[str] | None) -> int:
    # One line per version (below) says what happened; MLflow's per-file download bars would bury it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    catalog = ctx.catalog
    ids = [_variant_id(catalog, vid) for vid in variants] if variants else None
    if steps:
        unknown = [step for step in steps if step not in STEPS]
        if unknown:
            raise ParameterError(f"parameter step: unknown step(s) {', '.join(unknown)}; steps: {', '.join(STEPS)}")
        ids = [vid for vid in (catalog.ids() if ids is None else ids) if vid.split("/", 1)[0] in steps]
        if not ids:
            raise ParameterError(f"parameter step: none of the chosen variants is in step(s) {', '.join(steps)}")
    total = len(ids) if ids else len(catalog)
    print(f"registering {total} variants at {tracking_uri()}")
    bar = tqdm(total=total, unit="variant", disable=not sys.stderr.isatty())
    done: list[Registered] = []

    def report(entry: Registered) -> None:
        done.append(entry)
        bar.update(1)
        state = "new" if entry.new else "unchanged, links refreshed" if entry.refreshed else "unchanged"
        bar.write(f"  {entry.name} v{entry.version}  {entry.variant_id}  {state}  {entry.bytes / 1e6:.1f} MB  "
                  f"{entry.seconds:.1f} s")

    register_all(catalog, ctx.store, variant_ids=ids, default=ctx.spec.default.as_dict(), on_done=report)
    bar.close()
    new = [d for d in done if d.new]
    print(f"{len(new)} new versions, {len(done) - len(new)} unchanged, in {len({d.name for d in done})} registered "
          f"models; {sum(d.bytes for d in new) / 1e6:.1f} MB uploaded in {sum(d.seconds for d in done):.1f} s")
    return 0


def list_versions(model: str | None, as_json: bool) -> int:
    rows = versions(tracking_uri(), model)
    print(json.dumps(rows, indent=2) if as_json else versions_table(rows))
    return 0


def gatekeeper(ctx: Context, *, corpus: Path | None, n: int | None, distribution: str | None,
               tolerance: float | None, workers: int) -> Gatekeeper:
    fail_over_fast()  # the gates load registered versions: a verified cached copy serves when the server goes away
    gate = gate_spec(ctx.spec.registry.gate, ctx.spec.sla.steps_ms, ctx.spec.sla.batch_size, corpus=corpus, n=n,
                     distribution=distribution, accuracy_tolerance=tolerance)
    return Gatekeeper(tracking_uri(), gate, ctx.spec.default.as_dict(), ctx.catalog, workers=workers)


def print_decision(decision: Decision) -> int:
    verb = {"promoted": "PROMOTED", "forced": "FORCED", "refused": "REFUSED", "unchanged": "UNCHANGED"}[decision.outcome]
    print(f"{verb}: {decision.name}@{decision.alias} {decision.previous or '-'} → {decision.version}")
    for line in decision.reasons:
        print(f"  pass  {line}")
    for line in decision.failed:
        print(f"  FAIL  {line}")
    if decision.run_id:
        print(f"  recorded as run {decision.run_id}")
    return 0 if decision.accepted else EXIT_REFUSED


def promote(ctx: Context, model: str, version: str, alias: str, *, force: bool, reason: str | None,
            **gate: Any) -> int:
    keeper = gatekeeper(ctx, **gate)
    probe(keeper.uri)
    with mlflow_errors(keeper.uri):
        decision = keeper.promote(model, version, alias, force=force, reason=reason)
    return print_decision(decision)


def rollback(ctx: Context, model: str, alias: str, *, force: bool, reason: str | None, **gate: Any) -> int:
    keeper = gatekeeper(ctx, **gate)
    probe(keeper.uri)
    with mlflow_errors(keeper.uri):
        previous = keeper.previous_holder(model, alias)
        if previous is None:
            raise RegistryNotFound(f"{model}@{alias}: no earlier holder in the promotion history to roll back to")
        print(f"rolling {model}@{alias} back to version {previous}")
        decision = keeper.promote(model, previous, alias, force=force, reason=reason)
    return print_decision(decision)


def show_history(model: str | None, alias: str | None) -> int:
    print(history_table(history(tracking_uri(), name=model, alias=alias)))
    return 0


def load_version(step: str, model: str, *, alias: str | None, version: str | None, cache: Path | None) -> int:
    fail_over_fast()
    variant = Loader(cache_dir=cache).load(step, model, alias=alias, version=version)
    found = variant.registered  # type: ignore[attr-defined]
    print(f"{found.name} version {found.version} ({found.variant_id}, fingerprint {found.fingerprint}) "
          f"from {found.describe()} in {found.seconds:.2f} s\n  {found.path}")
    return 0


def modelcar(model: str, *, alias: str | None, version: str | None, tag: str | None, base: str) -> int:
    from registry.image import build_modelcar

    parts = model.split(".")
    if len(parts) != 3 or parts[0] != "cardflow" or parts[1] not in STEPS:
        raise ParameterError(f"parameter model: expected a registered model cardflow.<step>.<model> (steps: "
                             f"{', '.join(STEPS)}), got {model!r}")
    fail_over_fast()
    built = build_modelcar(parts[1], parts[2], alias=alias, version=version, tag=tag, base=base)
    print(f"built {built.tag}: {built.name} version {built.version} ({built.variant_id}), {len(built.files)} files "
          f"under /models, in {built.seconds:.1f} s")
    return 0
