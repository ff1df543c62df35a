"""What the CLI and the MLproject entry points call: one function per command (corpus, variants, train,
predict, sweep, run-config, recommend, demo). Each prints what the user asked for and returns the exit
status; the registry's commands are in mlproject/registry_commands.py, the profile's in mlproject/profile.py."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from analysis.profile import asked_recommendation, load_profile, plan_table
from analysis.recommend import explain
from corpus.generate import GenerateSpec, generate
from corpus.loaders import load
from corpus.sheet import contact_sheet
from corpus.stats import image_stats
from mlproject.context import Context
from mlproject.predict import predict
from mlproject.profile import build_profile_request, print_profile_summary, run_profile
from mlproject.sweep import breakdown_text, build_request, print_summary, run_sweep
from mlproject.train import ensure_trained, train
from tracking.edge import attached_run, client_for, log_params, mlflow_errors, tracked, tracking_uri

log = logging.getLogger(__name__)


def generate_corpus(*, out: Path, n: int, seed: int, distributions: tuple[str, ...], workers: int,
                    overwrite: bool = False, progress: bool = True) -> dict:
    """Generate a corpus; under `mlflow run`, log its parameters, size, rate, manifest and a contact sheet.

    Reads configs/distributions.yaml; writes OUT/corpus.json, OUT/labels.jsonl, OUT/images/.
    """
    spec = GenerateSpec(out=Path(out), n=n, seed=seed, distributions=tuple(distributions))
    started = time.perf_counter()
    manifest = generate(spec, workers=workers, overwrite=overwrite, progress=progress)
    seconds = time.perf_counter() - started
    documents = manifest["counts"]["documents"]
    print(f"corpus: {documents} documents ({', '.join(spec.distributions)}) in {out} "
          f"[{seconds:.1f} s, {documents / max(seconds, 1e-9):.1f} docs/s, MRZ font: {manifest['fonts']['mrz']}]")
    with attached_run() as run:
        if run is not None:
            import mlflow

            log_params({"n": n, "seed": seed, "distributions": ",".join(spec.distributions),
                               "workers": workers, "generator_version": manifest["generator_version"],
                               "corpus_manifest_sha256": manifest["manifest_sha256"],
                               "mrz_font": manifest["fonts"]["mrz"]})
            mlflow.log_metrics({"documents": documents, "generate_seconds": seconds,
                                "docs_per_s": documents / max(seconds, 1e-9)})
            mlflow.log_artifact(str(Path(out) / "corpus.json"))
            sheet = contact_sheet(load(out), Path(out).parent / f"{Path(out).name}-sheet.png")
            mlflow.log_artifact(str(sheet))
    return manifest


def corpus_stats_table(path: Path, sample: int = 20) -> str:
    """Mean image statistics per distribution, on up to `sample` documents of each."""
    corpus = load(path)
    rows = []
    for dist in corpus.distributions:
        docs = [d for d in corpus if d.distribution == dist][:sample]
        values = [image_stats(d.read_image(), d.truth.corners if d.truth else None) for d in docs]
        keys = list(values[0])
        rows.append([dist, len(docs)] + [sum(v[k] for v in values) / len(values) for k in keys])
    return tabulate(rows, headers=["distribution", "docs", *keys], floatfmt=".3g")


def corpus_info(path: Path, verify: bool = False) -> str:
    corpus = load(path, verify=verify)
    lines = [f"{corpus.root}: format {corpus.format}, {len(corpus)} documents, manifest {corpus.manifest_hash[:12]}"]
    for dist in corpus.distributions:
        lines.append(f"  {dist}: {sum(1 for d in corpus if d.distribution == dist)}")
    labelled = sum(1 for d in corpus if d.truth is not None)
    lines.append(f"  labelled: {labelled}/{len(corpus)}")
    if verify:
        lines.append("  sha256 of every file verified")
    return "\n".join(lines)


def show_corpus(corpus: Path, out: Path, per_row: int, thumb_height: int) -> Path:
    return contact_sheet(load(corpus), out, per_row=per_row, thumb_height=thumb_height)


def variants_listing(ctx: Context, step: str | None, as_json: bool) -> str:
    rows = [r for r in ctx.catalog.describe() if not step or r["step"] == step]
    if as_json:
        return json.dumps(rows, indent=2)
    table = [[r["id"], r["step"], r["model"], r["version"],
              ", ".join(f"{k}={v}" for k, v in r["params"].items()), r["description"]] for r in rows]
    return tabulate(table, headers=["id", "step", "model", "version", "params", "description"],
                    maxcolwidths=[None] * 4 + [40, 50])


def train_classifiers(ctx: Context, *, corpus: Path | None, preprocess: str | None, ocr: str | None,
                      families: tuple[str, ...] | None, workers: int) -> str:
    with tracked("training"):
        report = train(ctx.catalog, ctx.store, corpus=corpus, preprocess=preprocess, ocr=ocr, families=families,
                       workers=workers, spec=ctx.spec)
    rows = [[name, m["holdout_accuracy"], m["holdout_macro_f1"], m["onnx_sklearn_agreement"], int(m["train_documents"])]
            for name, m in report.items()]
    return tabulate(rows, headers=["classifier", "holdout acc", "macro F1", "onnx = sklearn", "docs"], floatfmt=".3f")


def predict_documents(ctx: Context, paths: Sequence[Path], out: Path, config: str | None, batch_size: int,
                      threads: int | None = None) -> str:
    summary = predict(ctx.catalog, ctx.spec, paths, out, config=config, batch_size=batch_size, threads=threads)
    line = f"{summary.documents} documents, {summary.failures} failed, predictions in {out}"
    if summary.evaluated:
        line += f"; accuracy {summary.passed}/{summary.evaluated} assertions = {summary.accuracy:.1%}"
    return line


def sweep(ctx: Context, **params: Any) -> int:
    """A grid × distributions as MLflow runs and a report (parameters: mlproject.sweep.build_request's)."""
    with tracked("sweep"):
        result = run_sweep(build_request(catalog=ctx.catalog, spec=ctx.spec, **params), ctx.catalog, spec=ctx.spec)
        print_summary(result)
    return 0


def run_config(ctx: Context, **params: Any) -> int:
    """One configuration (the spec's default for every step not given) on one distribution → one run."""
    with tracked("run-config"):
        request = build_request(catalog=ctx.catalog, spec=ctx.spec, single=True, **params)
        result = run_sweep(request, ctx.catalog, spec=ctx.spec, write_report=False)
        (config_id, dist), run_id = next(iter(result.runs.items()))
        metrics = client_for().get_run(run_id).data.metrics
    print(f"run {run_id}: {config_id} @ {dist} ({'already finished: reused' if result.skipped else 'logged'})")
    verdict = result.verdicts.get((config_id, dist)) or client_for().get_run(run_id).data.tags.get(
        "cardflow.sla_verdict", "")
    print(f"accuracy {metrics.get('accuracy', 0) * 100:.1f}%, latency p95 {metrics.get('latency_ms.p95', 0):.0f} ms "
          f"per document (95% interval {metrics.get('latency_ms.p95_ci_low', 0):.0f}–"
          f"{metrics.get('latency_ms.p95_ci_high', 0):.0f} ms, measured "
          f"{metrics.get('latency_measurements', 1):.0f}×), SLA {request.sla.end_to_end_ms:.0f} ms: {verdict}; "
          f"per step (artifact step_breakdown.png):\n{breakdown_text(metrics)}")
    return 0


def recommend(profile: str, *, load: float | None, sla_ms: float | None, budgets: Sequence[str] | None) -> int:
    """The recommender again on a finished profile, for another SLA or load; exit 3 when nothing is feasible."""
    uri = tracking_uri()
    with mlflow_errors(uri, f"profile run {profile!r}"):
        data = load_profile(profile, client_for(uri))
    rec, end_to_end = asked_recommendation(data, load=load, sla_ms=sla_ms, budgets=budgets)
    print(explain(rec, end_to_end_ms=end_to_end, price_per_core_hour=data.manifest["prices"]["price_per_core_hour"],
                  currency=data.manifest["prices"]["currency"]))
    if rec.best:
        print()
        print(plan_table(rec).to_string(index=False))
    return 0 if rec.best else 3


def profile(ctx: Context, **params: Any) -> int:
    """Step variants × cores × batch sizes, and the recommendation (parameters: build_profile_request's)."""
    with tracked("profile"):
        # Every learned family is trained at once (the default's classifier stands for the profiled ones), after
        # the parameters are checked: a typo is refused at once, not after training.
        request = build_profile_request(
            catalog=ctx.catalog, spec=ctx.spec,
            prepare=lambda: ensure_trained(ctx.catalog, [ctx.spec.default.classify], spec=ctx.spec), **params)
        print_profile_summary(run_profile(request, ctx.catalog))
    return 0


def demo(ctx: Context, *, out: Path, n: int, seed: int, workers: int) -> None:
    """The main job on embedded defaults (no server): generate the default corpus over the spec's
    distributions, train the classifiers (once; `cardflow train` retrains), run the default sweep, write
    the report. Reads configs/; writes data/, models/, mlflow.db + mlruns/, reports/<sweep>/."""
    started = time.perf_counter()
    generate_corpus(out=out, n=n, seed=seed, distributions=ctx.spec.distributions, workers=workers)
    with tracked("demo"):
        if not ensure_trained(ctx.catalog, ctx.spec.grid["classify"], workers=workers, spec=ctx.spec):
            print("classifiers: already trained (models/classify/); `cardflow train` retrains them")
        request = build_request(catalog=ctx.catalog, spec=ctx.spec, corpus=out, workers=workers, name="demo")
        result = run_sweep(request, ctx.catalog, spec=ctx.spec)
        print_summary(result)
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s")
