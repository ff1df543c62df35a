"""CardFlow's own corpus format on disk.

    DIR/corpus.json     manifest: format, generator version, seed, distributions and their
                        parameters, counts, fonts, sha256 of every file, manifest_sha256
    DIR/labels.jsonl    one JSON object per document (see `label_record`), in document order
    DIR/images/<distribution>/<distribution>-<index>.jpg

Nothing in the manifest depends on the worker count or the time of generation, so the same
(seed, indices, distributions, generator version) gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corpus.errors import CorpusError
from corpus.records import DocumentRef, GroundTruth

FORMAT_NAME = "cardflow-corpus/1"
MANIFEST = "corpus.json"
LABELS = "labels.jsonl"
IMAGES = "images"

_REQUIRED_KEYS = ("id", "file", "distribution", "truth")


def doc_id(distribution: str, index: int) -> str:
    return f"{distribution}-{index:06d}"


def image_relpath(distribution: str, index: int, suffix: str = ".jpg") -> str:
    return f"{IMAGES}/{distribution}/{doc_id(distribution, index)}{suffix}"


def label_record(
    *,
    distribution: str,
    index: int,
    file: str,
    truth: GroundTruth,
    capture: Mapping[str, Any],
    width: int,
    height: int,
) -> dict[str, Any]:
    """One line of labels.jsonl."""
    return {
        "id": doc_id(distribution, index),
        "index": index,
        "file": file,
        "distribution": distribution,
        "width": width,
        "height": height,
        "truth": truth.to_json(),
        "capture": dict(capture),
    }


def dumps_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def parse_label_line(root: Path, labels_path: Path, lineno: int, line: str) -> DocumentRef:
    """Turn one labels.jsonl line into a DocumentRef; malformed lines raise CorpusError naming file:line."""
    where = f"{labels_path}:{lineno}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(obj, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in obj]
    if missing:
        raise CorpusError(f"{where}: missing key(s) {', '.join(missing)}")
    if not isinstance(obj["truth"], dict):
        raise CorpusError(f"{where}: 'truth' must be an object")
    try:
        truth = GroundTruth.from_json(obj["truth"])
    except (TypeError, ValueError) as exc:
        raise CorpusError(f"{where}: invalid 'truth' ({exc})") from exc
    path = root / obj["file"]
    meta = {k: v for k, v in obj.items() if k not in ("id", "file", "distribution", "truth")}
    return DocumentRef(doc_id=str(obj["id"]), path=path, distribution=str(obj["distribution"]), truth=truth, meta=meta)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_sha256(files: Mapping[str, str]) -> str:
    """Hash over the sorted (relative path, sha256) pairs: identifies a corpus's content."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(f"{rel}\0{files[rel]}\n".encode())
    return digest.hexdigest()
