"""Extraction: MRZ repair and parsing, label rules on hand-built OCR results, and a generated document
end to end (preprocess → OCR → extract)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corpus.fonts import font, mrz_font_path
from corpus.identity import draw_identity
from corpus.issuers import ISSUERS
from corpus.layout import LAYOUTS
from corpus.templates import draw
from steps.extract import (
    IssuerLayouts,
    LabelRules,
    MrzFirst,
    MrzOnly,
    align_line,
    mrz_layout,
    read_categories,
    read_date,
    read_number,
    variants,
)
from steps.records import Classification, ExtractInput, Extraction, Line, OcrResult, StepFailure, Word

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = IssuerLayouts.load(ROOT / "configs" / "layouts" / "synthetic.json")
TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
TD1 = ("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")
TD2 = ("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6")  # ICAO 9303 part 6
SPECIMEN_FIELDS = {"date_of_birth": "1974-08-12", "date_of_expiry": "2012-04-15", "sex": "F",
                   "nationality": "UTO", "surname": "ERIKSSON", "given_names": "ANNA MARIA"}


def _variant(cls: type, model: str):
    return next(v for v in variants() if isinstance(v, cls) and v.model == model)


MRZ_FIRST = _variant(MrzFirst, "mrz-first")
MRZ_ONLY = _variant(MrzOnly, "mrz-only")
LABELS = _variant(LabelRules, "label-rules")


def word(text: str, x: int, bottom: int, height: int = 20) -> Word:
    """A word box as Tesseract reports it: about 0.6 × height per character."""
    return Word(text, 95.0, (x, bottom - height, x + int(len(text) * height * 0.6), bottom))


def phrase(text: str, x: int, bottom: int, height: int = 20) -> list[Word]:
    """Words of a phrase left to right, one space (0.35 × height) apart."""
    out = []
    for part in text.split():
        out.append(word(part, x, bottom, height))
        x = out[-1].box[2] + int(0.35 * height)
    return out


def line(words: list[Word]) -> Line:
    x0s, y0s, x1s, y1s = zip(*(w.box for w in words), strict=True)
    box = (min(x0s), min(y0s), max(x1s), max(y1s))
    return Line(" ".join(w.text for w in words), 95.0, box, tuple(words))


def mrz_ocr(texts: tuple[str, ...], top: int = 700, pitch: int = 90) -> list[Line]:
    """MRZ lines as OCR lines (a line may contain spaces: OCR splits it into words)."""
    return [line(phrase(text, 57, top + k * pitch, 27)) for k, text in enumerate(texts)]


def extract(variant, lines: list[Line], l1: str | None, l2: str | None = None) -> Extraction:
    ocr = OcrResult("doc", tuple(lines), (1250, 880))
    [result] = variant.run([ExtractInput(ocr, Classification("doc", l1, l2=l2))])
    assert isinstance(result, Extraction), result
    return result


# ── MRZ ────────────────────────────────────────────────────────────────────────────────────────────


def test_td3_specimen_parsed_with_every_check_valid() -> None:
    result = extract(MRZ_ONLY, mrz_ocr(TD3), "passport")
    assert result.mrz_lines == TD3
    assert result.mrz_checks == {"document_number": True, "birth_date": True, "expiry_date": True,
                                 "personal_number": True, "final": True}
    assert result.mrz_valid is True
    assert result.fields == SPECIMEN_FIELDS | {"document_number": "L898902C3", "personal_number": "ZE184226B"}
    assert set(result.sources.values()) == {"mrz"}


def test_td3_type_inferred_without_classification() -> None:
    result = extract(MRZ_ONLY, mrz_ocr(TD3), None)
    assert result.mrz_lines == TD3
    assert result.fields["document_number"] == "L898902C3"


def test_corrupted_check_digit_is_reported_invalid() -> None:
    corrupted = (TD3[0], TD3[1][:9] + "7" + TD3[1][10:])
    result = extract(MRZ_ONLY, mrz_ocr(corrupted), "passport")
    assert result.mrz_lines == corrupted
    assert result.mrz_checks == {"document_number": False, "birth_date": True, "expiry_date": True,
                                 "personal_number": True, "final": False}
    assert result.mrz_valid is False
    assert result.fields["document_number"] == "L898902C3"  # reported, but its check failed


def test_corrupted_check_digit_falls_back_to_the_visual_zone() -> None:
    """On a layout the extractor knows (a synthetic issuer's code; UTO is no layout's, so its VIZ is not read:
    tests/test_extract_real.py)."""
    known = tuple(text.replace("UTO", "VLM") for text in TD3)
    corrupted = (known[0], known[1][:9] + "7" + known[1][10:])
    viz = [line(phrase("Document No.", 740, 113, 12)), line(phrase("L898902C8", 742, 144, 22))]
    result = extract(MRZ_FIRST, viz + mrz_ocr(corrupted), "passport")
    assert result.mrz_checks["document_number"] is False
    assert result.fields["document_number"] == "L898902C8"
    assert result.sources["document_number"] == "viz"
    assert result.fields["date_of_birth"] == "1974-08-12"
    assert result.sources["date_of_birth"] == "mrz"


def test_ocr_damage_repaired_to_the_exact_lines() -> None:
    damaged = ("P<UTOERIKSSON<<ANNA<MARIA <<<<<<KLK<<<<< <<<<<",  # spaces, fillers read as K/L/K
               "L898902C36 UTO74O8122F 1204159ZE184226B<<<10")  # 'O' in the birth date, two fillers lost
    result = extract(MRZ_ONLY, mrz_ocr(damaged), "passport")
    assert result.mrz_lines == TD3
    assert result.mrz_valid is True
    assert result.fields == SPECIMEN_FIELDS | {"document_number": "L898902C3", "personal_number": "ZE184226B"}


def test_filler_look_alikes_do_not_eat_real_names() -> None:
    lines = ("P<UTONOWAK<<MAREK<<<<<<<<<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122M1204159<<<<<<<<<<<<<<<<2")
    result = extract(MRZ_ONLY, mrz_ocr(lines), "passport")
    assert result.fields["surname"] == "NOWAK"
    assert result.fields["given_names"] == "MAREK"


def test_td1_specimen_parsed() -> None:
    result = extract(MRZ_ONLY, mrz_ocr(TD1, top=490, pitch=52), "id_card")
    assert result.mrz_lines == TD1
    assert result.mrz_checks == {"document_number": True, "birth_date": True, "expiry_date": True,
                                 "final": True}
    assert result.fields == SPECIMEN_FIELDS | {"document_number": "D23145890"}


def test_td1_check_digit_read_as_letter_is_repaired() -> None:
    damaged = (TD1[0], TD1[1][:6] + "Z" + TD1[1][7:], TD1[2])  # birth-date check digit 2 read as Z
    result = extract(MRZ_ONLY, mrz_ocr(damaged, top=490, pitch=52), "id_card")
    assert result.mrz_lines == TD1


ALL_TD2_CHECKS = {"document_number": True, "birth_date": True, "expiry_date": True, "final": True}


@pytest.mark.parametrize(("l1", "l2"), [("id_card", None), ("id_card", "ESL.id_card"), ("passport", "AUR.passport"),
                                        (None, None)])
def test_td2_specimen_parsed_with_every_check_valid(l1: str | None, l2: str | None) -> None:
    """TD2 (2 × 36) by its lines' length, whatever the document type; a classified issuer's code is not
    forced onto it (the corpus's issuers issue no TD2)."""
    result = extract(MRZ_ONLY, mrz_ocr(TD2, top=490, pitch=52), l1, l2)
    assert result.mrz_lines == TD2
    assert result.mrz_checks == ALL_TD2_CHECKS
    assert result.mrz_valid is True
    assert result.fields == SPECIMEN_FIELDS | {"document_number": "D23145890"}
    assert set(result.sources.values()) == {"mrz"}


def test_td2_as_tesseract_read_it_is_repaired() -> None:
    """passporteye's test_passport-td2: Tesseract reads the nationality UTO as UT0."""
    result = extract(MRZ_ONLY, mrz_ocr((TD2[0], TD2[1].replace("UTO", "UT0")), top=490, pitch=52), "id_card")
    assert result.mrz_lines == TD2
    assert result.mrz_valid is True


def test_td2_corrupted_check_digit_is_reported_invalid() -> None:
    corrupted = (TD2[0], TD2[1][:9] + "3" + TD2[1][10:])  # document-number check digit 7 → 3
    result = extract(MRZ_ONLY, mrz_ocr(corrupted, top=490, pitch=52), "id_card")
    assert result.mrz_lines == corrupted
    assert result.mrz_checks == ALL_TD2_CHECKS | {"document_number": False, "final": False}
    assert result.mrz_valid is False
    wrong_final = (TD2[0], TD2[1][:-1] + "5")
    result = extract(MRZ_ONLY, mrz_ocr(wrong_final, top=490, pitch=52), "passport")
    assert result.mrz_lines == wrong_final
    assert result.mrz_checks == ALL_TD2_CHECKS | {"final": False}


def test_td2_corrupted_check_digit_falls_back_to_the_visual_zone() -> None:
    known = tuple(text.replace("UTO", "VLM") for text in TD2)  # a layout the extractor knows
    corrupted = (known[0], known[1][:19] + "3" + known[1][20:])  # birth-date check digit 2 → 3
    viz = [line(phrase("Date of birth", 400, 113, 12)), line(phrase("12 AUG 1974", 402, 144, 22))]
    result = extract(MRZ_FIRST, viz + mrz_ocr(corrupted, top=490, pitch=52), "id_card")
    assert result.mrz_checks["birth_date"] is False
    assert result.fields["date_of_birth"] == "1974-08-12"
    assert result.sources["date_of_birth"] == "viz"
    assert result.sources["document_number"] == "mrz"


@pytest.mark.parametrize("l1", ["passport", "id_card", None])
def test_td3_with_its_line_ends_lost_stays_td3(l1: str | None) -> None:
    """38-character lines may be a TD3 whose ends the OCR lost: TD2 is read too but wins only on checks."""
    result = extract(MRZ_ONLY, mrz_ocr((TD3[0][:38], TD3[1][:38])), l1)
    assert result.mrz_lines[0] == TD3[0]
    assert result.mrz_lines[1].startswith(TD3[1][:38])
    assert set(result.mrz_checks) == {"document_number", "birth_date", "expiry_date", "personal_number", "final"}
    assert result.fields["document_number"] == "L898902C3"


def test_alignment_drops_an_extra_character_and_fills_a_missing_filler() -> None:
    cost, repaired, _ = align_line("L898902C36UTO7408122F12041S9ZE184226B<<<<10", mrz_layout("TD3")[1])
    assert repaired == TD3[1]
    assert 0 < cost < 2


# ── template geometry: drawn by corpus/templates.py where the issuer layouts say, read here ───────────


def _drawn(key: tuple[str, str, str | None]) -> bool:
    """Whether an issuer draws documents in this layout (nobody prints a TD2 card with the photo right)."""
    l1, side, kind = key
    return any(i.photo_side == side and kind in (None, "TD3", i.id_mrz) for i in ISSUERS)


@pytest.mark.parametrize("key", [k for k in sorted(LAYOUTS, key=str) if _drawn(k)],
                         ids=lambda k: "/".join(filter(None, k)))
def test_drawn_documents_put_text_where_the_layout_says(key: tuple[str, str, str | None]) -> None:
    """Labels, field numbers and MRZ lines of a drawn document sit where extraction looks for them (the
    issuer layouts file: label grid and capitals' bands, numbered-row slots, MRZ centres and ink ends)."""
    l1, side, kind = key
    doc = SYNTHETIC.template(l1, side, kind)
    assert doc is not None
    issuer = next(i for i in ISSUERS if i.photo_side == side and kind in (None, "TD3", i.id_mrz))
    spec = SYNTHETIC.issuer(issuer.code)
    assert spec is not None
    rng = np.random.default_rng(3)
    ident = draw_identity(issuer, l1, rng)
    boxes = dict(draw(ident, rng).items)
    if doc.grid:
        top = spec.label_bands[doc.grid.label_size][0]
        for cell in doc.grid.cells:
            if cell.name in ident.fields():
                box = boxes[issuer.labels[cell.name]]
                assert abs(box[0] - (doc.text_x + cell.x)) <= 2
                assert abs(box[1] - (doc.grid.label_y(cell.row) + top)) <= 2
    if doc.rows:
        slots = SYNTHETIC.numbered
        assert slots is not None
        for number in SYNTHETIC.dl_numbers.values():
            box = boxes[number]
            assert abs(box[3] - slots.baseline[slots.exact[number]]) <= 1
            assert box[0] - doc.text_x in (0, 1, doc.rows.second_column, doc.rows.second_column + 1)
    if doc.mrz:
        lines = ident.mrz_lines()
        assert len(lines) == doc.mrz.lines and {len(t) for t in lines} == {doc.mrz.chars}
        assert lines[0][:2] == spec.mrz_codes[kind] and SYNTHETIC.mrz_format(spec, l1) == kind
        left, right = doc.mrz.ink_x
        pitch = LAYOUTS[key].mrz_pitch
        for text, centre in zip(lines, doc.mrz_centres, strict=True):
            box = boxes[text]
            assert abs((box[1] + box[3]) / 2 - centre) < 0.2 * pitch
            assert 0 <= left - box[0] <= 0.3 * (box[2] - box[0]) / doc.mrz.chars
            assert 0 <= box[2] - right <= 0.3 * (box[2] - box[0]) / doc.mrz.chars
        size = LAYOUTS[key].mrz_size(lambda s: font(str(mrz_font_path()), s).getlength(lines[0]))
        assert box[2] - box[0] == pytest.approx(font(str(mrz_font_path()), size).getlength(lines[0]), abs=1)


# ── visual zone ────────────────────────────────────────────────────────────────────────────────────


def _label_rows(rows: list[list[tuple[str, str, int]]], x0: int, top: int, pitch: int) -> list[Line]:
    """Template-like labels (12 px boxes) with their values 22 px lower (20 px boxes)."""
    lines = []
    for r, row in enumerate(rows):
        y = top + r * pitch
        lines.append(line([w for label, _, x in row for w in phrase(label, x0 + x, y + 12, 12)]))
        lines.append(line([w for _, value, x in row for w in phrase(value, x0 + x, y + 44, 20)]))
    return lines


def test_label_rules_on_a_bilingual_identity_card() -> None:
    header = line(phrase("BUNDESREPUBLIK NORVANIEN", 30, 40, 19) + phrase("PERSONALAUSWEIS", 706, 40, 19))
    rows = [
        [("Name / Surname", "MÜLLER-LÜDENSCHEIDT", 0)],
        [("Vornamen / Given names", "ANNA LENA", 0)],
        [("Geschlecht / Sex", "F", 0), ("Staatsangehörigkeit / Nationality", "NRV", 340)],
        [("Geburtstag / Date of birth", "12.03.1985", 0), ("Ausweisnummer / Document No.", "T12345678", 340)],
        [("Gültig bis / Date of expiry", "01.02.2031", 0), ("Geburtsort / Place of birth", "BAD SODEN", 340)],
    ]
    result = extract(LABELS, [header, *_label_rows(rows, 285, 78, 62)], "id_card", "NRV.id_card")
    assert result.fields == {
        "surname": "MÜLLER-LÜDENSCHEIDT", "given_names": "ANNA LENA", "sex": "F", "nationality": "NRV",
        "date_of_birth": "1985-03-12", "document_number": "T12345678", "date_of_expiry": "2031-02-01",
        "place_of_birth": "BAD SODEN",
    }
    assert set(result.sources.values()) == {"viz"}


def test_label_rules_tolerate_label_typos_and_unknown_issuer() -> None:
    rows = [
        [("Apellldos / Surnane", "GARCÍA", 0)],
        [("Nombre / Given nemes", "JOSÉ LUIS", 0)],
        [("Sexo / Sex", "M", 0), ("Nacionalidad / Nationality", "ESL", 340)],
        [("Fecha de nacimiento / Date of birth", "02 06 1967", 0),
         ("Núm. soporte / Document No.", "TPT258219", 340)],
        [("Válido hasta / Date of expiry", "24 10 2029", 0), ("DNI / Personal No.", "81051098W", 340)],
    ]
    result = extract(LABELS, _label_rows(rows, 30, 78, 62), "id_card")
    assert result.fields == {
        "surname": "GARCÍA", "given_names": "JOSÉ LUIS", "sex": "M", "nationality": "ESL",
        "date_of_birth": "1967-06-02", "document_number": "TPT258219", "date_of_expiry": "2029-10-24",
        "personal_number": "81051098W",
    }


def test_numbered_rows_of_a_driving_licence() -> None:
    x0 = 290
    rows = [("1.", "MURPHY"), ("2.", "GEORGE JORDAN"), ("3.", "08 MAR 2003 KARLTON"), ("4a.", "02 DEC 2024"),
            ("4c.", "IRENELAND"), ("5.", "TMYLP584086TM")]
    lines = [line(phrase("DRIVING LICENCE", 135, 47, 22))]
    for r, (number, value) in enumerate(rows):
        baseline = 114 + r * 56
        words = [word(number, x0, baseline, 13), *phrase(value, x0 + 48, baseline)]
        if number == "4a.":
            words += [word("4b.", x0 + 330, baseline, 13), *phrase("01 DEC 2039", x0 + 378, baseline)]
        lines.append(line(words))
    lines.append(line([word("9.", x0, 476, 13), *phrase("B1 CE D1", x0 + 48, 476)]))
    result = extract(LABELS, lines, "driving_licence", "AUR.driving_licence")
    assert result.fields == {
        "surname": "MURPHY", "given_names": "GEORGE JORDAN", "date_of_birth": "2003-03-08",
        "place_of_birth": "KARLTON", "date_of_issue": "2024-12-02", "date_of_expiry": "2039-12-01",
        "authority": "IRENELAND", "document_number": "TMYLP584086TM", "categories": "B1 CE D1",
    }
    assert extract(MRZ_FIRST, lines, "driving_licence", "AUR.driving_licence").fields == result.fields


def test_numbered_rows_found_without_their_numbers() -> None:
    """Numbers lost (small print): the rows are placed by their content (dates) and spacing."""
    values = ["SOLAREK", "SARA", "1955-06-04 WLOCLAWEK", "2017-07-31", "SIEMIANOWICE SLASKIE",
              "93186/84/1612"]
    lines = [line(phrase(v, 80, 114 + r * 56)) for r, v in enumerate(values)]
    lines[3] = line(phrase("2017-07-31", 80, 282) + phrase("2032-07-30", 410, 282))
    lines.append(line(phrase("A1BBE", 78, 476)))
    result = extract(LABELS, lines, "driving_licence", "KSN.driving_licence")
    assert result.fields == {
        "surname": "SOLAREK", "given_names": "SARA", "date_of_birth": "1955-06-04",
        "place_of_birth": "WLOCLAWEK", "date_of_issue": "2017-07-31", "date_of_expiry": "2032-07-30",
        "authority": "SIEMIANOWICE SLASKIE",
        "document_number": "93186/84/1612", "categories": "A1 B BE",
    }


@pytest.mark.parametrize(("text", "iso"), [
    ("24 SEP 1976", "1976-09-24"), ("30.10.1995", "1995-10-30"), ("02 06 1967", "1967-06-02"),
    ("02/07/1990", "1990-07-02"), ("1972-04-06", "1972-04-06"), ("08 O1 2018", "2018-01-08"),
    ("O02 DEC 2024", "2024-12-02"), ("24102029", "2029-10-24"), ("27 04.1954", "1954-04-27"),
])
def test_dates_read_in_every_format_despite_ocr_slips(text: str, iso: str) -> None:
    assert read_date(text) == iso


def test_numbers_and_categories_repaired_to_the_corpus_formats() -> None:
    assert read_number(["P8BISNWLISN64"], "document_number", "driving_licence", "NRV", SYNTHETIC) == "P815NWL15N64"
    assert read_number([".CL7346509W."], "document_number", "driving_licence", "VLM", SYNTHETIC) == "CL7346509W"
    assert read_categories("AMBCl1", SYNTHETIC.categories) == "AM B C1"
    assert read_categories("A2BBEC", SYNTHETIC.categories) == "A2 B BE C"


# ── robustness ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("variant", variants(), ids=lambda v: v.id)
def test_empty_ocr_gives_an_empty_extraction(variant) -> None:
    for l1 in ("passport", "id_card", "driving_licence", None):
        result = extract(variant, [], l1)
        assert result.fields == {} and result.mrz_lines == () and result.mrz_checks == {}


@pytest.mark.parametrize("variant", variants(), ids=lambda v: v.id)
def test_garbage_lines_do_not_crash(variant) -> None:
    garbage = ["<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<", "KKKKKKKK<<<<", "«««« ¢€ ||| ___",
               "12345678901234567890123456789012345", "4a. 4b. 4c. 9. 1. 2.", "Name / Surname", "ÄÖÜ ß ŁØ",
               "P<", "", " ", "I<UTO<<<<", "9" * 80]
    lines = [line([word(text or "x", 30 + 7 * k, 100 + 40 * k)]) for k, text in enumerate(garbage)]
    for l1 in ("passport", "id_card", "driving_licence", None):
        for l2 in (None, "AUR.passport", "NRV.id_card", "ESL.driving_licence"):
            ocr = OcrResult("doc", tuple(lines), (1000, 630))
            [result] = variant.run([ExtractInput(ocr, Classification("doc", l1, l2=l2))])
            assert not isinstance(result, StepFailure), result.reason


def test_catalog_ids_and_params() -> None:
    ids = ["extract/label-rules:v1", "extract/mrz-first:v1", "extract/mrz-only:v1"]
    assert [v.id for v in variants()] == ids
    for variant in variants():
        assert variant.description and variant.fingerprint()
        assert isinstance(variant.params_dict(), dict)
        assert [path.relative_to(variant.store.root).as_posix() for path in variant.model_files().values()] == [
            "extract/layouts/synthetic.json"]


# ── end to end ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.slow
def test_generated_documents_end_to_end_document_numbers() -> None:
    """Six generated clean documents (identity cards, passport, driving licences) through gray
    preprocessing and Tesseract with the MRZ re-read: mrz-first reads every document number."""
    import steps.ocr
    import steps.preprocess
    from corpus.generate import make_document
    from steps.records import ImageRecord

    preprocess = next(v for v in steps.preprocess.variants() if v.id == "preprocess/channel:gray")
    ocr = next(v for v in steps.ocr.variants() if v.id == "ocr/tesseract:lstm-fast-mrz")
    seen = set()
    for index in range(6):
        data, record = make_document(5, index, "clean", (ROOT / "configs" / "distributions.yaml").resolve())
        truth = record["truth"]
        seen.add(truth["l1"])
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        [prepared] = preprocess.run([ImageRecord(f"doc{index}", image)])
        [read] = ocr.run([prepared])
        assert isinstance(read, OcrResult), read
        classification = Classification(read.doc_id, truth["l1"], l2=truth["l2"])
        [result] = MRZ_FIRST.run([ExtractInput(read, classification)])
        assert isinstance(result, Extraction), result
        assert result.fields.get("document_number") == truth["fields"]["document_number"], truth["l2"]
        if truth["mrz_lines"]:
            assert result.mrz_lines == tuple(truth["mrz_lines"])
            assert result.mrz_valid is True
    assert seen == {"id_card", "passport", "driving_licence"}
