"""The one wire codec per step (steps/codec.py): each step's output rows are the next step's input rows, records
survive the round trip, upstream failures pass through, and malformed rows are refused naming row, document
and field."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from common.errors import outcome
from steps.codec import CODECS, WireError, codec, decode_image, encode_image
from steps.records import (
    Classification,
    ExtractInput,
    Extraction,
    ImageRecord,
    Line,
    OcrResult,
    StepFailure,
    Word,
)

IMAGE = (np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)
WORDS = (Word("P<UTOERIKSSON<<ANNA", 91.5, (1, 2, 30, 12)), Word("MARIA", 88.0, (32, 2, 50, 12)))
OCR = OcrResult("d1", (Line("P<UTOERIKSSON<<ANNA MARIA", 89.75, (1, 2, 50, 12), WORDS),), (64, 48))
CLASSIFICATION = Classification("d1", "passport", {"passport": 0.75, "id_card": 0.25}, "UTO.passport",
                                {"UTO.passport": 0.5, "UTO.id_card": 0.5})
EXTRACTION = Extraction("d1", {"surname": "ERIKSSON"}, ("P<UTO…",), {"final": True}, {"surname": "mrz"})


def test_each_steps_outputs_are_the_next_steps_inputs() -> None:
    steps = list(CODECS)
    for upstream, downstream in zip(steps, steps[1:], strict=False):
        assert set(codec(downstream).reads) <= set(codec(upstream).writes), (upstream, downstream)


def test_a_chain_of_rows_carries_every_record_exactly() -> None:
    image = ImageRecord("d1", IMAGE, ("gray",))
    pre_rows = codec("preprocess").encode([image], [image])
    assert np.array_equal(codec("ocr").decode(pre_rows)[0].image, IMAGE)  # lossless BMP
    ocr_rows = codec("ocr").encode([image], [OCR])
    assert codec("classify").decode(ocr_rows) == [OCR]
    cls_rows = codec("classify").encode([OCR], [CLASSIFICATION])
    assert cls_rows[0]["ocr_json"] == ocr_rows[0]["ocr_json"]  # carried forward for extract
    assert codec("extract").decode(cls_rows) == [ExtractInput(OCR, CLASSIFICATION)]
    ext_rows = codec("extract").encode([ExtractInput(OCR, CLASSIFICATION)], [EXTRACTION])
    row = ext_rows[0]
    assert json.loads(row["fields_json"]) == {"surname": "ERIKSSON"} and row["mrz_valid"] == "true"
    assert row["l2"] == "UTO.passport" and row["error"] == ""  # the last response holds the whole prediction
    assert Extraction.from_json("d1", json.loads(row["extraction_json"])) == EXTRACTION


def test_a_failed_document_stays_its_own_row_and_passes_through() -> None:
    failure = StepFailure("d2", "ocr", "ocr/tesseract:lstm-fast", "RuntimeError: No text returned")
    rows = codec("ocr").encode([ImageRecord("d1", IMAGE), ImageRecord("d2", IMAGE)], [OCR, failure])
    assert rows[0]["error"] == "" and rows[1]["error"] == "ocr/tesseract:lstm-fast: RuntimeError: No text returned"
    assert rows[1]["ocr_json"] == ""
    decoded = codec("classify").decode(rows)
    assert decoded[0] == OCR and decoded[1] == failure


def test_inputs_round_trip_for_every_step() -> None:
    records = {"preprocess": ImageRecord("d1", IMAGE), "ocr": ImageRecord("d1", IMAGE[..., 0]), "classify": OCR,
               "extract": ExtractInput(OCR, CLASSIFICATION)}
    for step, record in records.items():
        back = codec(step).decode(codec(step).encode_inputs([record]))[0]
        if isinstance(record, ImageRecord):
            assert np.array_equal(back.image, record.image)
        else:
            assert back == record


@pytest.mark.parametrize(("step", "row", "message"), [
    ("ocr", {"doc_id": "a"}, r"ocr input row 0 \(document 'a'\): field 'image_b64' is missing"),
    ("ocr", {"doc_id": "a", "image_b64": "%%%"}, r"image_b64 is not base64"),
    ("preprocess", {"doc_id": "a", "image_b64": "bm90IGFuIGltYWdl"}, r"image_b64 is not a base64-encoded image"),
    ("classify", {"doc_id": "a", "ocr_json": "{"}, r"ocr_json is not valid JSON"),
    ("classify", {"doc_id": "a", "ocr_json": "{}"}, r"ocr_json is not an OCR result \(KeyError"),
    ("extract", {"doc_id": "a", "ocr_json": json.dumps(OCR.to_json())}, r"field 'classification_json' is missing"),
])
def test_malformed_rows_are_bad_input_naming_the_field(step: str, row: dict, message: str) -> None:
    good = {"doc_id": "ok", **codec(step).encode_inputs([ImageRecord("ok", IMAGE) if step in ("preprocess", "ocr")
                                                        else OCR if step == "classify"
                                                        else ExtractInput(OCR, CLASSIFICATION)])[0]}
    with pytest.raises(WireError, match=message.replace("row 0", "row 1")) as caught:
        codec(step).decode([good, row])
    assert outcome(caught.value).http_status == 400


def test_encode_image_refuses_what_bmp_cannot_hold() -> None:
    with pytest.raises(WireError, match="cannot encode"):
        encode_image(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(WireError, match=r"shape \(4, 5, 4\)"):
        encode_image(np.zeros((4, 5, 4), np.uint8))


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3)])  # odd widths: BMP pads its rows to 4 bytes
def test_image_round_trip_is_lossless_grey_and_colour(shape) -> None:
    pixels = np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8)
    text = encode_image(pixels)
    assert base64.b64decode(text)[:2] == b"BM"
    back = decode_image(text)
    assert back.shape == shape and back.dtype == np.uint8 and np.array_equal(back, pixels)
