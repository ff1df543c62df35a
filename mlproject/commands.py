"""What the CLI and the MLproject entry points call: one function per command."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from corpus.generate import GenerateSpec, generate
from corpus.loaders import load
from tracking.edge import attached_run, log_params

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

            from corpus.sheet import contact_sheet

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
    from tabulate import tabulate

    from corpus.stats import image_stats

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


def demo(*, out: Path, n: int, seed: int, workers: int) -> None:
    """The main job on embedded defaults (no server): generate the default corpus over the spec's
    distributions, train the classifiers (once; `cardflow train` retrains), run the default sweep, write
    the report. Reads configs/; writes data/, models/, mlflow.db + mlruns/, reports/<sweep>/."""
    from mlproject.sweep import build_request, print_summary, run_sweep
    from mlproject.train import train
    from steps.catalog import default_catalog
    from steps.errors import StepError
    from steps.spec import load_spec

    started = time.perf_counter()
    catalog = default_catalog()
    spec = load_spec(catalog)
    generate_corpus(out=out, n=n, seed=seed, distributions=spec.distributions, workers=workers)
    try:
        for vid in spec.grid["classify"]:
            catalog.get(vid).load()
        print("classifiers: already trained (models/classify/); `cardflow train` retrains them")
    except StepError:
        print("classifiers: training (OCR of the training corpus, then 3 families × 2 levels)…")
        train(workers=workers)
    request = build_request(corpus=out, distributions=None, workers=workers, name="demo")
    result = run_sweep(request)
    print_summary(result)
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s")
