"""Registering every catalog variant as a version of `cardflow.<step>.<model>`, once per distinct content.

A version is identified by the variant's fingerprint (id, parameters, implementation and every model
file's sha256): registering again with nothing changed finds the version holding that fingerprint and
registers nothing. Each version is logged from a run of its own in the `cardflow-registry` experiment,
with the variant's parameters and, when a sweep run has evaluated the variant, that run's accuracy and
latency (copied onto the logged model, so the registry page shows them next to the version) and a
link to it (`cardflow.eval.run_id`); when a profile has measured the variant, its latency, throughput
and cost per document at its smallest size (`profile.*`, link `cardflow.profile.run_id`).
"""

from __future__ import annotations

import base64
import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus.capture import DEFAULT_DISTRIBUTIONS
from corpus.generate import make_document
from registry.errors import RegistryError
from registry.package import (
    CardflowFlavor,
    model_name,
    onnx_model_file,
    pinned_requirements,
    signature,
    stage_store,
    variant_spec,
)
from steps.base import STEPS, Variant
from steps.catalog import Catalog
from steps.codec import DOC_ID, codec
from steps.errors import StepError
from steps.modelstore import ModelStore
from steps.ocr import line_of
from steps.records import Classification, ExtractInput, OcrResult, Word
from tracking.edge import client_for, experiment_context, mlflow_errors, probe, tracking_uri

log = logging.getLogger(__name__)
EXPERIMENT = "cardflow-registry"
TAG_VARIANT = "cardflow.variant"
TAG_VERSION_NAME = "cardflow.version_name"
TAG_FINGERPRINT = "cardflow.fingerprint"
TAG_FILES = "cardflow.files"
TAG_BYTES = "cardflow.bytes"
TAG_EVAL_RUN = "cardflow.eval.run_id"
TAG_PROFILE_RUN = "cardflow.profile.run_id"
# Metrics copied from the evaluating sweep run onto the registered version's logged model.
EVAL_METRICS = ("accuracy", "l1_accuracy", "l2_accuracy", "latency_ms.p95", "throughput_docs_s")


@dataclass
class Registered:
    variant_id: str
    name: str
    version: str
    fingerprint: str
    new: bool
    bytes: int
    seconds: float
    eval_run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    refreshed: bool = False  # an existing version now links newer evaluation or profile runs


def examples() -> dict[str, Any]:
    """One input row per step, made from a generated document (the same one every time)."""
    import pandas as pd

    image, record = make_document(seed=1, index=0, distribution="clean", distributions_file=DEFAULT_DISTRIBUTIONS)
    truth = record["truth"]
    lines = []
    for i, text in enumerate(t for t in truth["text_lines"] if t.split()):
        y, x, words = 24 * i, 0, []
        for word in text.split():
            words.append(Word(word, 95.0, (x, y, x + 12 * len(word), y + 20)))
            x += 12 * len(word) + 12
        lines.append(line_of(words))
    ocr = OcrResult("example", tuple(lines), (1000, 24 * len(lines)))
    l1, l2 = truth.get("l1"), truth.get("l2")
    records = {"preprocess": None, "ocr": None, "classify": ocr,
               "extract": ExtractInput(ocr, Classification("example", l1, {l1: 1.0}, l2, {l2: 1.0}))}
    image_row = {DOC_ID: "example", "image_b64": base64.b64encode(image).decode()}
    out = {}
    for step, record in records.items():
        wire = codec(step)
        row = image_row if record is None else wire.encode_inputs([record])[0]
        out[step] = pd.DataFrame([{k: row[k] for k in (DOC_ID, *wire.reads)}])
    return out


def find_version(client, name: str, fingerprint: str):
    """The READY version of `name` that holds this fingerprint, or None."""
    versions = client.search_model_versions(f"name = '{name}'")
    matches = [v for v in versions if v.tags.get(TAG_FINGERPRINT) == fingerprint and v.status == "READY"]
    return max(matches, key=lambda v: int(v.version)) if matches else None


def _finished_runs(client, kind: str, condition: str, experiments: list[str] | None = None) -> list:
    """Finished runs of one CardFlow kind in the given experiments (default: all), newest first."""
    if experiments is None:
        experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    return client.search_runs(experiments, filter_string=f"tags.`cardflow.kind` = '{kind}' and {condition} and "
                                                         "attributes.status = 'FINISHED'",
                              max_results=2000, order_by=["attributes.start_time DESC"])


def find_evaluation(client, variant: Variant, default: dict[str, str],
                    experiments: list[str] | None = None) -> tuple[str | None, dict[str, float]]:
    """The sweep run that evaluated this variant: preferably the default configuration with only this step
    swapped, on the clean distribution; else the variant's most accurate clean run; else any."""
    runs = _finished_runs(client, "config-run", f"params.{variant.step} = '{variant.id}'", experiments)
    if not runs:
        return None, {}

    def rank(run) -> tuple:
        others_default = all(run.data.params.get(step) == default.get(step) for step in STEPS if step != variant.step)
        clean = run.data.tags.get("cardflow.distribution") == "clean"
        return (others_default, clean, run.data.metrics.get("accuracy", 0.0), run.info.start_time)

    best = max(runs, key=rank)
    wanted = [*EVAL_METRICS, f"step.{variant.step}.latency_ms.p50", f"step.{variant.step}.latency_ms.p95"]
    return best.info.run_id, {k: best.data.metrics[k] for k in wanted if k in best.data.metrics}


PROFILE_METRICS = ("latency_ms.p50", "latency_ms.p95", "throughput_docs_s", "cost_per_1k_docs", "peak_rss_mb",
                   "cpu_utilisation")


def find_profile(client, variant: Variant, experiments: list[str] | None = None) -> tuple[str | None, dict[str, float]]:
    """The latest profile cell of this variant at its smallest size (fewest cores, then smallest batch):
    its latency, throughput and cost per document, logged as `profile.<metric>`."""
    runs = _finished_runs(client, "profile-cell", f"params.variant = '{variant.id}'", experiments)
    if not runs:
        return None, {}
    best = min(runs, key=lambda r: (int(r.data.params.get("cores", 1)), int(r.data.params.get("batch_size", 1)),
                                    -r.info.start_time))
    out = {f"profile.{k}": best.data.metrics[k] for k in PROFILE_METRICS if k in best.data.metrics}
    out["profile.cores"] = float(best.data.params.get("cores", 1))
    out["profile.batch_size"] = float(best.data.params.get("batch_size", 1))
    return best.info.run_id, out


def check_trained(variants: Sequence[Variant]) -> None:
    """Every variant's model files can be had (trained classifiers exist); lists the ones that cannot."""
    missing = []
    for variant in variants:
        try:
            variant.fingerprint()
        except StepError as exc:
            missing.append(f"{variant.id}: {exc}")
    if missing:
        raise RegistryError("cannot register these variants:\n  " + "\n  ".join(missing)
                            + "\n(train the classifiers with `cardflow train`, or pick variants with --variants)")


def register_variant(client, variant: Variant, store: ModelStore, experiment_id: str, parent_id: str | None,
                     example_rows: dict[str, Any], default: dict[str, str],
                     experiments: list[str] | None = None) -> Registered:
    """Log and register one variant unless a version with its fingerprint exists (then refresh its links to
    the runs that measured it, searched in `experiments`, default all)."""
    import mlflow
    from mlflow.models import Model

    started = time.perf_counter()
    name = model_name(variant.step, variant.model)
    fingerprint = variant.fingerprint()
    existing = find_version(client, name, fingerprint)
    eval_run, eval_metrics = find_evaluation(client, variant, default, experiments)
    profile_run, profile_metrics = find_profile(client, variant, experiments)
    if existing is not None:
        refreshed = _refresh_links(client, existing, variant, eval_run, eval_metrics, profile_run, profile_metrics)
        return Registered(variant.id, name, existing.version, fingerprint, False,
                          int(existing.tags.get(TAG_BYTES, 0)), time.perf_counter() - started,
                          eval_run or existing.tags.get(TAG_EVAL_RUN), refreshed=refreshed)
    _ensure_registered_model(client, name, variant)
    link_tags, description = _links(variant, eval_run, eval_metrics, profile_run, profile_metrics)
    eval_metrics = {**eval_metrics, **profile_metrics}
    with tempfile.TemporaryDirectory(prefix="cardflow-register-") as tmp:
        staged = Path(tmp) / "store"
        files = stage_store(variant, store, staged)
        size = sum((staged / rel).stat().st_size for rel in files)
        spec = variant_spec(variant, files)
        spec_file = Path(tmp) / "variant.json"
        spec_file.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
        tags = {"cardflow.kind": "register", TAG_VARIANT: variant.id, TAG_FINGERPRINT: fingerprint}
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        params = {"variant": variant.id, "step": variant.step, "model": variant.model, "version": variant.version,
                  "fingerprint": fingerprint, "implementation": variant.implementation, "batching": variant.batching,
                  **{f"param.{k}": v for k, v in variant.params_dict().items()},
                  **{f"sha256.{rel}": sha for rel, sha in files.items()}}
        if eval_run:
            params["eval_run_id"] = eval_run
        if profile_run:
            params["profile_run_id"] = profile_run
        run = client.create_run(experiment_id, run_name=f"register {variant.id}", tags=tags)
        run_id = run.info.run_id
        try:
            from mlflow.entities import Metric, Param

            stamp = int(time.time() * 1000)
            client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()],
                             metrics=[Metric(k, v, stamp, 0) for k, v in eval_metrics.items()])
            with mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None):
                info = Model.log(
                    None, name="model", flavor=CardflowFlavor, variant=variant, staged=staged, spec_file=spec_file,
                    onnx_file=onnx_model_file(variant, files), signature=signature(variant.step),
                    input_example=example_rows[variant.step], pip_requirements=pinned_requirements(variant.step),
                    metadata={"cardflow": {"variant": variant.id, "fingerprint": fingerprint}},
                    params={k: str(v) for k, v in variant.params_dict().items()},
                )
            version_tags = {TAG_VARIANT: variant.id, TAG_VERSION_NAME: variant.version, TAG_FINGERPRINT: fingerprint,
                            TAG_FILES: json.dumps(files, sort_keys=True), TAG_BYTES: str(size),
                            "cardflow.step": variant.step, "cardflow.implementation": variant.implementation}
            version_tags.update(link_tags)
            version = client.create_model_version(name, info.model_uri, run_id=run_id, tags=version_tags,
                                                  model_id=info.model_id,
                                                  description=description)
            _await_ready(client, name, version.version)
            client.set_terminated(run_id, "FINISHED")
        except BaseException as exc:
            client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
    return Registered(variant.id, name, version.version, fingerprint, True, size, time.perf_counter() - started,
                      eval_run, eval_metrics)


def _links(variant: Variant, eval_run: str | None, eval_metrics: dict[str, float], profile_run: str | None,
           profile_metrics: dict[str, float]) -> tuple[dict[str, str], str]:
    """The version tags and description that point at the runs which measured the variant."""
    tags = {}
    description = f"{variant.id}: {variant.description}"
    if eval_run:
        tags[TAG_EVAL_RUN] = eval_run
        step_p95 = eval_metrics.get(f"step.{variant.step}.latency_ms.p95")
        description += (f"\n\nEvaluated in run {eval_run}: accuracy {eval_metrics.get('accuracy', 0):.1%}"
                        + (f", {variant.step} p95 {step_p95:.0f} ms" if step_p95 is not None else ""))
    if profile_run:
        tags[TAG_PROFILE_RUN] = profile_run
        description += (f"\n\nProfiled in run {profile_run}: p95 {profile_metrics.get('profile.latency_ms.p95', 0):.0f} ms"
                        f" per document on {profile_metrics['profile.cores']:.0f} core(s) at batch "
                        f"{profile_metrics['profile.batch_size']:.0f}")
    return tags, description


def _refresh_links(client, existing, variant: Variant, eval_run: str | None, eval_metrics: dict[str, float],
                   profile_run: str | None, profile_metrics: dict[str, float]) -> bool:
    """Point an existing version at newer evaluation/profile runs (a sweep or profile that ran after it was
    registered): its tags, description, and the metrics on its registering run and logged model."""
    from mlflow.entities import Metric

    tags, description = _links(variant, eval_run, eval_metrics, profile_run, profile_metrics)
    if all(existing.tags.get(k) == v for k, v in tags.items()):
        return False
    for key, value in tags.items():
        client.set_model_version_tag(existing.name, existing.version, key, value)
    client.update_model_version(existing.name, existing.version, description=description)
    metrics = {**eval_metrics, **profile_metrics}
    if existing.run_id and metrics:
        stamp = int(time.time() * 1000)
        model_id = (existing.source or "").rsplit("/", 1)[-1] if (existing.source or "").startswith("models:/m-") else None
        client.log_batch(existing.run_id, metrics=[Metric(k, v, stamp, 0, model_id=model_id) for k, v in metrics.items()])
    return True


def _ensure_registered_model(client, name: str, variant: Variant) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, tags={"cardflow.step": variant.step, "cardflow.model": variant.model},
            description=f"CardFlow {variant.step} step, model {variant.model}: one version per variant "
                        f"(tag {TAG_VERSION_NAME}) and per change of its files or parameters.")


def _await_ready(client, name: str, version: str, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get_model_version(name, version).status
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise RegistryError(f"{name} version {version} did not become READY (status {status})")
        time.sleep(0.5)


def register_all(catalog: Catalog, store: ModelStore, *, variant_ids: Sequence[str] | None = None,
                 default: dict[str, str] | None = None,
                 on_done: Callable[[Registered], None] | None = None) -> list[Registered]:
    """Register the chosen variants (all by default); returns one entry per variant, new or unchanged."""
    variants = list(catalog) if variant_ids is None else [catalog.get(vid) for vid in variant_ids]
    if not variants:
        raise RegistryError("no variant selected to register (check --variants and --step)")
    check_trained(variants)
    uri = tracking_uri()
    probe(uri)
    with mlflow_errors(uri):
        client, parent_id, experiment_id = experiment_context(EXPERIMENT)
        rows = examples()
        # Where evaluations and profiles may be (listed once: the registering runs add no such runs).
        experiments = [e.experiment_id for e in client.search_experiments()]
        out = []
        for variant in variants:
            done = register_variant(client, variant, store, experiment_id, parent_id, rows, default or {}, experiments)
            out.append(done)
            if on_done:
                on_done(done)
    return out


def versions(tracking_uri: str, model: str | None = None) -> list[dict[str, Any]]:
    """Every CardFlow registered version with its variant, aliases and the metrics it was registered with."""
    probe(tracking_uri)
    with mlflow_errors(tracking_uri):
        return _versions(tracking_uri, model)


def _versions(tracking_uri: str, model: str | None) -> list[dict[str, Any]]:
    from mlflow.exceptions import MlflowException

    client = client_for(tracking_uri)
    names = sorted(m.name for m in client.search_registered_models(max_results=1000) if m.name.startswith("cardflow."))
    if model:
        names = [n for n in names if n == model or n.endswith(f".{model}")]
    rows = []
    for name in names:
        by_version: dict[str, list[str]] = {}
        for alias, number in client.get_registered_model(name).aliases.items():
            by_version.setdefault(str(number), []).append(alias)
        for mv in sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version)):
            try:
                metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
            except MlflowException:
                metrics = {}
            step = mv.tags.get("cardflow.step", name.split(".")[1])
            rows.append({"model": name, "version": mv.version, "variant": mv.tags.get(TAG_VARIANT, ""),
                         "aliases": ",".join(sorted(by_version.get(str(mv.version), []))), "accuracy": metrics.get("accuracy"),
                         "step_p95_ms": metrics.get(f"step.{step}.latency_ms.p95"),
                         "profile_p95_ms": metrics.get("profile.latency_ms.p95"),
                         "profile_cost_per_1k": metrics.get("profile.cost_per_1k_docs"),
                         "mb": int(mv.tags.get(TAG_BYTES, 0)) / 1e6, "fingerprint": mv.tags.get(TAG_FINGERPRINT, ""),
                         "eval_run": mv.tags.get(TAG_EVAL_RUN, ""),
                         "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(mv.creation_timestamp / 1000))})
    return rows


def versions_table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    if not rows:
        return "no CardFlow models registered yet (`cardflow registry register`)"
    table = [[r["model"], r["version"], r["variant"], r["aliases"],
              "" if r["accuracy"] is None else f"{r['accuracy']:.1%}",
              "" if r["step_p95_ms"] is None else f"{r['step_p95_ms']:.0f}",
              "" if r["profile_p95_ms"] is None else f"{r['profile_p95_ms']:.0f}",
              "" if r["profile_cost_per_1k"] is None else f"{r['profile_cost_per_1k']:.4f}", f"{r['mb']:.1f}",
              r["fingerprint"],
              r["created"]] for r in rows]
    return tabulate(table, headers=["model", "version", "variant", "aliases", "accuracy*", "step p95 ms*",
                                    "profiled p95 ms**", "USD/1k docs**", "MB", "fingerprint", "created"],
                    tablefmt="github") + (
        "\n*  from the sweep run that evaluated the variant (default configuration with this step swapped, clean "
        "preferred), when one exists\n** from the latest profile cell of the variant at its fewest cores and smallest "
        "batch, when profiled")
