"""The `cardflow` command line: every subcommand, its options and its help. Parsing only — each subcommand's
`run(args, ctx)` (set here) calls one library function; mlproject/cli.py runs it and maps errors to exit
codes through the one error table (common/errors.py).

Argument types are the shared parameter validators (common/params.py): the CLI, the MLproject entry points
(which pass '' for "the default" and numbers as "60.0") and library callers validate the same way.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.params import ParameterError, is_default, names, positive_int
from mlproject.envfiles import check_conda_yaml, write_conda_yaml

STEPS = ("preprocess", "ocr", "classify", "extract")  # steps/base.py's; the parser imports no library code

Run = Callable[[argparse.Namespace, Any], int]  # (arguments, mlproject.context.Context) -> exit status


def _module(name: str) -> Any:
    """A command module, imported when its subcommand runs (not to print --help: `cardflow --help` stays quick)."""
    return importlib.import_module(f"mlproject.{name}")


def _argtype(validator: Callable[[str, str], Any], name: str) -> Callable[[str], Any]:
    """An argparse type from a parameter validator (argparse prints its message with the option's name)."""
    def convert(value: str) -> Any:
        try:
            return validator(name, value)
        except ParameterError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"parameter {name}").lstrip(": ")) from exc
    return convert


def csv_list(value: str) -> tuple[str, ...]:
    items = names(value)
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list, got an empty value")
    return items


def optional(value: str) -> str | None:
    """A value, or None for an empty one (how MLproject entry points pass "use the default")."""
    return None if is_default(value) else value.strip()


def optional_path(value: str) -> Path | None:
    return None if is_default(value) else Path(value)


def optional_csv(value: str) -> tuple[str, ...] | None:
    return None if is_default(value) else csv_list(value)


POSITIVE = _argtype(positive_int, "value")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cardflow",
        description="Run, compare, serve and monitor ID-document pipelines (preprocess → OCR → classify → extract).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _corpus(sub)
    _steps(sub)
    _evaluate(sub)
    _profile(sub)
    _registry(sub)
    _serve(sub)
    _project(sub)
    return parser


def _corpus(sub) -> None:
    corpus = sub.add_parser("corpus", help="generate, inspect and show labelled corpora",
                            description="Generate, inspect and show labelled ID-document corpora.")
    csub = corpus.add_subparsers(dest="corpus_command", metavar="SUBCOMMAND", required=True)
    gen = csub.add_parser("generate", help="generate a synthetic labelled corpus",
                          description="Generate N synthetic ID documents under each named capture distribution. "
                                      "Writes DIR/corpus.json, DIR/labels.jsonl and DIR/images/.")
    gen.add_argument("--out", type=Path, required=True, help="output folder (created; refused if it holds something else)")
    gen.add_argument("--n", type=POSITIVE, default=60, help="documents per distribution (default 60)")
    gen.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    gen.add_argument("--distribution", "--distributions", dest="distribution", type=csv_list, default=("clean",),
                     help="capture distribution(s), comma-separated, from configs/distributions.yaml (default clean)")
    gen.add_argument("--workers", type=POSITIVE, default=2, help="worker processes (default 2)")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing, different corpus in --out")
    gen.set_defaults(run=lambda a, ctx: _ok(_module("commands").generate_corpus(
        out=a.out, n=a.n, seed=a.seed, distributions=a.distribution, workers=a.workers, overwrite=a.overwrite)))

    show = csub.add_parser("show", help="write a contact sheet of samples per distribution",
                           description="Write a PNG contact sheet: one row of sample documents per distribution.")
    show.add_argument("corpus", type=Path, help="corpus folder (any format `cardflow corpus info` reads)")
    show.add_argument("--out", type=Path, required=True, help="image file to write (.png or .jpg)")
    show.add_argument("--per-row", type=POSITIVE, default=4, help="documents per row (default 4)")
    show.add_argument("--thumb-height", type=POSITIVE, default=200, help="thumbnail height in px (default 200)")
    show.set_defaults(run=lambda a, ctx: _say(
        "contact sheet written to " + str(_module("commands").show_corpus(a.corpus, a.out, a.per_row, a.thumb_height))))

    stats = csub.add_parser("stats", help="image statistics per distribution",
                            description="Mean brightness, contrast, sharpness, skew, highlights and colour cast per "
                                        "distribution, on a sample of each.")
    stats.add_argument("corpus", type=Path, help="corpus folder")
    stats.add_argument("--sample", type=POSITIVE, default=20, help="documents per distribution (default 20)")
    stats.set_defaults(run=lambda a, ctx: _say(_module("commands").corpus_stats_table(a.corpus, sample=a.sample)))

    info = csub.add_parser("info", help="what a folder holds, as CardFlow reads it",
                           description="Load a corpus (CardFlow format, MIDV-500, MIDV-2020, ground_truth.json or "
                                       "a plain image folder) and print its format and counts.")
    info.add_argument("corpus", type=Path, help="corpus folder")
    info.add_argument("--verify", action="store_true", help="check every file's sha256 (CardFlow format)")
    info.set_defaults(run=lambda a, ctx: _say(_module("commands").corpus_info(a.corpus, verify=a.verify)))


def _steps(sub) -> None:
    variants = sub.add_parser("variants", help="the catalog of step variants",
                              description="Print every step variant (id, step, model, version, parameters).")
    variants.add_argument("--json", action="store_true", help="a JSON list of objects, for scripts")
    variants.add_argument("--step", choices=list(STEPS), help="one step only")
    variants.set_defaults(run=lambda a, ctx: _say(_module("commands").variants_listing(ctx, a.step, a.json)))

    train = sub.add_parser("train", help="train the classifiers on OCR text, export to ONNX, log to MLflow",
                           description="OCR a training corpus (generated from configs/pipeline.yaml's training "
                                       "section unless --corpus), fit every classifier family at levels 1 and 2, "
                                       "export to ONNX into the model store and log metrics and files to MLflow.")
    train.add_argument("--corpus", type=optional_path, help="training corpus (default: generate data/train-corpus)")
    train.add_argument("--preprocess", type=optional, help="preprocess variant for the training text (default: spec)")
    train.add_argument("--ocr", type=optional, help="OCR variant that makes the training text (default: spec)")
    train.add_argument("--families", type=csv_list, help="classifier families (default: all in the spec)")
    train.add_argument("--workers", type=POSITIVE, default=2, help="worker processes (default 2)")
    train.set_defaults(run=lambda a, ctx: _say(_module("commands").train_classifiers(
        ctx, corpus=a.corpus, preprocess=a.preprocess, ocr=a.ocr, families=a.families, workers=a.workers)))

    predict = sub.add_parser("predict", help="run one configuration on images, folders or corpora",
                             description="Run one configuration (default: configs/pipeline.yaml's default) and "
                                         "write one JSON line per document; on a labelled corpus, with assertions. "
                                         "Classifiers never trained are trained first (once).")
    predict.add_argument("paths", type=Path, nargs="+", help="image files, folders or corpus folders")
    predict.add_argument("--out", type=Path, required=True, help="predictions.jsonl to write")
    predict.add_argument("--config", help='four variant ids or names, "preprocess | ocr | classify | extract"')
    predict.add_argument("--batch-size", type=POSITIVE, default=4, help="documents per batch (default 4)")
    predict.add_argument("--threads", type=POSITIVE, default=None,
                         help="threads a batch's documents are spread over, in the steps that can (default: the "
                              "cores this process may use, at most the batch size)")
    predict.set_defaults(run=lambda a, ctx: _say(_module("commands").predict_documents(ctx, a.paths, a.out, a.config,
                                                                              a.batch_size, a.threads)))


def _sweep_arguments(parser: argparse.ArgumentParser, single: bool) -> None:
    what = "variant id or name (default: the spec's default configuration)" if single else \
        "comma-separated variant ids or names (default: the spec's grid)"
    parser.add_argument("--corpus", type=optional, help="corpus folder (default: generate one from "
                        "--distributions, --n, --seed under data/corpora/)")
    parser.add_argument("--distributions", "--distribution", dest="distributions", type=optional,
                        help="the distribution (one; default: the corpus's first, or the spec's first when generating)" if single else
                        "distribution(s), comma-separated (default: the spec's; with --corpus: all of it)")
    parser.add_argument("--n", default="30", help="documents per distribution when generating (default 30)")
    parser.add_argument("--seed", default="7", help="seed when generating (default 7)")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=optional,
                        help="documents per batch, fixed across configurations (default: the SLA's)")
    parser.add_argument("--workers", default="1" if single else "2", help="worker processes")
    parser.add_argument("--sla-ms", "--sla_ms", dest="sla_ms", type=optional,
                        help="end-to-end latency budget per document, p95 (default: the spec's)")
    for step in STEPS:
        parser.add_argument(f"--{step}", type=optional, help=f"{step}: {what}")
    _measure_arguments(parser, "a run")
    _executor_arguments(parser)


def _executor_arguments(parser: argparse.ArgumentParser, local: str = "this machine's process pool",
                        cpus: str = "--workers CPUs") -> None:
    parser.add_argument("--executor", type=optional, help=f"where the tasks run: local ({local}, "
                        "the default) or ray (Ray tasks; needs `pip install 'cardflow[ray]'`)")
    parser.add_argument("--ray-address", "--ray_address", dest="ray_address", type=optional,
                        help="with --executor ray: the cluster to join, HOST:PORT or ray://HOST:PORT (default: "
                             "$RAY_ADDRESS, else the cluster `ray start` runs on this machine, else a Ray instance started "
                             f"here with {cpus})")


def _measure_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--latency-repeats", "--latency_repeats", dest="latency_repeats", type=optional,
                        help=f"re-measuring windows at most for {what} whose SLA verdict is uncertain (or on a "
                             "Pareto front); 0 measures once (default: the spec's measure.repeats, 3)")
    parser.add_argument("--stability-pct", "--stability_pct", dest="stability_pct", type=optional,
                        help="windows agree when their p95 differ by at most this percentage (default 10)")
    parser.add_argument("--max-measure-s", "--max_measure_s", dest="max_measure_s", type=optional,
                        help="wall-time cap on the re-measuring, seconds (default 120)")


def _measure_params(a: argparse.Namespace) -> dict[str, Any]:
    return {"latency_repeats": a.latency_repeats, "stability_pct": a.stability_pct,
            "max_measure_s": a.max_measure_s}


def _sweep_params(a: argparse.Namespace) -> dict[str, Any]:
    return {"corpus": a.corpus, "distributions": a.distributions, "n": a.n, "seed": a.seed,
            "batch_size": a.batch_size, "workers": a.workers, "sla_ms": a.sla_ms,
            **{step: getattr(a, step) for step in STEPS}, **_measure_params(a), "executor": a.executor,
            "ray_address": a.ray_address}


def _evaluate(sub) -> None:
    sweep = sub.add_parser("sweep", help="every configuration of a grid × distributions as MLflow runs + a report",
                           description="Run a grid of configurations (per step: comma-separated variants, default "
                                       "the spec's grid) on every distribution: one MLflow parent run, one nested "
                                       "run per (configuration, distribution), and reports/<name>/report.md|html. "
                                       "Finished runs are skipped on a re-run; Ctrl-C ends open runs as KILLED.")
    _sweep_arguments(sweep, single=False)
    sweep.add_argument("--name", type=optional, help="sweep name (default: a hash of grid, corpus, batch size)")
    sweep.add_argument("--no-reuse", action="store_true", help="recompute every configuration from scratch "
                       "(no shared-prefix reuse; for benchmarks)")
    sweep.add_argument("--reports", type=Path, default=Path("reports"), help="report folder (default reports/)")
    sweep.add_argument("--search", type=optional, help="exhaustive (every configuration on every document, the "
                       "default) or halving (successive halving on documents: every configuration on a few, the best "
                       "1/eta on eta times as many, … until the full corpus)")
    sweep.add_argument("--search-eta", "--search_eta", dest="search_eta", type=optional,
                       help="with --search halving: keep 1/eta per stage, documents ×eta (default 5)")
    sweep.add_argument("--search-first-docs", "--search_first_docs", dest="search_first_docs", type=optional,
                       help="with --search halving: documents per distribution at the first stage (default 2, "
                            "rounded up to whole batches)")
    sweep.set_defaults(run=lambda a, ctx: _module("commands").sweep(
        ctx, **_sweep_params(a), name=a.name, reuse=not a.no_reuse, report_root=a.reports, search=a.search,
        search_eta=a.search_eta, search_first_docs=a.search_first_docs))

    run_config = sub.add_parser("run-config", help="one configuration on one distribution → one MLflow run",
                                description="Run one configuration — the given variants, the spec's default "
                                            "configuration for every step not given — on one distribution of a "
                                            "corpus: one MLflow run with the sweep's metrics.")
    _sweep_arguments(run_config, single=True)
    run_config.set_defaults(run=lambda a, ctx: _module("commands").run_config(ctx, **_sweep_params(a)))

    rec = sub.add_parser("recommend", help="re-run the recommender on a profile for another SLA or load",
                         description="Choose per step the version, batch size, cores and replicas that maximise "
                                     "accuracy within the SLA at a target load, then minimise cost. Exit 3 when "
                                     "nothing is feasible (the tightest constraint is printed).")
    rec.add_argument("--profile", required=True, help="the profile's MLflow parent run id")
    rec.add_argument("--load", type=float, help="target load, documents per second (default: the profile's)")
    rec.add_argument("--sla-ms", "--sla_ms", dest="sla_ms", type=optional, help="end-to-end budget, ms")
    rec.add_argument("--budget", action="append", help="a step budget, STEP=MS (repeatable)")
    rec.set_defaults(run=lambda a, ctx: _module("commands").recommend(a.profile, load=a.load, sla_ms=a.sla_ms, budgets=a.budget))


def _profile(sub) -> None:
    profile = sub.add_parser(
        "profile", help="each step variant × CPU cores × batch size: latency, throughput, utilisation, cost, "
                        "accuracy, and a recommendation under the SLA",
        description="Profile step variants across CPU cores and batch sizes, each cell in a process restricted to "
                    "that many cores; one MLflow run per cell under a profile run; report under reports/<name>/.")
    profile.add_argument("--corpus", type=optional, help="corpus folder (default: generate one; configs/pipeline.yaml "
                         "profile: n, seed, distributions)")
    profile.add_argument("--distributions", "--distribution", dest="distributions", type=optional,
                         help="distribution(s), comma-separated (default: the spec's profile distributions)")
    profile.add_argument("--n", type=optional, help="documents per distribution when generating")
    profile.add_argument("--seed", type=optional, help="seed when generating")
    profile.add_argument("--step", "--steps", dest="step", type=optional,
                         help="step(s) to profile, comma-separated, or auto: the two most expensive (default)")
    profile.add_argument("--versions", type=optional, help="variant ids or names, comma-separated (default: the "
                         "spec's profile versions); with several steps give full ids")
    profile.add_argument("--cores", type=optional, help="core counts, comma-separated (default 1,2,4)")
    profile.add_argument("--batch-sizes", "--batch_sizes", dest="batch_sizes", type=optional,
                         help="batch sizes, comma-separated (default 1,4,8)")
    profile.add_argument("--sla-ms", "--sla_ms", dest="sla_ms", type=optional,
                         help="end-to-end budget per document, p95 (default: the spec's)")
    profile.add_argument("--load", type=optional, help="target load, documents per second (default: the spec's)")
    profile.add_argument("--warmup", type=optional, help="warm-up batches per cell (default 1)")
    profile.add_argument("--min-batches", "--min_batches", dest="min_batches", type=optional,
                         help="timed batches per cell at least (default 3)")
    profile.add_argument("--min-seconds", "--min_seconds", dest="min_seconds", type=optional,
                         help="timed work per cell at least, seconds, per measuring window (default 2.0; cheap "
                              "steps need many batches)")
    _measure_arguments(profile, "a cell: windows after the first until two agree, at most this many more, "
                                "(max-measure-s: per cell)")
    _executor_arguments(profile, "one cell after another on this machine", "this machine's CPUs; each cell is a Ray "
                        "task with as many CPUs as its cores, on a CPU set of its own on its node")
    profile.add_argument("--name", type=optional, help="profile name (default: a hash of its parameters)")
    profile.add_argument("--reports", type=Path, default=Path("reports"), help="report folder (default reports/)")
    profile.set_defaults(run=lambda a, ctx: _module("commands").profile(
        ctx, corpus=a.corpus, distributions=a.distributions, n=a.n, seed=a.seed, steps=a.step,
        versions=a.versions, cores=a.cores, batch_sizes=a.batch_sizes, sla_ms=a.sla_ms, load=a.load, name=a.name,
        warmup=a.warmup, min_batches=a.min_batches, min_seconds=a.min_seconds, report_root=a.reports, **_measure_params(a),
        executor=a.executor, ray_address=a.ray_address))


def _registry(sub) -> None:
    reg = sub.add_parser("registry", help="versions in the MLflow Model Registry: register, list, promote, load",
                         description="Every step variant as a version of cardflow.<step>.<model> in the MLflow Model "
                                     "Registry (MLFLOW_TRACKING_URI; default sqlite:///mlflow.db), aliases promoted "
                                     "through gates, and a verified, cached loader.")
    rsub = reg.add_subparsers(dest="registry_command", metavar="SUBCOMMAND", required=True)
    register = rsub.add_parser("register", help="log and register every catalog variant (nothing new when unchanged)",
                               description="Log every variant (or the chosen ones) as an MLflow model and register it "
                                           "as a version of cardflow.<step>.<model>. A variant whose files and "
                                           "parameters are already registered is left alone.")
    register.add_argument("--variants", type=optional_csv, help="comma-separated variant ids or names (default: all)")
    register.add_argument("--step", type=optional_csv, help="only these steps (comma-separated)")
    register.set_defaults(run=lambda a, ctx: _module("registry_commands").register(ctx, a.variants, a.step))

    lst = rsub.add_parser("list", help="registered models, versions, variants, aliases, key metrics",
                          description="A table of every CardFlow registered model and version.")
    lst.add_argument("--model", help="one registered model (cardflow.<step>.<model> or just <model>)")
    lst.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    lst.set_defaults(run=lambda a, ctx: _module("registry_commands").list_versions(a.model, a.json))

    def gate_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--alias", default="champion", help="the alias to move (default champion; also challenger)")
        p.add_argument("--force", action="store_true", help="override failing gates (needs --reason)")
        p.add_argument("--reason", help="why a forced promotion is right; recorded with who forced it")
        p.add_argument("--corpus", type=optional_path, help="evaluate on this corpus (default: configs/pipeline.yaml "
                                                            "registry.gate, generated once)")
        p.add_argument("--distribution", help="the distribution both versions are evaluated on (default clean)")
        p.add_argument("--n", type=POSITIVE, help="documents per distribution of a generated gate corpus")
        p.add_argument("--tolerance", type=float, help="accuracy may drop by at most this much (absolute, e.g. 0.01)")
        p.add_argument("--workers", type=POSITIVE, default=2, help="processes generating a gate corpus")

    def gate(a: argparse.Namespace) -> dict[str, Any]:
        return {"corpus": a.corpus, "n": a.n, "distribution": a.distribution, "tolerance": a.tolerance,
                "workers": a.workers}

    promote = rsub.add_parser("promote", help="move an alias to a version if it passes the gates",
                              description="Evaluate the candidate and the alias's current holder on the same corpus "
                                          "and distribution; move the alias when accuracy is not lower than the "
                                          "holder's minus the tolerance and the step's p95 latency is within its "
                                          "SLA budget. Exit 3 when refused. Every decision is recorded.")
    promote.add_argument("model", help="registered model, e.g. cardflow.ocr.tesseract")
    promote.add_argument("--version", required=True, help="the candidate version number")
    gate_options(promote)
    promote.set_defaults(run=lambda a, ctx: _module("registry_commands").promote(
        ctx, a.model, a.version, a.alias, force=a.force, reason=a.reason, **gate(a)))

    rollback = rsub.add_parser("rollback", help="promote the alias's previous holder back (through the gates)",
                               description="Find the version that held the alias before the current holder (from the "
                                           "promotion history) and promote it back; --force --reason skips the gates.")
    rollback.add_argument("model", help="registered model, e.g. cardflow.ocr.tesseract")
    gate_options(rollback)
    rollback.set_defaults(run=lambda a, ctx: _module("registry_commands").rollback(
        ctx, a.model, a.alias, force=a.force, reason=a.reason, **gate(a)))

    hist = rsub.add_parser("history", help="every promotion, refusal and forced promotion",
                           description="The recorded promotion decisions, oldest first.")
    hist.add_argument("--model", help="one registered model")
    hist.add_argument("--alias", help="one alias")
    hist.set_defaults(run=lambda a, ctx: _module("registry_commands").show_history(a.model, a.alias))

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
    ld.set_defaults(run=lambda a, ctx: _module("registry_commands").load_version(a.step, a.model, alias=a.alias, version=a.version,
                                                                      cache=a.cache))

    img = rsub.add_parser("image", help="package a registered version as an OCI image (KServe modelcar layout)",
                          description="Resolve and verify a version (as `load` does), copy its files under /models "
                                      "of an image built with podman, labelled with the model, version, variant, "
                                      "fingerprint and every file's sha256 (also in /models/cardflow.json); a step "
                                      "server serves it with --model-dir, and an InferenceService takes it as "
                                      "STORAGE_URI=oci://<image> (serving/k8s/overlays/modelcar).")
    img.add_argument("model", help="a registered model, e.g. cardflow.ocr.tesseract")
    which = img.add_mutually_exclusive_group(required=True)
    which.add_argument("--alias", help="e.g. champion")
    which.add_argument("--version", help="a version number")
    img.add_argument("--tag", help="image tag (default localhost/cardflow/models/<model>:<version>)")
    img.add_argument("--base", default="localhost/cardflow/bookworm-python:3.11",
                     help="base image with a shell (default the debootstrapped Debian of deploy/base-image.sh)")
    img.set_defaults(run=lambda a, ctx: _module("registry_commands").modelcar(a.model, alias=a.alias,
                                                                             version=a.version, tag=a.tag,
                                                                             base=a.base))


def _serve(sub) -> None:
    srv = sub.add_parser("serve", help="serve registered versions over KServe's V2 protocol (`cardflow serve --help`)",
                         add_help=False, prefix_chars="\0",
                         description="Runs `python -m serving` with the same arguments: serving is a layer of its "
                                     "own (ARCHITECTURE.md), so the server runs in a process of its own.")
    srv.add_argument("args", nargs=argparse.REMAINDER, help="`cardflow serve --help` lists the subcommands")
    srv.set_defaults(run=lambda a, ctx: _serving(a.args, ctx))


def _serving(args: list[str], ctx) -> int:
    """Replace this process with `python -m serving ARGS` (its exit status is the command's). `serve up` may have
    to register the classifier it serves: the classifiers are trained first when they never were (as `demo` does)."""
    import os

    if args[:1] == ["up"] and not {"-h", "--help"} & set(args):
        from mlproject.train import ensure_trained

        ensure_trained(ctx.catalog, ctx.spec.grid["classify"], spec=ctx.spec)

    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "serving", *args])
    return 0  # not reached


def _project(sub) -> None:
    demo = sub.add_parser("demo", help="the main job, end to end, on embedded defaults",
                          description="The main job on embedded defaults, no server needed: generate the default "
                                      "corpus, train the classifiers, run the default sweep (configs/pipeline.yaml) "
                                      "as MLflow runs in sqlite:///mlflow.db, write reports/demo/.")
    demo.add_argument("--out", type=Path, default=Path("data/demo-corpus"), help="corpus folder (default data/demo-corpus)")
    demo.add_argument("--n", type=POSITIVE, default=25, help="documents per distribution (default 25)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--workers", type=POSITIVE, default=2, help="worker processes (default 2)")
    demo.set_defaults(run=lambda a, ctx: _ok(_module("commands").demo(ctx, out=a.out, n=a.n, seed=a.seed, workers=a.workers)))

    env = sub.add_parser("env-files", help="write conda.yaml from pyproject.toml's pins",
                         description="Write conda.yaml from the pinned dependencies in pyproject.toml "
                                     "(--check: only compare).")
    env.add_argument("--check", action="store_true", help="exit 1 if conda.yaml differs from pyproject.toml")
    env.set_defaults(run=lambda a, ctx: _env_files(a.check))


def _ok(_: Any) -> int:
    return 0


def _say(text: str) -> int:
    print(text)
    return 0


def _env_files(check: bool) -> int:
    if not check:
        return _say(f"wrote {write_conda_yaml()}")
    problems = check_conda_yaml()
    if problems:
        print("conda.yaml is out of step with pyproject.toml:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return _say("conda.yaml matches pyproject.toml")
