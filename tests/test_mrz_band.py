"""The MRZ found on the image at full resolution (steps/mrz_band.py), read line by line by several readers and
voted on by check digits (steps/mrz_vote.py, steps/ocr_mrz.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from common.mrz9303 import FIELDS, format_of
from corpus.fonts import font, mrz_font_path
from steps.catalog import default_catalog
from steps.mrz_band import Band, BandParams, line_crop, mrz_groups, text_lines
from steps.mrz_vote import LineReading, checks_pass, fit_width, fuse, mrz_likeness, vote
from steps.ocr_mrz import BandOcrParams
from steps.records import ImageRecord, OcrResult

TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
TD3_BAD = "L898902C36UTO7408122F1204169ZE184226B<<<<<10"  # expiry misread: its check digit and the final fail


def _page(lines=TD3, angle: float = 0.0, size: int = 30) -> np.ndarray:
    """A white page with a heading and an MRZ in OCR-B near the bottom, optionally rotated."""
    image = Image.new("L", (1400, 700), 255)
    draw = ImageDraw.Draw(image)
    draw.text((80, 60), "PASSPORT  UTOPIA  SPECIMEN", font=font("DejaVuSans.ttf", 40), fill=0)
    ocrb = ImageFont.truetype(str(mrz_font_path()), size)
    for k, line in enumerate(lines):
        draw.text((80, 480 + k * int(size * 1.6)), line, font=ocrb, fill=0)
    page = np.asarray(image)
    if angle:
        matrix = cv2.getRotationMatrix2D((700, 350), angle, 1.0)
        page = cv2.warpAffine(page, matrix, (1400, 700), borderValue=255)
    return page


def _letters_where_letters_go(lines: list[str]) -> list[str]:
    """OCR lines with digits read at letter-only positions (codes, names) as the letters they look like: the
    extractor's repair, not the OCR's job."""
    kind = format_of(lines)
    out = [list(line) for line in lines]
    for spec in FIELDS[kind]:
        if spec.klass == "A":
            for k in range(spec.start, min(spec.end, len(out[spec.line]))):
                out[spec.line][k] = {"0": "O", "1": "I", "5": "S", "8": "B"}.get(out[spec.line][k], out[spec.line][k])
    return ["".join(line) for line in out]


def _reading(text: str, reader: str = "gray/lstm-fast", conf: float = 90.0) -> LineReading:
    return LineReading(text, (conf,) * len(text), reader)


@pytest.mark.parametrize("angle", [0.0, 8.0])
def test_the_mrz_lines_are_found_as_one_group_of_parallel_bands(angle: float) -> None:
    page = _page(angle=angle)
    groups = mrz_groups(text_lines(page), page.shape[0])
    first = groups[0]
    assert len(first) == 2
    assert all(abs(band.angle + angle) < 2.0 for band in first)  # image y points down: a CCW turn reads negative
    assert first[0].cy < first[1].cy
    assert all(band.width > 900 for band in first)  # the whole 44-character line, not a piece


def test_a_line_crop_is_level_and_scaled_to_the_line_height() -> None:
    page = _page()
    band = mrz_groups(text_lines(page), page.shape[0])[0][0]
    crop = line_crop(page, band, 36, pad=0.5)
    assert crop.shape[0] == int(band.height * 2 * 36 / band.height)
    assert crop.shape[1] > 10 * crop.shape[0]
    ink_rows = np.where((crop < 128).mean(axis=1) > 0.02)[0]
    assert ink_rows.min() > 0 and ink_rows.max() < crop.shape[0] - 1  # the characters lie inside, not cut


def test_two_lines_joined_into_one_band_are_split_by_their_ink_rows() -> None:
    page = _page(size=30)
    tall = [b for b in text_lines(page, BandParams(kernels=(60,))) if b.width > 900]
    assert len(tall) == 2  # one band per line even where the closing merged both


def test_fit_width_stretches_a_shortened_filler_run_and_reads_lookalikes_between_fillers_as_fillers() -> None:
    assert fit_width("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<", 44) == TD3[0]
    assert fit_width("L898902C36UTO7408122F1204159ZE184226B<<K<<<10", 44) == TD3[1]
    assert fit_width("NOWAK<<MAREK<<<<", 16) == "NOWAK<<MAREK<<<<"  # a name's last K is no filler


def test_the_vote_picks_the_reading_whose_check_digits_pass() -> None:
    top = [_reading(TD3[0])]
    wrong_but_sure = _reading(TD3_BAD, "gray/legacy", conf=99.0)
    right_less_sure = _reading(TD3[1], "otsu/lstm-fast", conf=70.0)
    chosen = vote([top, [wrong_but_sure, right_less_sure]])
    assert [r.text for r in chosen] == list(TD3)
    assert checks_pass(chosen)
    assert not checks_pass([_reading(TD3[0]), wrong_but_sure])


def test_fusion_keeps_the_legacy_fillers_and_takes_the_lstm_letters() -> None:
    legacy = _reading("P<CANAHAN<<RITA<TANIA<<<<<<<<<<<<<<<<<<<<<<<", "gray/legacy")
    lstm = _reading("P<CANAMANK<KRITA<TANIA<<<<<<<<<<<<<<<<<<<<<<", "gray/lstm-fast")
    fused = fuse(legacy, lstm)
    assert fused is not None and fused.text == "P<CANAMAN<<RITA<TANIA<<<<<<<<<<<<<<<<<<<<<<<"
    assert fuse(legacy, _reading("UNITEDKINGDOMOFGREATBRITAIN")) is None  # a different line: no fusion


def test_a_name_line_has_no_check_digit_so_the_fused_reading_wins() -> None:
    names = [_reading("P<CANAHAN<<RITA<TANIA<<<<<<<<<<<<<<<<<<<<<<<", "gray/legacy", 95.0),
             _reading("P<CANAMANK<KRITA<TANIA<<<<<<<<<<<<<<<<<<<<<<", "gray/lstm-fast", 80.0)]
    data = [_reading("ERE82721<9CAN8412070M2405252<<<<<<<<<<<<<<08")]
    assert vote([names, data])[0].text == "P<CANAMAN<<RITA<TANIA<<<<<<<<<<<<<<<<<<<<<<<"


def test_a_name_line_read_at_its_width_beats_a_fusion_with_a_legacy_reading_that_is_not() -> None:
    # The 2006 US exemplar: LSTM read the names line exactly; the legacy engine read 56 characters of junk,
    # and their fusion (the legacy backbone with LSTM letters) was taken for being fused.
    names = [_reading("P<USATRAVELER<<HAPPY<<<<<<<<<<<<<<<<<<<<<<<<", "gray/lstm-fast", 90.0),
             _reading("KMFZKATRXVEVLER<<HNA<PVP7Y<71<V27<<2<<<<<<<<<<<<<2<<25<M", "gray/legacy", 60.0)]
    assert fuse(names[1], names[0]) is not None
    data = [_reading("3400072370USA6707046F1608078910000193<113538")]
    assert vote([names, data])[0].text == "P<USATRAVELER<<HAPPY<<<<<<<<<<<<<<<<<<<<<<<<"


def test_a_filler_the_legacy_engine_read_beats_the_look_alike_letter_lstm_read_there() -> None:
    # PassportEye's TD2 render: LSTM read 'ANNAKMARIA', legacy 'ANNA<MARIA', nothing else differs.
    legacy = _reading("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "gray/legacy", 80.0)
    lstm = _reading("I<UTOERIKSSON<<ANNAKMARIA<<<<<<<<<<<", "gray/lstm-fast", 95.0)
    data = [_reading("D231458907UTO7408122F1204159<<<<<<<6")]
    assert vote([[lstm, legacy], data])[0].text == "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<"
    assert fuse(legacy, _reading(legacy.text)) is None  # the same reading: nothing to fuse


def test_readers_that_disagree_lower_the_confidence_of_the_characters_they_disagree_on() -> None:
    a = _reading(TD3[1], "gray/lstm-fast", 90.0)
    b = _reading(TD3[1], "otsu/lstm-fast", 90.0)
    c = _reading(TD3_BAD, "otsu/legacy", 90.0)
    chosen = vote([[_reading(TD3[0])], [a, b, c]])[1]
    differs = [k for k, (x, y) in enumerate(zip(TD3[1], TD3_BAD, strict=True)) if x != y]
    assert all(chosen.confidences[k] == pytest.approx(60.0) for k in differs)
    assert chosen.confidences[0] == pytest.approx(90.0)


def test_mrz_likeness_prefers_lines_in_an_mrz_format_over_other_long_text() -> None:
    assert mrz_likeness(list(TD3)) == (2, 2)
    assert mrz_likeness(["UNITEDKINGDOMOFGREATBRITAINANDNORTHERNIRELAND", "PASSPORTWCMOGGIMMQRE"]) == (0, 0)


def test_unknown_readers_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="tesseract-9"):
        BandOcrParams(engines=("tesseract-9",))
    with pytest.raises(ValueError, match="gray@5"):
        BandOcrParams(crops=("gray@5",))


@pytest.fixture(scope="module")
def ensemble():
    variant = default_catalog().get("ocr/tesseract:band-ensemble")
    variant.load()
    return variant


@pytest.mark.parametrize("angle", [0.0, 8.0])
def test_the_ensemble_reads_a_rendered_mrz_exactly_level_or_tilted(ensemble, angle: float) -> None:
    result = ensemble.process(ImageRecord("tilted", _page(angle=angle)))
    assert _letters_where_letters_go([line.text for line in result.mrz]) == list(TD3)
    assert all(len(line.words) == len(line.text) for line in result.mrz)  # one word per character
    assert format_of([line.text for line in result.mrz]) == "TD3"
    if not angle:  # (Tesseract's page pass reads nothing on the tilted page: the band reading does)
        assert "PASSPORT" in result.text  # the page pass is there for the classifier and the visual zone
    again = OcrResult.from_json("tilted", json.loads(json.dumps(result.to_json())))
    assert again.mrz == result.mrz


def test_the_ensemble_reads_a_real_specimen_passport_exactly(ensemble, real_dev) -> None:
    item = next(i for i in json.loads((real_dev / "mrz_more" / "ground_truth.json").read_text())["items"]
                if i["file"].endswith("usa_passport_traveler_2020_specimen.jpg"))
    image = cv2.imread(str(real_dev / "mrz_more" / item["file"]), cv2.IMREAD_GRAYSCALE)
    result = ensemble.process(ImageRecord("usa", image))
    assert [line.text for line in result.mrz] == [line for line in item["mrz_lines"] if line]


@pytest.mark.parametrize("variant_id", ["ocr/tesseract:lstm-fast", "ocr/tesseract:band-ensemble"])
def test_a_page_with_nothing_readable_is_an_empty_result_not_a_failure(variant_id: str) -> None:
    variant = default_catalog().get(variant_id)
    blank = np.full((400, 600), 255, np.uint8)
    out = variant.run([ImageRecord("blank", blank)])[0]
    assert isinstance(out, OcrResult), out
    assert out.lines == () and out.mrz == ()


def test_a_band_knows_its_box() -> None:
    band = Band(100.0, 50.0, 80.0, 10.0, 0.0)
    assert band.box() == (60, 45, 140, 55)


def test_a_documents_reading_does_not_depend_on_the_documents_read_before_it() -> None:
    # The legacy engine's adaptive classifier learns from every page; without a fresh start per document the
    # Spanish DNI read after two other documents came out otherwise than read alone (so results depended on
    # batching, threads and order: `cardflow predict --threads 2` read 19 of 25 exactly, --threads 1 read 20).
    from corpus.loaders import load
    from steps.runner import decode
    from tests.conftest import REAL_DEV

    docs = load(REAL_DEV / "mrz_more").documents
    esp = next(d for d in docs if "esp_dni" in d.doc_id)
    results = []
    for seq in ([esp], [*docs[:2], esp]):
        variant = default_catalog().get("ocr/tesseract:band-ensemble")
        variant.load()
        results.append([variant.run([decode(doc)])[0] for doc in seq][-1])
    assert results[0].mrz and results[0] == results[1]
