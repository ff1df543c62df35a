"""The Open Inference Protocol (V2) side of the wire codec: a step's rows as BYTES tensors and back.

Every field of the step's wire codec (steps/codec.py) is one BYTES tensor of shape [n] (one element per
document), named as the field. A step server accepts its own inputs and everything the previous step's
response carries (so step N's V2 response is step N+1's V2 request, after `outputs` becomes `inputs`), and
refuses anything else, naming the tensor:

    step        required tensors                      also accepted (the previous step's outputs)
    preprocess  doc_id, image_b64                     error
    ocr         doc_id, image_b64                     applied, error
    classify    doc_id, ocr_json                      text, error
    extract     doc_id, ocr_json, classification_json text, l1, l2, error

`response_as_request` is what lets a KServe InferenceGraph `Sequence` (`data: $response`) chain V2 servers:
the previous step's response body with `outputs` renamed `inputs` (kserve#3051).
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from common.errors import BadInput
from steps.base import STEPS
from steps.codec import DOC_ID, ERROR, codec

DATATYPE = "BYTES"


class BadTensor(BadInput):
    """A V2 tensor is missing, unknown, or has the wrong datatype, shape or contents (HTTP 400)."""


def served_name(step: str) -> str:
    """The V2 model name of a step server: `cardflow-<step>` (the registered models are `cardflow.<step>.<model>`)."""
    return f"cardflow-{step}"


def required_inputs(step: str) -> tuple[str, ...]:
    return (DOC_ID, *codec(step).reads)


def accepted_inputs(step: str) -> tuple[str, ...]:
    """Required inputs, then the optional ones: `error` and what the previous step's response carries."""
    required = required_inputs(step)
    index = STEPS.index(step)
    previous = codec(STEPS[index - 1]).columns if index else [ERROR]
    optional = dict.fromkeys(name for name in [*previous, ERROR] if name not in required)
    return (*required, *optional)


def output_names(step: str) -> list[str]:
    return codec(step).columns


def tensor_metadata(names: Sequence[str]) -> list[dict[str, Any]]:
    """V2 metadata tensors: every field a BYTES tensor of one element per document (-1: any count)."""
    return [{"name": name, "datatype": DATATYPE, "shape": [-1]} for name in names]


def _as_text(value: Any, tensor: str, k: int) -> str:
    if isinstance(value, bytes | bytearray | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadTensor(f"input tensor {tensor!r} element {k} is not UTF-8 text ({exc.reason}); "
                            "send images base64-encoded") from exc
    if isinstance(value, str):
        return value
    raise BadTensor(f"input tensor {tensor!r} element {k} must be a string, got {type(value).__name__}")


def _elements(tensor) -> list[Any]:
    data = tensor.data
    if data is None or isinstance(data, np.ndarray):
        data = tensor.as_numpy().reshape(-1).tolist()
    return list(data)


def rows_from_tensors(step: str, inputs: Sequence[Any]) -> list[dict[str, str]]:
    """One row per document from a request's input tensors (kserve InferInput-like: name, datatype, shape,
    data). Refuses an unknown, missing, repeated or mis-shaped tensor, naming it."""
    accepted = accepted_inputs(step)
    columns: dict[str, list[str]] = {}
    count: int | None = None
    for tensor in inputs:
        name = tensor.name
        if name not in accepted:
            raise BadTensor(f"unknown input tensor {name!r} for {served_name(step)}; it takes "
                            f"{', '.join(required_inputs(step))} (and optionally "
                            f"{', '.join(a for a in accepted if a not in required_inputs(step))})")
        if name in columns:
            raise BadTensor(f"input tensor {name!r} is given twice")
        if str(tensor.datatype).upper() != DATATYPE:
            raise BadTensor(f"input tensor {name!r} has datatype {tensor.datatype}; expected {DATATYPE}")
        shape = list(tensor.shape or [])
        if len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 1:
            raise BadTensor(f"input tensor {name!r} has shape {shape}; expected [n], one element per document")
        values = _elements(tensor)
        if len(values) != shape[0]:
            raise BadTensor(f"input tensor {name!r} has shape {shape} but {len(values)} elements")
        if count is not None and shape[0] != count:
            raise BadTensor(f"input tensor {name!r} has {shape[0]} elements; the others have {count}")
        count = shape[0]
        columns[name] = [_as_text(v, name, k) for k, v in enumerate(values)]
    missing = [name for name in required_inputs(step) if name not in columns]
    if missing:
        raise BadTensor(f"missing input tensor(s) {', '.join(map(repr, missing))} for {served_name(step)}; "
                        f"it takes {', '.join(required_inputs(step))}")
    assert count is not None
    return [{name: values[k] for name, values in columns.items()} for k in range(count)]


def check_pixels(step: str, rows: Sequence[Mapping[str, str]], max_pixels: int) -> None:
    """Refuse an image over the pixel limit before decoding it (BMP, PNG and JPEG headers carry the size)."""
    if "image_b64" not in codec(step).reads:
        return
    from PIL import Image, UnidentifiedImageError

    for k, row in enumerate(rows):
        text = row.get("image_b64") or ""
        if row.get(ERROR):
            continue
        try:
            head = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadTensor(f"input tensor 'image_b64' element {k} (document {row.get(DOC_ID)!r}) is not base64 "
                            f"({exc})") from exc
        try:
            with Image.open(io.BytesIO(head)) as img:
                width, height = img.size
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise BadTensor(f"input tensor 'image_b64' element {k} (document {row.get(DOC_ID)!r}) is not an "
                            f"image ({exc})") from exc
        if width * height > max_pixels:
            raise BadTensor(f"input tensor 'image_b64' element {k} (document {row.get(DOC_ID)!r}) is "
                            f"{width}×{height} = {width * height} pixels; the limit is {max_pixels} (--max-pixels)")


def output_tensors(rows: Sequence[Mapping[str, str]], names: Sequence[str]) -> list[dict[str, Any]]:
    """Response tensors (as V2 JSON dicts) from output rows."""
    return [{"name": name, "datatype": DATATYPE, "shape": [len(rows)], "data": [row.get(name, "") for row in rows]}
            for name in names]


def input_tensors(rows: Sequence[Mapping[str, str]], names: Sequence[str]) -> list[dict[str, Any]]:
    return output_tensors(rows, names)


def response_as_request(body: Any) -> Any:
    """A V2 response body as the request that carries its outputs on (`outputs` → `inputs`, keeping the id);
    anything else unchanged."""
    if isinstance(body, dict) and "outputs" in body and "inputs" not in body:
        out = {"inputs": body["outputs"]}
        if body.get("id"):
            out["id"] = body["id"]
        return out
    return body
