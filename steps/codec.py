"""One wire codec per step: typed records ↔ named, JSON-able fields. The contract between the steps wherever
they do not share a process: registered pyfunc models (a DataFrame row per document), V2 step servers (a
tensor per field), profile cells (their inputs), and anything chaining them.

Every step's output fields are named as the next step's input fields, and what a later step needs is carried
forward, so the previous step's response is the next step's request (a KServe InferenceGraph `Sequence`
with `data: $response` works as is):

    step        reads                                   writes (plus `error` on every row)
    preprocess  doc_id, image_b64                       doc_id, image_b64 (BMP), applied
    ocr         doc_id, image_b64                       doc_id, ocr_json, text
    classify    doc_id, ocr_json                        doc_id, ocr_json, text (carried), classification_json, l1, l2
    extract     doc_id, ocr_json, classification_json   doc_id, extraction_json, fields_json, mrz_valid,
                                                        classification_json, l1, l2 (carried: the whole prediction)

`error` is empty, or says why that document failed, as `<variant id>: <reason>`; a row that arrives with an
error passes through the next step untouched (a document that failed upstream is never processed again).
A row that cannot be read (a field missing, not base64, not an image, malformed JSON) is bad input: WireError
names the row, the document and the field — the whole request is refused, never half-processed.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import BadInput
from steps.records import Classification, ExtractInput, Extraction, ImageRecord, OcrResult, StepFailure

ERROR = "error"
DOC_ID = "doc_id"


class WireError(BadInput):
    """A record on the wire cannot be read; the message names the row, document and field."""


def encode_image(image: np.ndarray) -> str:
    """A uint8 image (RGB or grey) as base64 BMP: lossless (the next step sees exactly these pixels) and
    uncompressed. Measured against PNG, a UINT8 tensor in the binary extension and one in JSON, sent to a real
    KServe server and decoded there (`python bench/wire_formats.py`, also in `make bench-serve`): BMP costs
    ~0.6× PNG's encode + round trip + decode; KServe 0.21 turns a UINT8 tensor into a Python list (~10× PNG)."""
    import cv2

    if image.size == 0 or image.dtype != np.uint8 or image.ndim not in (2, 3) or \
            (image.ndim == 3 and image.shape[2] != 3):
        raise WireError(f"cannot encode an image of shape {image.shape} and type {image.dtype} as BMP")
    ok, buf = cv2.imencode(".bmp", image if image.ndim == 2 else image[:, :, ::-1])
    if not ok:
        raise WireError(f"cannot encode an image of shape {image.shape} as BMP")
    return base64.b64encode(buf.tobytes()).decode()


def decode_image(text: str, where: str = "image_b64") -> np.ndarray:
    """An RGB (or grey) uint8 array from base64 image bytes (PNG, JPEG, …)."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise WireError(f"{where} is not base64 ({exc})") from exc
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode = "L" if img.mode in ("L", "1", "I;16") else "RGB"
            return np.asarray(img.convert(mode))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise WireError(f"{where} is not a base64-encoded image ({exc})") from exc


def _json(text: Any, where: str) -> Any:
    if not isinstance(text, str):
        raise WireError(f"{where} must be a JSON string, got {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WireError(f"{where} is not valid JSON ({exc.msg} at column {exc.colno})") from exc


# --- records ↔ fields --------------------------------------------------------------------------------


def image_fields(record: ImageRecord) -> dict[str, str]:
    return {"image_b64": encode_image(record.image), "applied": ",".join(record.applied)}


def ocr_fields(record: OcrResult) -> dict[str, str]:
    return {"ocr_json": json.dumps(record.to_json()), "text": record.text}


def classification_fields(record: Classification) -> dict[str, str]:
    return {"classification_json": json.dumps(record.to_json()), "l1": record.l1 or "", "l2": record.l2 or ""}


def extraction_fields(record: Extraction) -> dict[str, str]:
    valid = record.mrz_valid
    return {"extraction_json": json.dumps(record.to_json()), "fields_json": json.dumps(dict(record.fields)),
            "mrz_valid": "" if valid is None else str(valid).lower()}


def read_image(doc_id: str, row: Mapping[str, Any]) -> ImageRecord:
    applied = tuple(a for a in str(row.get("applied") or "").split(",") if a)
    return ImageRecord(doc_id, decode_image(_field(row, "image_b64"), "image_b64"), applied)


def read_ocr(doc_id: str, row: Mapping[str, Any]) -> OcrResult:
    data = _json(_field(row, "ocr_json"), "ocr_json")
    try:
        return OcrResult.from_json(doc_id, data)
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"ocr_json is not an OCR result ({type(exc).__name__}: {exc})") from exc


def read_classification(doc_id: str, row: Mapping[str, Any]) -> Classification:
    data = _json(_field(row, "classification_json"), "classification_json")
    try:
        return Classification.from_json(doc_id, data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WireError(f"classification_json is not a classification ({type(exc).__name__}: {exc})") from exc


def read_extract_input(doc_id: str, row: Mapping[str, Any]) -> ExtractInput:
    return ExtractInput(read_ocr(doc_id, row), read_classification(doc_id, row))


def _field(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise WireError(f"field {name!r} is missing")
    return value


def failure_text(failure: StepFailure) -> str:
    return f"{failure.variant}: {failure.reason}"


def failure_from_text(doc_id: str, text: str) -> StepFailure:
    variant, _, reason = text.partition(": ")
    step = variant.split("/", 1)[0] if "/" in variant else "input"
    return StepFailure(doc_id, step, variant, reason or text)


# --- one codec per step --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepCodec:
    """How one step's records travel: the fields it reads and writes, and the functions between them."""

    step: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    read: Callable[[str, Mapping[str, Any]], Any]  # (doc_id, row) -> the step's input record
    write: Callable[[Any, Any], dict[str, str]]  # (input record, output record) -> output fields
    fields_of_input: Callable[[Any], dict[str, str]]  # an input record as the fields `read` takes back

    def decode(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Input records from rows; a row carrying an upstream error becomes that StepFailure (passed through).
        A row that cannot be read raises WireError naming its row, document and field."""
        out: list[Any] = []
        for k, row in enumerate(rows):
            doc_id = str(row.get(DOC_ID) or f"row{k}")
            error = row.get(ERROR)
            if isinstance(error, str) and error:
                out.append(failure_from_text(doc_id, error))
                continue
            try:
                out.append(self.read(doc_id, row))
            except WireError as exc:
                raise WireError(f"{self.step} input row {k} (document {doc_id!r}): {exc}") from exc
        return out

    def encode(self, inputs: Sequence[Any], outputs: Sequence[Any]) -> list[dict[str, str]]:
        """One output row per document: its output fields, or empty fields and its error."""
        rows = []
        for item, result in zip(inputs, outputs, strict=True):
            row = {DOC_ID: item.doc_id, **dict.fromkeys(self.writes, "")}
            if isinstance(result, StepFailure):
                row[ERROR] = failure_text(result)
            else:
                row.update(self.write(item, result))
                row[ERROR] = ""
            rows.append(row)
        return rows

    def encode_inputs(self, records: Sequence[Any]) -> list[dict[str, str]]:
        """Input records as rows this codec decodes back (profile cells, tests, clients)."""
        return [{DOC_ID: r.doc_id, **self.fields_of_input(r)} for r in records]

    @property
    def columns(self) -> list[str]:
        """The output row's columns, in order."""
        return [DOC_ID, *self.writes, ERROR]


def _extract_input_fields(item: ExtractInput) -> dict[str, str]:
    return {**ocr_fields(item.ocr), **classification_fields(item.classification)}


CODECS: dict[str, StepCodec] = {
    "preprocess": StepCodec("preprocess", ("image_b64",), ("image_b64", "applied"), read_image,
                            lambda item, out: image_fields(out), image_fields),
    "ocr": StepCodec("ocr", ("image_b64",), ("ocr_json", "text"), read_image,
                     lambda item, out: ocr_fields(out), image_fields),
    "classify": StepCodec("classify", ("ocr_json",), ("ocr_json", "text", "classification_json", "l1", "l2"),
                          read_ocr, lambda item, out: {**ocr_fields(item), **classification_fields(out)}, ocr_fields),
    "extract": StepCodec("extract", ("ocr_json", "classification_json"),
                         ("extraction_json", "fields_json", "mrz_valid", "classification_json", "l1", "l2"),
                         read_extract_input,
                         lambda item, out: {**extraction_fields(out), **classification_fields(item.classification)},
                         _extract_input_fields),
}


def codec(step: str) -> StepCodec:
    if step not in CODECS:
        raise WireError(f"unknown step {step!r}; steps: {', '.join(CODECS)}")
    return CODECS[step]
