"""`cardflow predict`: one configuration on image files, folders or corpora → predictions.jsonl.

Reads: images (any format corpus.loaders reads, or single image files). Writes: one JSON line per
document (source, classes with scores at both levels, fields, MRZ lines and check results, per-step
latency; with ground truth, the assertions and whether each passed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from corpus.errors import CorpusError
from corpus.imageio import IMAGE_SUFFIXES
from corpus.loaders import load
from corpus.records import DocumentRef
from mlproject.train import ensure_trained
from steps.catalog import Catalog
from steps.runner import Pipeline
from steps.scoring import Summary
from steps.spec import PipelineSpec


def collect(paths: Sequence[Path]) -> list[DocumentRef]:
    """Documents from image files, folders and corpora, in the order given."""
    docs: list[DocumentRef] = []
    for path in paths:
        path = Path(path)
        if path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise CorpusError(f"{path} is not an image file (suffixes: {', '.join(IMAGE_SUFFIXES)})")
            docs.append(DocumentRef(doc_id=path.stem, path=path))
        else:
            docs.extend(load(path).documents)
    seen: set[str] = set()
    for doc in docs:
        if doc.doc_id in seen:
            raise CorpusError(f"two inputs share the document id {doc.doc_id!r}; pass them separately")
        seen.add(doc.doc_id)
    return docs


def predict(catalog: Catalog, spec: PipelineSpec, paths: Sequence[Path], out: Path, config: str | None = None,
            batch_size: int = 4, progress: bool = True, threads: int | None = None) -> Summary:
    """The configuration (default: the spec's) on every document; its classifier is trained on first use. A
    batch's documents are spread over `threads` (default: the cores this process may use, at most the batch
    size) in the steps that can (OCR engines release the GIL)."""
    configuration = catalog.parse(config) if config else spec.default
    docs = collect(paths)
    ensure_trained(catalog, [configuration.classify], spec=spec)
    pipeline = Pipeline(configuration, catalog, threads or min(len(os.sched_getaffinity(0)), batch_size))
    summary = Summary()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as fh, tqdm(total=len(docs), desc="predict", unit="doc",
                                                          disable=not progress, leave=False) as bar:
        for outcome in pipeline.run(docs, batch_size):
            record = {"configuration": configuration.id, **outcome.to_json()}
            assertions = summary.add(outcome)
            if outcome.truth is not None:
                record["assertions"] = assertions
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            bar.update(1)
    tmp.replace(out)
    return summary
