"""The synthetic corpus generator: fictional identity documents with exact ground truth.

Determinism: a document's content depends only on (seed, index) and its capture only on
(seed, index, distribution), so the same document appears under every distribution (paired
comparisons) and the output is byte-identical whatever the worker count.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from corpus import format as fmt
from corpus.capture import DEFAULT_DISTRIBUTIONS, capture, get_preset, load_presets, pick_component
from corpus.errors import CorpusConflict, CorpusError
from corpus.fonts import mrz_font_name, mrz_font_path
from corpus.identity import draw_identity
from corpus.issuers import ISSUER_BY_CODE, ISSUERS
from corpus.records import L1_CLASSES, GroundTruth
from corpus.templates import render

GENERATOR_VERSION = "1.3.0"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateSpec:
    """What to generate: n documents under each of the named distributions."""

    out: Path
    n: int
    seed: int
    distributions: tuple[str, ...]
    distributions_file: Path = DEFAULT_DISTRIBUTIONS

    def validate(self) -> None:
        if self.n < 1:
            raise CorpusError(f"n must be at least 1, got {self.n}")
        if not self.distributions:
            raise CorpusError("at least one distribution is needed")
        if len(set(self.distributions)) != len(self.distributions):
            raise CorpusError(f"distributions listed twice: {', '.join(self.distributions)}")
        for name in self.distributions:
            get_preset(name, self.distributions_file)

    def identity(self) -> dict[str, Any]:
        """Everything that determines the output (the manifest repeats it)."""
        presets = load_presets(self.distributions_file)
        return {
            "generator_version": GENERATOR_VERSION,
            "seed": self.seed,
            "n": self.n,
            "distributions": {name: presets[name].to_json() for name in self.distributions},
            "mrz_font": mrz_font_name(),
        }


def document_class(seed: int, index: int) -> tuple[str, str]:
    """(issuer code, level-1 class) of document `index`: every class equally often, in a seed-shuffled order."""
    combos = [(issuer.code, l1) for issuer in ISSUERS for l1 in L1_CLASSES]
    order = np.random.default_rng(np.random.SeedSequence([seed, 0xC1A55])).permutation(len(combos))
    return combos[int(order[index % len(combos)])]


def make_document(seed: int, index: int, distribution: str, distributions_file: Path) -> tuple[bytes, dict[str, Any]]:
    """One document: JPEG bytes and its labels.jsonl record."""
    code, l1 = document_class(seed, index)
    content = np.random.default_rng(np.random.SeedSequence([seed, index, 1]))
    ident = draw_identity(ISSUER_BY_CODE[code], l1, content)
    card, text_lines = render(ident, content)
    shot = np.random.default_rng(np.random.SeedSequence([seed, index, 2, zlib.crc32(distribution.encode())]))
    preset = get_preset(distribution, distributions_file)
    if preset.mixture:
        preset = get_preset(pick_component(preset, shot), distributions_file)
    image, corners, applied = capture(card, preset, shot)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=applied["jpeg_quality"], subsampling=2, optimize=False)
    truth = GroundTruth(
        l1=l1,
        l2=ident.l2,
        issuer=code,
        fields=ident.fields(),
        mrz_lines=ident.mrz_lines(),
        text_lines=text_lines,
        corners=tuple((round(float(x), 2), round(float(y), 2)) for x, y in corners),  # type: ignore[arg-type]
    )
    record = fmt.label_record(
        distribution=distribution,
        index=index,
        file=fmt.image_relpath(distribution, index),
        truth=truth,
        capture=applied,
        width=image.shape[1],
        height=image.shape[0],
    )
    return buf.getvalue(), record


def _write_chunk(args: tuple[Path, int, Sequence[tuple[int, str]], Path]) -> list[tuple[dict[str, Any], str]]:
    root, seed, jobs, distributions_file = args
    out = []
    for index, distribution in jobs:
        data, record = make_document(seed, index, distribution, distributions_file)
        path = root / record["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append((record, fmt.sha256_file(path)))
    return out


def _chunks(jobs: list[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def existing_matches(spec: GenerateSpec) -> bool:
    """True when spec.out already holds exactly this corpus (same identity), so generation can be skipped."""
    manifest_path = spec.out / fmt.MANIFEST
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return manifest.get("spec") == json.loads(json.dumps(spec.identity()))


def generate(spec: GenerateSpec, workers: int = 1, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Write the corpus to spec.out (atomically: a temporary folder renamed at the end). Returns the manifest.

    An existing identical corpus is kept as it is; an existing different one is refused unless overwrite.
    """
    spec.validate()
    if existing_matches(spec):
        log.info("corpus %s already holds this corpus; nothing to do", spec.out)
        return json.loads((spec.out / fmt.MANIFEST).read_text())
    if spec.out.exists() and any(spec.out.iterdir()) and not overwrite:
        raise CorpusConflict(f"output folder {spec.out} exists and holds something else; "
                          "choose another --out or pass --overwrite")
    spec.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.out.name}.", dir=spec.out.parent))
    try:
        jobs = [(index, dist) for dist in spec.distributions for index in range(spec.n)]
        chunk_size = max(1, min(16, len(jobs) // (4 * max(1, workers)) or 1))
        tasks = [(tmp, spec.seed, chunk, spec.distributions_file) for chunk in _chunks(jobs, chunk_size)]
        results: list[tuple[dict[str, Any], str]] = []
        bar = tqdm(total=len(jobs), desc="generate", unit="doc", disable=not progress, leave=False)
        if workers <= 1:
            for task in tasks:
                results.extend(_write_chunk(task))
                bar.update(len(task[2]))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for chunk_result in pool.map(_write_chunk, tasks):
                    results.extend(chunk_result)
                    bar.update(len(chunk_result))
        bar.close()
        manifest = _finish(tmp, spec, results)
        if spec.out.exists():
            shutil.rmtree(spec.out)
        os.replace(tmp, spec.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _finish(root: Path, spec: GenerateSpec, results: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """Write labels.jsonl and corpus.json (in document order, independent of worker scheduling)."""
    order = {name: k for k, name in enumerate(spec.distributions)}
    results.sort(key=lambda item: (order[item[0]["distribution"]], item[0]["index"]))
    labels = root / fmt.LABELS
    with open(labels, "w", encoding="utf-8") as fh:
        for record, _ in results:
            fh.write(fmt.dumps_line(record) + "\n")
    files = {record["file"]: sha for record, sha in results}
    files[fmt.LABELS] = fmt.sha256_file(labels)
    records = [record for record, _ in results]
    manifest = {
        "format": fmt.FORMAT_NAME,
        "spec": spec.identity(),
        "generator_version": GENERATOR_VERSION,
        "seed": spec.seed,
        "n_per_distribution": spec.n,
        "distributions": list(spec.distributions),
        "fonts": {"mrz": mrz_font_name(), "mrz_path": str(mrz_font_path()), "visual": "DejaVu (matplotlib)"},
        "image_format": "jpeg",
        "counts": {
            "documents": len(records),
            "by_distribution": dict(Counter(r["distribution"] for r in records)),
            "by_l1": dict(sorted(Counter(r["truth"]["l1"] for r in records).items())),
            "by_l2": dict(sorted(Counter(r["truth"]["l2"] for r in records).items())),
            "by_capture_preset": dict(sorted(Counter(r["capture"]["preset"] for r in records).items())),
        },
        "files": dict(sorted(files.items())),
        "manifest_sha256": fmt.manifest_sha256(files),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (root / fmt.MANIFEST).write_text(text)
    return json.loads(text)
