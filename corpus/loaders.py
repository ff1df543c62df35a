"""Load a labelled (or unlabelled) document corpus from disk, whatever layout it comes in.

    load(path)                      recognise the layout and read it
    load(path, format="midv2020")   force one of FORMATS

Formats: CardFlow's own (`cardflow`), the shared real-dev `ground_truth.json` (`gt-json`), MIDV-2020
VIA annotations (`midv2020`), MIDV-500 per-frame quads (`midv500`) and a plain image folder (`folder`).
Field names are mapped to CardFlow's (see MIDV_NAMES, MRZ_NAMES); dates are stored as ISO YYYY-MM-DD.
Every problem is a CorpusError naming the file (and line); nothing is skipped silently.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from corpus.errors import CorpusError
from corpus.format import FORMAT_NAME, LABELS, MANIFEST, parse_label_line, sha256_file
from corpus.imageio import IMAGE_SUFFIXES
from corpus.records import Corpus, DocumentRef, GroundTruth, Point

log = logging.getLogger(__name__)

FORMATS = ("cardflow", "gt-json", "midv2020", "midv500", "folder")
_EXPECTED = (
    "cardflow (corpus.json + labels.jsonl), gt-json (ground_truth.json with 'items'), "
    "midv2020 (annotations/<type>.json VIA files), midv500 (<type>/ground_truth/<clip>/<frame>.json "
    "next to <type>/images/), folder (image files)"
)
MIDV_NAMES = {
    "name": "given_names", "number": "document_number", "id_number": "personal_number",
    "birth_date": "date_of_birth", "expiry_date": "date_of_expiry", "issue_date": "date_of_issue",
    "birth_place": "place_of_birth", "gender": "sex",
}  # fmt: skip
MRZ_NAMES = {"name": "given_names", "birth_date": "date_of_birth", "expiry_date": "date_of_expiry"}
NON_TEXT_FIELDS = frozenset({"photo", "signature", "face"})
_VIA_DIRS = ("annotations", "annotations_via")
_GT_KEYS = ("file", "doc_class", "mrz_lines", "fields", "midv_fields")  # the rest of an item goes to meta
_DMY = re.compile(r"^(\d{2})[.\-/](\d{2})[.\-/](\d{4})$")
_MRZ_LINE = re.compile(r"^mrz_line(\d+)$")
_SHOW = 5  # how many missing paths an error or warning message lists


def load(path: str | Path, *, format: str | None = None, strict: bool = True, verify: bool = False) -> Corpus:
    """Read the corpus at `path` (a directory). `format` forces a layout; `strict=False` loads what is
    present and lists what is missing in the manifest (with a warning); `verify` checks sha256 sums
    (cardflow only)."""
    root = Path(path)
    if not root.exists():
        raise CorpusError(f"corpus path does not exist: {root}")
    if not root.is_dir():
        raise CorpusError(f"corpus path is a file, expected a directory: {root}")
    if format is None:
        format = detect(root)
    elif format not in FORMATS:
        raise CorpusError(f"unknown corpus format {format!r}; valid formats: {', '.join(FORMATS)}")
    if verify and format != "cardflow":
        log.warning("verify=True has no effect for format %s at %s (it carries no checksums)", format, root)
    docs, manifest = _LOADERS[format](root, strict, verify)
    if not docs:
        raise CorpusError(f"no documents found in {root} (format {format})")
    return Corpus(root=root, format=format, documents=tuple(docs), manifest=manifest)


def detect(root: Path) -> str:
    """The format name of the corpus at `root`, in the documented detection order."""
    if (root / MANIFEST).is_file():
        return "cardflow"
    gt = root / "ground_truth.json"
    if gt.is_file() and isinstance(data := _read_json(gt), dict) and "items" in data:
        return "gt-json"
    if _via_files(root):
        return "midv2020"
    if _is_midv500(root):
        return "midv500"
    if _image_files(root):
        return "folder"
    raise CorpusError(f"no documents found in {root}; expected one of: {_EXPECTED}")


# ---------------------------------------------------------------------------------------------- helpers
def _read_json(path: Path) -> Any:
    """Parsed JSON of `path`; unreadable or malformed files raise CorpusError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: malformed JSON ({exc})") from exc


def _image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, hidden entries ignored), sorted by relative path."""
    found = [
        p for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]  # fmt: skip
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _unique_ids(rels: list[str]) -> list[str]:
    """Relative paths without suffix; paths whose stems collide (a.jpg, a.png) keep their suffix."""
    stems = [str(Path(r).with_suffix("")) for r in rels]
    return [r if stems.count(s) > 1 else s for r, s in zip(rels, stems, strict=True)]


def _missing(root: Path, missing: list[str], total: int, strict: bool, what: str) -> list[str]:
    """Raise (strict) or warn about `missing` files; returns them for the manifest."""
    if missing:
        msg = (f"{len(missing)} of {total} {what} under {root}: {', '.join(missing[:_SHOW])}"
               + (", ..." if len(missing) > _SHOW else ""))
        if strict:
            raise CorpusError(msg + " (pass strict=False to load the present ones)")
        log.warning("%s; loading the %d present ones", msg, total - len(missing))
    return missing


def iso_date(value: str) -> str:
    """`14.08.1994` / `20-11-1991` -> `1994-08-14`; anything else is returned unchanged."""
    m = _DMY.match(value.strip())
    if not m:
        return value
    try:
        return dt.date(int(m[3]), int(m[2]), int(m[1])).isoformat()
    except ValueError:
        return value


def mrz_date(value: str, *, birth: bool) -> str:
    """MRZ `YYMMDD` -> ISO. Birth: 19YY if YY is after this year's YY, else 20YY; expiry: always 20YY."""
    if not re.fullmatch(r"\d{6}", value):
        return value
    yy = int(value[:2])
    century = 1900 if birth and yy > dt.date.today().year % 100 else 2000
    try:
        return dt.date(century + yy, int(value[2:4]), int(value[4:6])).isoformat()
    except ValueError:
        return value


def _type_l1(doc_type: str) -> str | None:
    """Level-1 class from a MIDV type name: aze_passport, esp_drvlic, alb_id."""
    name = doc_type.lower()
    if "passport" in name:
        return "passport"
    if "drvlic" in name or "driving" in name:
        return "driving_licence"
    return "id_card" if "id" in name.split("_") else None


def _code(text: Any) -> str | None:
    """A 3-letter country code from `text` (e.g. 'esp', 'AZE', 'D<<' -> None), upper-cased."""
    code = str(text or "").strip().strip("<").upper()
    return code if re.fullmatch(r"[A-Z]{3}", code) else None


def _type_issuer(doc_type: str) -> str | None:
    """alb_id -> ALB, 43_tur_id -> TUR."""
    return _code(re.sub(r"^\d+_", "", doc_type).split("_")[0])


def _truth(l1: str | None, issuer: str | None, **kwargs: Any) -> GroundTruth:
    """GroundTruth with l2 = "<issuer>.<l1>" when both are known."""
    l2 = f"{issuer}.{l1}" if l1 and issuer else None
    return GroundTruth(l1=l1, l2=l2, issuer=issuer, **kwargs)


def midv_fields(named: Iterable[tuple[str, str]]) -> tuple[dict[str, str], tuple[str, ...]]:
    """MIDV (field_name, value) pairs -> (CardFlow fields, MRZ lines in line order); photo-like regions and
    unnamed ones are dropped, dates become ISO."""
    fields: dict[str, str] = {}
    mrz: dict[int, str] = {}
    for name, value in named:
        if (m := _MRZ_LINE.match(name)) is not None:
            mrz[int(m[1])] = value
        elif name and name not in NON_TEXT_FIELDS:
            fields.setdefault(MIDV_NAMES.get(name, name), iso_date(value) if "date" in name else value)
    return fields, tuple(mrz[i] for i in sorted(mrz))


def mrz_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """Fields named like the `mrz` package's checkers -> CardFlow names, ISO dates."""
    out: dict[str, str] = {}
    for name, value in fields.items():
        value = "" if value is None else str(value)
        if name == "optional_data":
            if value.strip("< "):
                out["personal_number"] = value.strip("< ")
        elif name in ("birth_date", "expiry_date"):
            out[MRZ_NAMES[name]] = mrz_date(value, birth=name == "birth_date")
        else:
            out[MRZ_NAMES.get(name, name)] = value
    return out


# ---------------------------------------------------------------------------------------------- cardflow
def _load_cardflow(root: Path, strict: bool, verify: bool) -> tuple[list[DocumentRef], dict[str, Any]]:
    """corpus.json + labels.jsonl. A listed image that is absent is always an error (whatever `strict`)."""
    manifest_path, labels_path = root / MANIFEST, root / LABELS
    if not manifest_path.is_file():
        raise CorpusError(f"{manifest_path}: manifest not found")
    manifest = _read_json(manifest_path)
    if not isinstance(manifest, dict):
        raise CorpusError(f"{manifest_path}: expected a JSON object, got {type(manifest).__name__}")
    if manifest.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise CorpusError(f"{manifest_path}: format {manifest['format']!r} is not {FORMAT_NAME!r}")
    if not labels_path.is_file():
        raise CorpusError(f"{labels_path}: labels file not found")
    try:
        lines = labels_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read {labels_path}: {exc}") from exc
    docs: list[DocumentRef] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = parse_label_line(root, labels_path, lineno, line)
        except (TypeError, AttributeError) as exc:  # e.g. a non-string "file"
            raise CorpusError(f"{labels_path}:{lineno}: invalid record ({exc})") from exc
        if not doc.path.is_relative_to(root) or ".." in doc.path.relative_to(root).parts:
            raise CorpusError(f"{labels_path}:{lineno}: file {doc.path} lies outside the corpus {root}")
        if doc.doc_id in seen:
            raise CorpusError(f"{labels_path}:{lineno}: duplicate document id {doc.doc_id!r}")
        if not doc.path.is_file():
            raise CorpusError(f"{labels_path}:{lineno}: image file not found: {doc.path}")
        seen.add(doc.doc_id)
        docs.append(doc)
    if not docs:
        raise CorpusError(f"{labels_path}: labels file is empty")
    if verify:
        _verify(root, manifest_path, manifest, docs)
    return docs, manifest


def _verify(root: Path, manifest_path: Path, manifest: Mapping[str, Any], docs: list[DocumentRef]) -> None:
    """Every file listed in corpus.json["files"] has its sha256; every document's image is listed."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise CorpusError(f"{manifest_path}: no 'files' sha256 map to verify against")
    for rel, expected in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            raise CorpusError(f"{path}: listed in {manifest_path} but not found")
        actual = sha256_file(path)
        if actual != expected:
            raise CorpusError(f"{path}: sha256 mismatch ({manifest_path} says {expected}, file has {actual})")
    for doc in docs:
        if doc.path.relative_to(root).as_posix() not in files:
            raise CorpusError(f"{doc.path}: not listed in the 'files' of {manifest_path}")


# ---------------------------------------------------------------------------------------------- gt-json
def _load_gt_json(root: Path, strict: bool, verify: bool) -> tuple[list[DocumentRef], dict[str, Any]]:
    """ground_truth.json {"dataset", "items"}; ids are the files' relative paths without suffix."""
    gt_path = root / "ground_truth.json"
    data = _read_json(gt_path)
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise CorpusError(f"{gt_path}: expected {{'dataset': ..., 'items': [...]}}")
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("file"), str):
            raise CorpusError(f"{gt_path}: item {i} has no 'file'")
        if item["file"] in seen:
            raise CorpusError(f"{gt_path}: item {i}: {item['file']} is listed more than once")
        seen.add(item["file"])
    items = sorted(items, key=lambda it: it["file"])
    present = [it for it in items if (root / it["file"]).is_file()]
    absent = [it["file"] for it in items if not (root / it["file"]).is_file()]
    dataset = data.get("dataset") if isinstance(data.get("dataset"), dict) else {}
    manifest = {"format": "gt-json", "dataset": dataset,
                "missing_images": _missing(root, absent, len(items), strict, "listed images are missing")}
    distribution = str(dataset.get("name") or "gt-json")
    ids = _unique_ids([it["file"] for it in present])
    docs = [_gt_item(root, gt_path, it, i, distribution) for it, i in zip(present, ids, strict=True)]
    return docs, manifest


def _gt_item(root: Path, gt_path: Path, item: dict[str, Any], doc_id: str, distribution: str) -> DocumentRef:
    """One ground_truth.json item. Visual (midv) fields take precedence over MRZ-derived ones."""
    where = f"{gt_path} ({item['file']})"
    lines = item.get("mrz_lines") or []
    mrz = item.get("fields") or {}
    midv = item.get("midv_fields") or {}
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        raise CorpusError(f"{where}: 'mrz_lines' must be a list of strings or null")
    if not isinstance(mrz, dict) or not isinstance(midv, dict):
        raise CorpusError(f"{where}: 'fields' and 'midv_fields' must be objects")
    boxes = {k: v for k, v in midv.items() if isinstance(v, dict)}
    fields, midv_mrz = midv_fields((k, str(v.get("value", ""))) for k, v in boxes.items())
    for key, value in mrz_fields(mrz).items():
        fields.setdefault(key, value)
    doc_type = str(item.get("midv_doc_type") or "")
    issuer = (_code(item.get("country_hint")) or _code(mrz.get("country"))
              or _code(lines[0][2:5] if lines else None) or _type_issuer(doc_type))
    l1 = item.get("doc_class") or _type_l1(doc_type)
    truth = _truth(l1, issuer, fields=fields, mrz_lines=tuple(lines) or midv_mrz)
    meta = {k: v for k, v in item.items() if k not in _GT_KEYS}
    if boxes:
        meta["regions"] = {k: v.get("rect_xywh", v.get("quad")) for k, v in boxes.items()}
    return DocumentRef(doc_id, root / item["file"], distribution, truth, meta)


# ---------------------------------------------------------------------------------------------- midv2020
def _via_files(root: Path) -> list[Path]:
    """VIA 2.x project files under annotations/ (or annotations_via/), sorted."""
    for name in _VIA_DIRS:
        found = [p for p in sorted((root / name).glob("*.json"))
                 if isinstance(d := _read_json(p), dict) and isinstance(d.get("_via_img_metadata"), dict)]
        if found:
            return found
    return []


def _region_box(shape: Mapping[str, Any]) -> Any:
    """A VIA shape as [x, y, w, h] (rect) or [[x, y], ...] (polygon); other shapes as given."""
    if shape.get("name") == "rect":
        return [shape.get("x"), shape.get("y"), shape.get("width"), shape.get("height")]
    if shape.get("name") == "polygon":
        xs, ys = shape.get("all_points_x", []), shape.get("all_points_y", [])
        return [[x, y] for x, y in zip(xs, ys, strict=False)]
    return dict(shape)


def _load_midv2020(root: Path, strict: bool, verify: bool) -> tuple[list[DocumentRef], dict[str, Any]]:
    """VIA files annotations/<type>.json; images at images/<type>/<file> or images/<type>_<file>."""
    via = _via_files(root)
    if not via:
        raise CorpusError(f"no VIA annotation files (annotations/<type>.json) in {root}")
    docs: list[DocumentRef] = []
    missing: list[str] = []
    total = 0
    for ann in via:
        doc_type, entries = ann.stem, _read_json(ann)["_via_img_metadata"]
        nested = (root / "images" / doc_type).is_dir()
        for key, entry in entries.items():
            regions = entry.get("regions", []) if isinstance(entry, dict) else None
            if not isinstance(regions, list) or not isinstance(entry.get("filename"), str) \
                    or not all(isinstance(r, dict) for r in regions):
                raise CorpusError(f"{ann}: entry {key!r} has no 'filename' or malformed 'regions'")
        for entry in sorted(entries.values(), key=lambda e: e["filename"]):
            filename, total = entry["filename"], total + 1
            candidates = [root / "images" / doc_type / filename, root / "images" / f"{doc_type}_{filename}"]
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                missing.append(candidates[0 if nested else 1].relative_to(root).as_posix())
                continue
            docs.append(_via_doc(path, f"{doc_type}/{Path(filename).stem}", doc_type, entry, ann))
    ids = [d.doc_id for d in docs]
    if len(set(ids)) != len(ids):
        raise CorpusError(f"duplicate image file names in the VIA files of {root}")
    manifest = {"format": "midv2020", "annotations": [p.relative_to(root).as_posix() for p in via],
                "missing_images": _missing(root, missing, total, strict, "annotated images are missing")}
    return sorted(docs, key=lambda d: d.doc_id), manifest


def _via_doc(path: Path, doc_id: str, doc_type: str, entry: Mapping[str, Any], ann: Path) -> DocumentRef:
    named, regions = [], {}
    for region in entry.get("regions", []):
        attrs = region.get("region_attributes")
        attrs = attrs if isinstance(attrs, dict) else {}
        name = str(attrs.get("field_name") or "")
        named.append((name, str(attrs.get("value") or "")))
        if name:
            regions.setdefault(name, _region_box(region.get("shape_attributes") or {}))
    fields, mrz = midv_fields(named)
    truth = _truth(_type_l1(doc_type), _type_issuer(doc_type), fields=fields, mrz_lines=mrz)
    meta = {"type": doc_type, "annotation": ann.name, "regions": regions}
    return DocumentRef(doc_id=doc_id, path=path, distribution="midv2020", truth=truth, meta=meta)


# ---------------------------------------------------------------------------------------------- midv500
def _midv500_types(root: Path) -> list[Path]:
    """NN_type folders: `root` itself if it is one, else its sub-folders holding images/ or ground_truth/."""
    def is_type(d: Path) -> bool:
        return (d / "images").is_dir() or (d / "ground_truth").is_dir()

    return [root] if is_type(root) else [d for d in sorted(root.iterdir()) if d.is_dir() and is_type(d)]


def _is_midv500(root: Path) -> bool:
    """Some <type>/ground_truth/<clip>/<frame>.json sits next to <type>/images/."""
    types = _midv500_types(root)
    return any((d / "images").is_dir() and any((d / "ground_truth").glob("*/*.json")) for d in types)


def _quad(path: Path) -> tuple[Point, Point, Point, Point]:
    """The 4 document corners of a frame (TL, TR, BR, BL; they may lie outside the frame)."""
    data = _read_json(path)
    quad = data.get("quad") if isinstance(data, dict) else None
    try:
        pts = tuple((float(x), float(y)) for x, y in quad)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        pts = ()
    if len(pts) != 4:
        raise CorpusError(f'{path}: expected {{"quad": [[x, y] x4]}}')
    return pts  # type: ignore[return-value]


def _template(tdir: Path) -> dict[str, Any]:
    """The optional template file <type>/ground_truth/<type>.json: {field: {"value", "quad"}}."""
    path = tdir / "ground_truth" / f"{tdir.name}.json"
    tmpl = _read_json(path) if path.is_file() else {}
    if isinstance(tmpl, dict) and all(isinstance(v, dict) for v in tmpl.values()):
        return tmpl
    raise CorpusError(f'{path}: expected {{field: {{"value": ..., "quad": ...}}}}')


def _load_midv500(root: Path, strict: bool, verify: bool) -> tuple[list[DocumentRef], dict[str, Any]]:
    """One document per frame image; corners from its quad file, fields from the type's template.
    An image without a quad file still loads (corners None) when strict=False."""
    types = _midv500_types(root)
    if not types:
        raise CorpusError(f"no MIDV-500 type folders (<NN_type>/images, <NN_type>/ground_truth) in {root}")
    docs: list[DocumentRef] = []
    no_quad: list[str] = []
    quad_only = 0
    for tdir in types:
        gt_dir, tmpl = tdir / "ground_truth", _template(tdir)
        images = _image_files(tdir / "images") if (tdir / "images").is_dir() else []
        fields, mrz = midv_fields((k, str(v.get("value", ""))) for k, v in tmpl.items())
        used: set[Path] = set()
        for img in images:
            rel = img.relative_to(tdir / "images")
            quad_path = (gt_dir / rel).with_suffix(".json")
            corners = _quad(quad_path) if quad_path.is_file() else None
            if corners is None:
                no_quad.append(img.relative_to(root).as_posix())
            used.add(quad_path)
            truth = _truth(_type_l1(tdir.name), _type_issuer(tdir.name), fields=dict(fields), mrz_lines=mrz,
                           corners=corners)
            meta = {"type": tdir.name, "clip": rel.parent.as_posix(), "frame": img.stem,
                    "template_quads": {k: v.get("quad") for k, v in tmpl.items()}}
            doc_id = f"{tdir.name}/{rel.with_suffix('').as_posix()}"
            docs.append(DocumentRef(doc_id=doc_id, path=img, distribution="midv500", truth=truth, meta=meta))
        orphans = [q for q in gt_dir.glob("*/*.json") if q not in used]
        quad_only += len(orphans)
        log.debug("%s: %d quad files without an image (annotation-only)", gt_dir, len(orphans))
    what = "images have no quad file ground_truth/<clip>/<frame>.json"
    manifest = {"format": "midv500", "types": [t.name for t in types], "annotations_without_image": quad_only,
                "images_without_annotation": _missing(root, no_quad, len(docs), strict, what)}
    return sorted(docs, key=lambda d: d.doc_id), manifest


# ---------------------------------------------------------------------------------------------- folder
def _load_folder(root: Path, strict: bool, verify: bool) -> tuple[list[DocumentRef], dict[str, Any]]:
    """Unlabelled images; other files are not documents and are ignored."""
    images = _image_files(root)
    ids = _unique_ids([p.relative_to(root).as_posix() for p in images])
    docs = [DocumentRef(doc_id=i, path=p, distribution="unknown") for i, p in zip(ids, images, strict=True)]
    return docs, {"format": "folder"}


_LOADERS: dict[str, Callable[[Path, bool, bool], tuple[list[DocumentRef], dict[str, Any]]]] = {
    "cardflow": _load_cardflow, "gt-json": _load_gt_json, "midv2020": _load_midv2020,
    "midv500": _load_midv500, "folder": _load_folder,
}  # fmt: skip
