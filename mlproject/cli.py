"""The `cardflow` command. Thin: parse flags, build a typed spec, call one library function.

Every subcommand has --help. Errors CardFlow raises on purpose are printed as one line naming the
file, field or parameter, with exit status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from common.errors import CardflowError

log = logging.getLogger("cardflow")


def _csv(value: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in value.split(",") if part.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list, got an empty value")
    return items


def _positive_int(value: str) -> int:
    try:
        as_float = float(value)  # MLflow passes numeric parameters through as given ("60" or "60.0")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from exc
    if not as_float.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}")
    number = int(as_float)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _optional_path(value: str) -> Path | None:
    """A path, or None for an empty value (how MLproject entry points pass "use the default")."""
    return Path(value) if value.strip() else None


def _optional_csv(value: str) -> tuple[str, ...] | None:
    """A comma-separated list, or None for an empty value (MLproject's "use the default")."""
    return _csv(value) if value.strip() else None


def _optional(value: str) -> str | None:
    return value.strip() or None


# --- corpus -------------------------------------------------------------------------------------

def cmd_corpus_generate(args: argparse.Namespace) -> int:
    from mlproject.commands import generate_corpus

    generate_corpus(out=args.out, n=args.n, seed=args.seed, distributions=args.distribution,
                    workers=args.workers, overwrite=args.overwrite)
    return 0


def cmd_corpus_show(args: argparse.Namespace) -> int:
    from corpus.loaders import load
    from corpus.sheet import contact_sheet

    path = contact_sheet(load(args.corpus), args.out, per_row=args.per_row, thumb_height=args.thumb_height)
    print(f"contact sheet written to {path}")
    return 0


def cmd_corpus_stats(args: argparse.Namespace) -> int:
    from mlproject.commands import corpus_stats_table

    print(corpus_stats_table(args.corpus, sample=args.sample))
    return 0


def cmd_corpus_info(args: argparse.Namespace) -> int:
    from mlproject.commands import corpus_info

    print(corpus_info(args.corpus, verify=args.verify))
    return 0


# --- steps --------------------------------------------------------------------------------------

def cmd_variants(args: argparse.Namespace) -> int:
    import json

    from tabulate import tabulate

    from steps.catalog import default_catalog

    rows = default_catalog().describe()
    if args.step:
        rows = [r for r in rows if r["step"] == args.step]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [[r["id"], r["step"], r["model"], r["version"],
              ", ".join(f"{k}={v}" for k, v in r["params"].items()), r["description"]] for r in rows]
    print(tabulate(table, headers=["id", "step", "model", "version", "params", "description"], maxcolwidths=[None] * 4 + [40, 50]))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from mlproject.train import train

    report = train(corpus=args.corpus, preprocess=args.preprocess, ocr=args.ocr, families=args.families,
                   workers=args.workers)
    rows = [[name, m["holdout_accuracy"], m["holdout_macro_f1"], m["onnx_sklearn_agreement"], int(m["train_documents"])]
            for name, m in report.items()]
    print(tabulate(rows, headers=["classifier", "holdout acc", "macro F1", "onnx = sklearn", "docs"], floatfmt=".3f"))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from mlproject.predict import predict

    summary = predict(args.paths, args.out, config=args.config, batch_size=args.batch_size)
    line = f"{summary.documents} documents, {summary.failures} failed, predictions in {args.out}"
    if summary.evaluated:
        line += f"; accuracy {summary.passed}/{summary.evaluated} assertions = {summary.accuracy:.1%}"
    print(line)
    return 0


# --- sweep --------------------------------------------------------------------------------------

def _sweep_request(args: argparse.Namespace, nested: bool):
    from mlproject.sweep import build_request

    return build_request(corpus=args.corpus, distributions=args.distributions, n=args.n, seed=args.seed,
                         batch_size=args.batch_size, workers=args.workers, sla_ms=args.sla_ms,
                         preprocess=args.preprocess, ocr=args.ocr, classify=args.classify, extract=args.extract,
                         name=getattr(args, "name", None), reuse=not getattr(args, "no_reuse", False), nested=nested,
                         report_root=getattr(args, "reports", Path("reports")))


def cmd_sweep(args: argparse.Namespace) -> int:
    from mlproject.sweep import print_summary, run_sweep

    result = run_sweep(_sweep_request(args, nested=True))
    print_summary(result)
    return 0


def cmd_run_config(args: argparse.Namespace) -> int:
    from mlproject.sweep import SweepError, run_sweep

    for step in ("preprocess", "ocr", "classify", "extract"):
        if getattr(args, step) and "," in getattr(args, step):
            raise SweepError(f"parameter {step}: run-config takes one variant, got {getattr(args, step)!r} (use sweep)")
    if args.distributions and "," in args.distributions:
        raise SweepError(f"parameter distribution: run-config takes one distribution, got {args.distributions!r}")
    result = run_sweep(_sweep_request(args, nested=False), write_report=False)
    (config_id, dist), run_id = next(iter(result.runs.items()))
    print(f"run {run_id}: {config_id} @ {dist} ({'already finished: reused' if result.skipped else 'logged'})")
    from mlflow.tracking import MlflowClient

    from mlproject.sweep import breakdown_text

    metrics = MlflowClient().get_run(run_id).data.metrics
    print(f"accuracy {metrics.get('accuracy', 0) * 100:.1f}%, latency p95 {metrics.get('latency_ms.p95', 0):.0f} ms "
          f"per document; per step (artifact step_breakdown.png):\n{breakdown_text(metrics)}")
    return 0


def _add_sweep_arguments(parser: argparse.ArgumentParser, single: bool) -> None:
    what = "variant id or name" if single else "comma-separated variant ids or names"
    parser.add_argument("--corpus", type=_optional, help="corpus folder (default: generate one from "
                        "--distributions, --n, --seed under data/corpora/)")
    parser.add_argument("--distributions", "--distribution", dest="distributions", type=_optional,
                        help="distribution(s), comma-separated (default: the spec's; with --corpus: all of it)")
    parser.add_argument("--n", default="30", help="documents per distribution when generating (default 30)")
    parser.add_argument("--seed", default="7", help="seed when generating (default 7)")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=_optional,
                        help="documents per batch, fixed across configurations (default: the SLA's)")
    parser.add_argument("--workers", default="2", help="worker processes (default 2)")
    parser.add_argument("--sla-ms", "--sla_ms", dest="sla_ms", type=_optional,
                        help="end-to-end latency budget per document, p95 (default: the spec's)")
    for step in ("preprocess", "ocr", "classify", "extract"):
        parser.add_argument(f"--{step}", type=_optional, help=f"{step}: {what} (default: the spec's grid)")


# --- profile ------------------------------------------------------------------------------------

def cmd_profile(args: argparse.Namespace) -> int:
    from mlproject.profile import build_profile_request, print_profile_summary, run_profile

    req = build_profile_request(corpus=args.corpus, distributions=args.distributions, n=args.n, seed=args.seed,
                                steps=args.step, versions=args.versions, cores=args.cores,
                                batch_sizes=args.batch_sizes, sla_ms=args.sla_ms, load=args.load, name=args.name,
                                warmup=args.warmup, min_batches=args.min_batches, report_root=args.reports)
    print_profile_summary(run_profile(req))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    import mlflow

    from analysis.profile import load_profile, plan_table, recommendation
    from analysis.recommend import explain
    from mlproject.profile import ProfileError
    from tracking.edge import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    try:
        data = load_profile(args.profile)
    except Exception as exc:  # noqa: BLE001 — MLflow raises several types for an unknown run
        raise ProfileError(f"parameter profile: no profile run {args.profile!r} at {tracking_uri()} ({exc})") from exc
    budgets = dict(data.manifest["sla"]["steps_ms"])
    for item in args.budget or ():
        step, _, value = item.partition("=")
        if step not in budgets or not value:
            raise ProfileError(f"parameter budget: expected STEP=MS with STEP one of {', '.join(budgets)}, got {item!r}")
        budgets[step] = float(value)
    end_to_end = float(args.sla_ms) if args.sla_ms else data.manifest["sla"]["end_to_end_ms"]
    rec = recommendation(data, load=args.load, end_to_end_ms=end_to_end, step_budgets_ms=budgets)
    print(explain(rec, end_to_end_ms=end_to_end, price_per_core_hour=data.manifest["prices"]["price_per_core_hour"],
                  currency=data.manifest["prices"]["currency"]))
    if rec.best:
        print()
        print(plan_table(rec).to_string(index=False))
    return 0 if rec.best else 3


# --- registry -----------------------------------------------------------------------------------

def _gatekeeper(args: argparse.Namespace):
    from registry.gates import Gatekeeper, gate_spec
    from steps.catalog import default_catalog
    from steps.spec import load_spec
    from tracking.edge import tracking_uri

    spec = load_spec(default_catalog())
    gate = gate_spec(spec.raw, spec.sla.steps_ms, spec.sla.batch_size, corpus=args.corpus, n=args.n,
                     distribution=args.distribution, accuracy_tolerance=args.tolerance)
    return Gatekeeper(tracking_uri(), gate, spec.default.as_dict(), workers=args.workers)


def cmd_registry_register(args: argparse.Namespace) -> int:
    import os

    from tqdm import tqdm

    from registry.register import register_all
    from steps.catalog import default_catalog
    from steps.errors import StepError
    from steps.modelstore import ModelStore
    from steps.spec import load_spec
    from tracking.edge import tracking_uri

    # One line per version (below) says what happened; MLflow's per-file download bars would bury it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    store = ModelStore()
    catalog = default_catalog(store)
    ids = [catalog.resolve(vid.split("/", 1)[0], vid) if "/" in vid else _any_step(catalog, vid)
           for vid in args.variants] if args.variants else None
    if args.step:
        from steps.base import STEPS

        unknown = [step for step in args.step if step not in STEPS]
        if unknown:
            raise StepError(f"parameter step: unknown step(s) {', '.join(unknown)}; steps: {', '.join(STEPS)}")
        ids = [vid for vid in (catalog.ids() if ids is None else ids) if vid.split("/", 1)[0] in args.step]
        if not ids:
            raise StepError(f"parameter step: none of the chosen variants is in step(s) {', '.join(args.step)}")
    total = len(ids) if ids else len(catalog)
    print(f"registering {total} variants at {tracking_uri()}")
    bar = tqdm(total=total, unit="variant", disable=not sys.stderr.isatty())
    done = []

    def report(entry) -> None:
        done.append(entry)
        bar.update(1)
        state = "new" if entry.new else "unchanged, links refreshed" if entry.refreshed else "unchanged"
        bar.write(f"  {entry.name} v{entry.version}  {entry.variant_id}  {state}  {entry.bytes / 1e6:.1f} MB  "
                  f"{entry.seconds:.1f} s")

    register_all(catalog, store, variant_ids=ids, default=load_spec(catalog).default.as_dict(), on_done=report)
    bar.close()
    new = [d for d in done if d.new]
    print(f"{len(new)} new versions, {len(done) - len(new)} unchanged, in {len({d.name for d in done})} registered "
          f"models; {sum(d.bytes for d in new) / 1e6:.1f} MB uploaded in {sum(d.seconds for d in done):.1f} s")
    return 0


def _any_step(catalog, name: str) -> str:
    from steps.base import STEPS
    from steps.errors import StepError

    for step in STEPS:
        try:
            return catalog.resolve(step, name)
        except StepError:
            continue
    raise StepError(f"parameter variants: unknown variant {name!r}; `cardflow variants` lists them")


def cmd_registry_list(args: argparse.Namespace) -> int:
    from registry.register import versions, versions_table
    from tracking.edge import tracking_uri

    rows = versions(tracking_uri(), args.model)
    if args.json:
        import json

        print(json.dumps(rows, indent=2))
    else:
        print(versions_table(rows))
    return 0


def _print_decision(decision) -> None:
    verb = {"promoted": "PROMOTED", "forced": "FORCED", "refused": "REFUSED", "unchanged": "UNCHANGED"}[decision.outcome]
    move = f"{decision.previous or '-'} → {decision.version}"
    print(f"{verb}: {decision.name}@{decision.alias} {move}")
    for line in decision.reasons:
        print(f"  pass  {line}")
    for line in decision.failed:
        print(f"  FAIL  {line}")
    if decision.run_id:
        print(f"  recorded as run {decision.run_id}")


def cmd_registry_promote(args: argparse.Namespace) -> int:
    from registry.register import mlflow_errors, probe

    gate = _gatekeeper(args)
    probe(gate.uri)
    with mlflow_errors(gate.uri):
        decision = gate.promote(args.model, args.version, args.alias, force=args.force, reason=args.reason)
    _print_decision(decision)
    return 0 if decision.accepted else 3


def cmd_registry_rollback(args: argparse.Namespace) -> int:
    from registry.register import RegistryError, mlflow_errors, probe

    gate = _gatekeeper(args)
    probe(gate.uri)
    with mlflow_errors(gate.uri):
        previous = gate.previous_holder(args.model, args.alias)
        if previous is None:
            raise RegistryError(f"{args.model}@{args.alias}: no earlier holder in the promotion history to roll back to")
        print(f"rolling {args.model}@{args.alias} back to version {previous}")
        decision = gate.promote(args.model, previous, args.alias, force=args.force, reason=args.reason)
    _print_decision(decision)
    return 0 if decision.accepted else 3


def cmd_registry_history(args: argparse.Namespace) -> int:
    from registry.gates import history, history_table
    from tracking.edge import tracking_uri

    print(history_table(history(tracking_uri(), name=args.model, alias=args.alias)))
    return 0


def cmd_registry_load(args: argparse.Namespace) -> int:
    from registry.loader import Loader

    loader = Loader(cache_dir=args.cache)
    variant = loader.load(args.step, args.model, alias=args.alias, version=args.version)
    found = variant.registered
    print(f"{found.name} version {found.version} ({found.variant_id}, fingerprint {found.fingerprint}) "
          f"from {found.origin} in {found.seconds:.2f} s\n  {found.path}")
    return 0


# --- project ------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from mlproject.commands import demo

    demo(out=args.out, n=args.n, seed=args.seed, workers=args.workers)
    return 0


def cmd_env_files(args: argparse.Namespace) -> int:
    from mlproject.envfiles import check_conda_yaml, write_conda_yaml

    if args.check:
        problems = check_conda_yaml()
        if problems:
            print("conda.yaml is out of step with pyproject.toml:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        print("conda.yaml matches pyproject.toml")
        return 0
    print(f"wrote {write_conda_yaml()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cardflow",
        description="Run, compare, serve and monitor ID-document pipelines (preprocess → OCR → classify → extract).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    corpus = sub.add_parser("corpus", help="generate, inspect and show labelled corpora",
                            description="Generate, inspect and show labelled ID-document corpora.")
    csub = corpus.add_subparsers(dest="corpus_command", metavar="SUBCOMMAND", required=True)

    gen = csub.add_parser("generate", help="generate a synthetic labelled corpus",
                          description="Generate N synthetic ID documents under each named capture distribution. "
                                      "Writes DIR/corpus.json, DIR/labels.jsonl and DIR/images/.")
    gen.add_argument("--out", type=Path, required=True, help="output folder (created; refused if it holds something else)")
    gen.add_argument("--n", type=_positive_int, default=60, help="documents per distribution (default 60)")
    gen.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    gen.add_argument("--distribution", "--distributions", dest="distribution", type=_csv, default=("clean",),
                     help="capture distribution(s), comma-separated, from configs/distributions.yaml (default clean)")
    gen.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default 2)")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing, different corpus in --out")
    gen.set_defaults(func=cmd_corpus_generate)

    show = csub.add_parser("show", help="write a contact sheet of samples per distribution",
                           description="Write a PNG contact sheet: one row of sample documents per distribution.")
    show.add_argument("corpus", type=Path, help="corpus folder (any format `cardflow corpus info` reads)")
    show.add_argument("--out", type=Path, required=True, help="image file to write (.png or .jpg)")
    show.add_argument("--per-row", type=_positive_int, default=4, help="documents per row (default 4)")
    show.add_argument("--thumb-height", type=_positive_int, default=200, help="thumbnail height in px (default 200)")
    show.set_defaults(func=cmd_corpus_show)

    stats = csub.add_parser("stats", help="image statistics per distribution",
                            description="Mean brightness, contrast, sharpness, skew, highlights and colour cast "
                                        "per distribution, measured on a sample of each.")
    stats.add_argument("corpus", type=Path, help="corpus folder")
    stats.add_argument("--sample", type=_positive_int, default=20, help="documents per distribution (default 20)")
    stats.set_defaults(func=cmd_corpus_stats)

    info = csub.add_parser("info", help="what a folder holds, as CardFlow reads it",
                           description="Load a corpus (CardFlow format, MIDV-500, MIDV-2020, ground_truth.json or "
                                       "a plain image folder) and print its format and counts.")
    info.add_argument("corpus", type=Path, help="corpus folder")
    info.add_argument("--verify", action="store_true", help="check every file's sha256 (CardFlow format)")
    info.set_defaults(func=cmd_corpus_info)

    variants = sub.add_parser("variants", help="the catalog of step variants",
                              description="Print every step variant (id, step, model, version, parameters).")
    variants.add_argument("--json", action="store_true", help="a JSON list of objects, for scripts")
    variants.add_argument("--step", choices=["preprocess", "ocr", "classify", "extract"], help="one step only")
    variants.set_defaults(func=cmd_variants)

    train = sub.add_parser("train", help="train the classifiers on OCR text, export to ONNX, log to MLflow",
                           description="OCR a training corpus (generated from configs/pipeline.yaml's training "
                                       "section unless --corpus), fit every classifier family at levels 1 and 2, "
                                       "export to ONNX into the model store and log metrics and files to MLflow.")
    train.add_argument("--corpus", type=_optional_path, help="training corpus (default: generate data/train-corpus)")
    train.add_argument("--preprocess", type=_optional, help="preprocess variant for the training text (default: spec)")
    train.add_argument("--ocr", type=_optional, help="OCR variant that makes the training text (default: spec)")
    train.add_argument("--families", type=_csv, help="classifier families (default: all in the spec)")
    train.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default 2)")
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser("predict", help="run one configuration on images, folders or corpora",
                             description="Run one configuration (default: configs/pipeline.yaml's default) and "
                                         "write one JSON line per document; on a labelled corpus, with assertions.")
    predict.add_argument("paths", type=Path, nargs="+", help="image files, folders or corpus folders")
    predict.add_argument("--out", type=Path, required=True, help="predictions.jsonl to write")
    predict.add_argument("--config", help='four variant ids or names, "preprocess | ocr | classify | extract"')
    predict.add_argument("--batch-size", type=_positive_int, default=4, help="documents per batch (default 4)")
    predict.set_defaults(func=cmd_predict)

    sweep = sub.add_parser("sweep", help="every configuration of a grid × distributions as MLflow runs + a report",
                           description="Run a grid of configurations (per step: comma-separated variants, default "
                                       "the spec's grid) on every distribution: one MLflow parent run, one nested "
                                       "run per (configuration, distribution), and reports/<name>/report.md|html. "
                                       "Finished runs are skipped on a re-run; Ctrl-C ends open runs as KILLED.")
    _add_sweep_arguments(sweep, single=False)
    sweep.add_argument("--name", type=_optional, help="sweep name (default: a hash of grid, corpus, batch size)")
    sweep.add_argument("--no-reuse", action="store_true", help="recompute every configuration from scratch "
                       "(no shared-prefix reuse; for benchmarks)")
    sweep.add_argument("--reports", type=Path, default=Path("reports"), help="report folder (default reports/)")
    sweep.set_defaults(func=cmd_sweep)

    run_config = sub.add_parser("run-config", help="one configuration on one distribution → one MLflow run",
                                description="Run one configuration (default: the spec's default) on one "
                                            "distribution of a corpus; one MLflow run with the sweep's metrics.")
    _add_sweep_arguments(run_config, single=True)
    run_config.set_defaults(func=cmd_run_config)

    profile = sub.add_parser(
        "profile", help="each step variant × CPU cores × batch size: latency, throughput, utilisation, cost, "
                        "accuracy, and a recommendation under the SLA",
        description="Profile step variants across CPU cores and batch sizes, each cell in a process restricted to "
                    "that many cores; one MLflow run per cell under a profile run; report under reports/<name>/.")
    profile.add_argument("--corpus", type=_optional, help="corpus folder (default: generate one; configs/pipeline.yaml "
                         "profile: n, seed, distributions)")
    profile.add_argument("--distributions", "--distribution", dest="distributions", type=_optional,
                         help="distribution(s), comma-separated (default: the spec's profile distributions)")
    profile.add_argument("--n", type=_optional, help="documents per distribution when generating")
    profile.add_argument("--seed", type=_optional, help="seed when generating")
    profile.add_argument("--step", "--steps", dest="step", type=_optional,
                         help="step(s) to profile, comma-separated, or auto: the two most expensive (default)")
    profile.add_argument("--versions", type=_optional, help="variant ids or names, comma-separated (default: the "
                         "spec's profile versions); with several steps give full ids")
    profile.add_argument("--cores", type=_optional, help="core counts, comma-separated (default 1,2,4)")
    profile.add_argument("--batch-sizes", "--batch_sizes", dest="batch_sizes", type=_optional,
                         help="batch sizes, comma-separated (default 1,4,8)")
    profile.add_argument("--sla-ms", "--sla_ms", dest="sla_ms", type=_optional,
                         help="end-to-end budget per document, p95 (default: the spec's)")
    profile.add_argument("--load", type=_optional, help="target load, documents per second (default: the spec's)")
    profile.add_argument("--warmup", type=_optional, help="warm-up batches per cell (default 1)")
    profile.add_argument("--min-batches", "--min_batches", dest="min_batches", type=_optional,
                         help="timed batches per cell at least (default 3)")
    profile.add_argument("--name", type=_optional, help="profile name (default: a hash of its parameters)")
    profile.add_argument("--reports", type=Path, default=Path("reports"), help="report folder (default reports/)")
    profile.set_defaults(func=cmd_profile)

    rec = sub.add_parser("recommend", help="re-run the recommender on a profile for another SLA or load",
                         description="Choose per step the version, batch size, cores and replicas that maximise "
                                     "accuracy within the SLA at a target load, then minimise cost. Exit 3 when "
                                     "nothing is feasible (the tightest constraint is printed).")
    rec.add_argument("--profile", required=True, help="the profile's MLflow parent run id")
    rec.add_argument("--load", type=float, help="target load, documents per second (default: the profile's)")
    rec.add_argument("--sla-ms", "--sla_ms", dest="sla_ms", type=_optional, help="end-to-end budget, ms")
    rec.add_argument("--budget", action="append", help="a step budget, STEP=MS (repeatable)")
    rec.set_defaults(func=cmd_recommend)

    reg = sub.add_parser("registry", help="versions in the MLflow Model Registry: register, list, promote, load",
                         description="Every step variant as a version of cardflow.<step>.<model> in the MLflow Model "
                                     "Registry (MLFLOW_TRACKING_URI; default sqlite:///mlflow.db), aliases promoted "
                                     "through gates, and a verified, cached loader.")
    rsub = reg.add_subparsers(dest="registry_command", metavar="SUBCOMMAND", required=True)
    register = rsub.add_parser("register", help="log and register every catalog variant (nothing new when unchanged)",
                               description="Log every variant (or the chosen ones) as an MLflow model and register it "
                                           "as a version of cardflow.<step>.<model>. A variant whose files and "
                                           "parameters are already registered is left alone.")
    register.add_argument("--variants", type=_optional_csv, help="comma-separated variant ids or names (default: all)")
    register.add_argument("--step", type=_optional_csv, help="only these steps (comma-separated)")
    register.set_defaults(func=cmd_registry_register)

    lst = rsub.add_parser("list", help="registered models, versions, variants, aliases, key metrics",
                          description="A table of every CardFlow registered model and version.")
    lst.add_argument("--model", help="one registered model (cardflow.<step>.<model> or just <model>)")
    lst.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    lst.set_defaults(func=cmd_registry_list)

    def gate_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--alias", default="champion", help="the alias to move (default champion; also challenger)")
        p.add_argument("--force", action="store_true", help="override failing gates (needs --reason)")
        p.add_argument("--reason", help="why a forced promotion is right; recorded with who forced it")
        p.add_argument("--corpus", type=_optional_path, help="evaluate on this corpus (default: configs/pipeline.yaml "
                                                             "registry.gate, generated once)")
        p.add_argument("--distribution", help="the distribution both versions are evaluated on (default clean)")
        p.add_argument("--n", type=_positive_int, help="documents per distribution of a generated gate corpus")
        p.add_argument("--tolerance", type=float, help="accuracy may drop by at most this much (absolute, e.g. 0.01)")
        p.add_argument("--workers", type=_positive_int, default=2, help="processes generating a gate corpus")

    promote = rsub.add_parser("promote", help="move an alias to a version if it passes the gates",
                              description="Evaluate the candidate and the alias's current holder on the same corpus "
                                          "and distribution; move the alias when accuracy is not lower than the "
                                          "holder's minus the tolerance and the step's p95 latency is within its "
                                          "SLA budget. Exit 3 when refused. Every decision is recorded.")
    promote.add_argument("model", help="registered model, e.g. cardflow.ocr.tesseract")
    promote.add_argument("--version", required=True, help="the candidate version number")
    gate_options(promote)
    promote.set_defaults(func=cmd_registry_promote)

    rollback = rsub.add_parser("rollback", help="promote the alias's previous holder back (through the gates)",
                               description="Find the version that held the alias before the current holder (from the "
                                           "promotion history) and promote it back; --force --reason skips the gates.")
    rollback.add_argument("model", help="registered model, e.g. cardflow.ocr.tesseract")
    gate_options(rollback)
    rollback.set_defaults(func=cmd_registry_rollback)

    hist = rsub.add_parser("history", help="every promotion, refusal and forced promotion",
                           description="The recorded promotion decisions, oldest first.")
    hist.add_argument("--model", help="one registered model")
    hist.add_argument("--alias", help="one alias")
    hist.set_defaults(func=cmd_registry_history)

    ld = rsub.add_parser("load", help="download (once), verify and load a version; print where it came from",
                         description="Resolve a version by alias or number, download it into the local cache "
                                     "($CARDFLOW_REGISTRY_CACHE or ~/.cache/cardflow/registry), verify every file's "
                                     "sha256 and load it; falls back to a verified cached copy when the server is "
                                     "unreachable.")
    ld.add_argument("step", help="preprocess, ocr, classify or extract")
    ld.add_argument("model", help="the step's model, e.g. tesseract")
    which = ld.add_mutually_exclusive_group(required=True)
    which.add_argument("--alias", help="e.g. champion")
    which.add_argument("--version", help="a version number")
    ld.add_argument("--cache", type=Path, help="cache folder (default $CARDFLOW_REGISTRY_CACHE or ~/.cache/cardflow/registry)")
    ld.set_defaults(func=cmd_registry_load)

    demo = sub.add_parser("demo", help="the main job, end to end, on embedded defaults",
                          description="The main job on embedded defaults, no server needed: generate the default "
                                      "corpus, train the classifiers, run the default sweep (configs/pipeline.yaml) "
                                      "as MLflow runs in sqlite:///mlflow.db, write reports/demo/.")
    demo.add_argument("--out", type=Path, default=Path("data/demo-corpus"), help="corpus folder (default data/demo-corpus)")
    demo.add_argument("--n", type=_positive_int, default=25, help="documents per distribution (default 25)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default 2)")
    demo.set_defaults(func=cmd_demo)

    env = sub.add_parser("env-files", help="write conda.yaml from pyproject.toml's pins",
                         description="Write conda.yaml from the pinned dependencies in pyproject.toml "
                                     "(--check: only compare).")
    env.add_argument("--check", action="store_true", help="exit 1 if conda.yaml differs from pyproject.toml")
    env.set_defaults(func=cmd_env_files)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CardflowError as exc:
        print(f"cardflow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cardflow: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 — a bug, not bad input: say so in one line, trace on -v
        log.debug("unexpected error", exc_info=True)
        print(f"cardflow: internal error: {type(exc).__name__}: {exc} (run with -v for the traceback; "
              "please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
