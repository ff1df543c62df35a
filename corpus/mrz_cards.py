"""Real MRZ strings printed by the generator: each TD3 MRZ of a vectors file drawn as the machine-readable zone
of a synthetic passport data page and captured under the given distributions, as a CardFlow corpus.

    python -m corpus.mrz_cards VECTORS OUT [--distributions clean,phone] [--seed 2020] [--limit N]

Reads: VECTORS, a JSON list of {"template", "mrz_lines", "checker_valid"?, ...} (MIDV-2020's
aze_passport_mrz_vectors.json in ../shared/data/real-dev/midv2020_templates_sidtd/). Writes: OUT/corpus.json,
OUT/labels.jsonl and OUT/images/<distribution>/<distribution>-<index>.jpg (corpus/format.py), atomically; an
OUT that already holds the same rendering (same vectors, distributions, seed, renderer and font) is kept.

Each page is the generator's passport template (corpus/templates.py: one of the fictional issuers' background,
header, photo and signature, cycled by index) whose label grid shows only what the MRZ carries (names, sex,
dates, document and personal numbers) and whose MRZ is the vector's lines exactly as given. Ground truth:
those lines, the fields parsed from them (the `mrz` package's checker, named and dated as corpus.loaders names
ground_truth.json's), l1 `passport`, the issuing state; no level-2 class (the page is no real issuer's
template). Vectors that are not a TD3 zone (two lines of 44) are left out and listed in the manifest's `skipped`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from mrz.base.errors import FieldError, LengthError
from mrz.checker.td3 import TD3CodeChecker
from PIL import Image

from corpus import format as fmt
from corpus.capture import DEFAULT_DISTRIBUTIONS, capture, get_preset, pick_component
from corpus.errors import CorpusConflict, CorpusError
from corpus.fonts import mrz_font_name
from corpus.identity import Identity
from corpus.issuers import ISSUERS
from corpus.loaders import mrz_fields
from corpus.records import GroundTruth
from corpus.templates import render

RENDERER_VERSION = "1"
KIND = "rendered-real-mrz"
TD3_SHAPE = (2, 44)
_MRZ_KEYS = ("document_type", "country", "document_number", "birth_date", "expiry_date", "nationality", "sex",
             "surname", "name", "optional_data")


@dataclass(frozen=True)
class MrzVector:
    """One MRZ of the vectors file: its position there, the template it came from, the lines as given."""

    index: int
    template: str
    lines: tuple[str, ...]
    checker_valid: bool | None  # what the source recorded (None: it recorded no verdict)


@dataclass(frozen=True)
class _GivenMrz(Identity):
    """An identity whose MRZ is given rather than composed from its fields, and whose visual zone shows only
    the fields that MRZ carries (a printed nationality would be the background issuer's, not the MRZ's)."""

    given_mrz: tuple[str, ...] = ()
    printed: tuple[str, ...] = ()

    def mrz_lines(self) -> tuple[str, ...]:
        return self.given_mrz

    def fields(self) -> dict[str, str]:
        values = {"surname": self.surname, "given_names": self.given_names, "sex": self.sex,
                  "date_of_birth": self.birth.isoformat(), "date_of_expiry": self.expiry.isoformat(),
                  "document_number": self.document_number, "personal_number": self.personal_number}
        return {name: values[name] for name in self.printed}


def read_vectors(path: Path) -> list[MrzVector]:
    """The vectors of a JSON list file; a malformed file or item raises CorpusError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: malformed JSON ({exc})") from exc
    if not isinstance(data, list):
        raise CorpusError(f"{path}: expected a JSON list of MRZ vectors")
    vectors = []
    for k, item in enumerate(data):
        lines = item.get("mrz_lines") if isinstance(item, dict) else None
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise CorpusError(f"{path}: item {k} has no 'mrz_lines' list of strings")
        valid = item.get("checker_valid")
        vectors.append(MrzVector(k, str(item.get("template", k)), tuple(lines),
                                 valid if isinstance(valid, bool) else None))
    return vectors


def td3_fields(lines: Sequence[str]) -> dict[str, str]:
    """The fields of a TD3 zone as the `mrz` package's checker names them (the real-dev ground truth's names)."""
    try:
        parsed = TD3CodeChecker("\n".join(lines)).fields()._asdict()
    except (LengthError, FieldError) as exc:
        raise CorpusError(f"not a TD3 MRZ: {exc.args[0] if exc.args else exc}") from exc
    return {key: parsed[key] for key in _MRZ_KEYS}


def problem(vector: MrzVector) -> str | None:
    """Why a vector cannot be rendered as a TD3 page (None when it can)."""
    shape = (len(vector.lines), *sorted({len(line) for line in vector.lines}))
    if shape != TD3_SHAPE:
        return f"lines of {', '.join(str(len(x)) for x in vector.lines)} characters, not TD3 (2 x 44)"
    try:
        truth = mrz_fields(td3_fields(vector.lines))
    except CorpusError as exc:
        return str(exc)
    for name in ("date_of_birth", "date_of_expiry"):
        try:
            date.fromisoformat(truth[name])
        except ValueError:
            return f"{name} {truth[name]!r} is not a date"
    return None


def identity_of(vector: MrzVector, k: int) -> tuple[_GivenMrz, GroundTruth]:
    """The page's content (on the k-th fictional issuer's template, cycled) and its ground truth."""
    raw = td3_fields(vector.lines)
    truth_fields = mrz_fields(raw)
    birth, expiry = date.fromisoformat(truth_fields["date_of_birth"]), date.fromisoformat(truth_fields["date_of_expiry"])
    printed = ("surname", "given_names", "sex", "date_of_birth", "date_of_expiry", "document_number",
               *(("personal_number",) if truth_fields.get("personal_number") else ()))
    ident = _GivenMrz(
        issuer=ISSUERS[k % len(ISSUERS)], l1="passport", surname=truth_fields["surname"],
        given_names=truth_fields["given_names"], sex=truth_fields["sex"], birth=birth,
        issue=expiry - timedelta(days=3652), expiry=expiry, document_number=truth_fields["document_number"],
        place_of_birth="", authority="", personal_number=truth_fields.get("personal_number", ""), categories="",
        given_mrz=vector.lines, printed=printed)
    issuer = raw["country"].strip("<") or None
    return ident, GroundTruth(l1="passport", l2=None, issuer=issuer, fields=truth_fields, mrz_lines=vector.lines)


def render_document(vector: MrzVector, distribution: str, seed: int,
                    distributions_file: Path = DEFAULT_DISTRIBUTIONS) -> tuple[bytes, dict[str, Any]]:
    """One page as JPEG bytes and its labels.jsonl record (the document's content depends on (seed, index)
    only, its capture on the distribution too, as in corpus/generate.py)."""
    ident, truth = identity_of(vector, vector.index)
    content = np.random.default_rng(np.random.SeedSequence([seed, vector.index, 1]))
    card, text_lines = render(ident, content)
    shot = np.random.default_rng(np.random.SeedSequence([seed, vector.index, 2, zlib.crc32(distribution.encode())]))
    preset = get_preset(distribution, distributions_file)
    if preset.mixture:
        preset = get_preset(pick_component(preset, shot), distributions_file)
    image, corners, applied = capture(card, preset, shot)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=applied["jpeg_quality"], subsampling=2, optimize=False)
    truth = GroundTruth(truth.l1, truth.l2, truth.issuer, truth.fields, truth.mrz_lines, text_lines,
                        tuple((round(float(x), 2), round(float(y), 2)) for x, y in corners))  # type: ignore[arg-type]
    record = fmt.label_record(distribution=distribution, index=vector.index,
                              file=fmt.image_relpath(distribution, vector.index), truth=truth, capture=applied,
                              width=image.shape[1], height=image.shape[0])
    record["source"] = {"index": vector.index, "template": vector.template, "checker_valid": vector.checker_valid,
                        "background_issuer": ident.issuer.code}
    return buf.getvalue(), record


def identity(vectors_path: Path, distributions: Sequence[str], seed: int, limit: int | None,
             distributions_file: Path = DEFAULT_DISTRIBUTIONS) -> dict[str, Any]:
    """Everything that determines the output (the manifest's `spec`): an equal one means the same files."""
    return {"renderer_version": RENDERER_VERSION, "vectors_sha256": fmt.sha256_file(vectors_path),
            "distributions": {d: get_preset(d, distributions_file).to_json() for d in distributions},
            "seed": seed, "limit": limit, "mrz_font": mrz_font_name()}


def render_corpus(vectors_path: Path, out: Path, distributions: Sequence[str] = ("clean", "phone"), seed: int = 2020,
                  limit: int | None = None, distributions_file: Path = DEFAULT_DISTRIBUTIONS,
                  overwrite: bool = False) -> dict[str, Any]:
    """Render the first `limit` (all) TD3 vectors under every distribution into `out`; returns the manifest.
    An `out` holding this very rendering is kept; one holding something else is refused unless `overwrite`."""
    vectors_path, out = Path(vectors_path), Path(out)
    if not distributions or len(set(distributions)) != len(distributions):
        raise CorpusError(f"distributions must be given, each once: {', '.join(distributions) or 'none'}")
    spec = json.loads(json.dumps(identity(vectors_path, distributions, seed, limit, distributions_file)))
    manifest_path = out / fmt.MANIFEST
    if manifest_path.is_file():
        existing = json.loads(manifest_path.read_text(encoding="utf-8"))
        if existing.get("spec") == spec:
            return existing
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise CorpusConflict(f"output folder {out} exists and holds something else; choose another or overwrite")
    vectors = read_vectors(vectors_path)
    problems = {v.index: problem(v) for v in vectors}
    skipped = [{"index": v.index, "template": v.template, "reason": problems[v.index]} for v in vectors
               if problems[v.index]]
    kept = [v for v in vectors if not problems[v.index]][:limit]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        records, files = [], {}
        for distribution in distributions:
            for vector in kept:
                data, record = render_document(vector, distribution, seed, distributions_file)
                path = tmp / record["file"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                files[record["file"]] = fmt.sha256_file(path)
                records.append(record)
        (tmp / fmt.LABELS).write_text("".join(fmt.dumps_line(r) + "\n" for r in records), encoding="utf-8")
        files[fmt.LABELS] = fmt.sha256_file(tmp / fmt.LABELS)
        manifest = {
            "format": fmt.FORMAT_NAME, "kind": KIND, "spec": spec, "vectors": vectors_path.name,
            "description": (f"{len(kept)} real TD3 MRZ strings ({vectors_path.name}) printed in OCR-B on the "
                            "generator's synthetic passport pages"),
            "distributions": list(distributions), "skipped": skipped,
            "counts": {"documents": len(records), "vectors": len(vectors), "rendered": len(kept),
                       "by_distribution": dict(Counter(r["distribution"] for r in records))},
            "files": dict(sorted(files.items())), "manifest_sha256": fmt.manifest_sha256(files),
        }
        text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        (tmp / fmt.MANIFEST).write_text(text, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return json.loads(text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m corpus.mrz_cards", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vectors", type=Path, help="JSON list of MRZ vectors")
    parser.add_argument("out", type=Path, help="corpus folder to write")
    parser.add_argument("--distributions", default="clean,phone", help="capture presets, comma-separated")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--limit", type=int, default=None, help="render only the first N TD3 vectors")
    parser.add_argument("--overwrite", action="store_true", help="replace an OUT that holds something else")
    args = parser.parse_args(argv)
    manifest = render_corpus(args.vectors, args.out, tuple(args.distributions.split(",")), args.seed, args.limit,
                             overwrite=args.overwrite)
    counts = manifest["counts"]
    skipped = "; ".join(f"{s['template']}: {s['reason']}" for s in manifest["skipped"]) or "none"
    print(f"{counts['documents']} documents in {args.out} ({counts['rendered']} of {counts['vectors']} vectors; "
          f"skipped: {skipped})")


if __name__ == "__main__":
    main()
