"""Extraction of real documents' MRZs: every mrz_more ground-truth zone read back exactly as printed (from page
lines and from the MRZ band's per-character reads), codes that are read and never assigned, the repairs a
realistic OCR error gets (and the ones a sure character does not), generic extraction for unknown layouts,
and empty pages."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from common.mrz9303 import known_codes, parse
from steps.extract import LabelRules, MrzFirst, MrzOnly, MrzParams, read_mrz, trusted, variants
from steps.extract.mrz_read import VIZ_SKIPPED
from steps.extract.mrz_trust import resolve_code
from steps.records import Classification, ExtractInput, Extraction, Line, OcrResult, StepFailure, Word
from tests.conftest import REAL_DEV

TD1 = ("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")
TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
MRV_A = ("V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L8988901C4XXX4009078F96121096ZE184226B<<<<<<")
CNI = ("IDFRABERTHIER<<<<<<<<<<<<<<<<<<<<<<<", "9409923102854CORINNE<<<<<<<6512068F4")
AUR = ("P<AURSCOTT<<ARTHUR<DEAN<<<<<<<<<<<<<<<<<<<<<", "NF85814747AUR7609240M2703279<<<<<<<<<<<<<<<8")  # synthetic
MRZ_MORE = REAL_DEV / "mrz_more" / "ground_truth.json"
VARIANTS = {v.model: v for v in variants()}
MRZ_ONLY, MRZ_FIRST, LABELS = VARIANTS["mrz-only"], VARIANTS["mrz-first"], VARIANTS["label-rules"]
assert isinstance(MRZ_ONLY, MrzOnly) and isinstance(MRZ_FIRST, MrzFirst) and isinstance(LABELS, LabelRules)


def page_lines(texts: Sequence[str], confidence: float = 95.0) -> tuple[Line, ...]:
    """MRZ lines as page OCR lines: one word per line, the word's confidence."""
    out = []
    for k, text in enumerate(texts):
        box = (57, 673 + 90 * k, 57 + int(len(text) * 16.2), 700 + 90 * k)
        out.append(Line(text, confidence, box, (Word(text, confidence, box),)))
    return tuple(out)


def band_lines(texts: Sequence[str], confidence: float = 97.0,
               unsure: dict[tuple[int, int], float] | None = None) -> tuple[Line, ...]:
    """MRZ lines as an MRZ-band reader gives them (OcrResult.mrz): one word per character, each with its own
    confidence (`unsure`: (line, position) → a lower one)."""
    unsure = unsure or {}
    out = []
    for k, text in enumerate(texts):
        top = 673 + 90 * k
        words = tuple(Word(c, unsure.get((k, i), confidence), (57 + 16 * i, top, 73 + 16 * i, top + 27))
                      for i, c in enumerate(text))
        out.append(Line(text, sum(w.confidence for w in words) / len(words), (57, top, 57 + 16 * len(text), top + 27),
                        words))
    return tuple(out)


def extract(variant, ocr: OcrResult, l1: str | None, l2: str | None = None) -> Extraction:
    [result] = variant.run([ExtractInput(ocr, Classification(ocr.doc_id, l1, l2=l2))])
    assert isinstance(result, Extraction), result
    return result


def from_page(texts: Sequence[str], confidence: float = 95.0) -> OcrResult:
    return OcrResult("doc", page_lines(texts, confidence), (1250, 880))


def from_band(texts: Sequence[str], confidence: float = 97.0,
              unsure: dict[tuple[int, int], float] | None = None) -> OcrResult:
    return OcrResult("doc", (), (1250, 880), band_lines(texts, confidence, unsure))


def _mrz_more() -> list[dict]:
    if not MRZ_MORE.is_file():
        pytest.skip(f"{MRZ_MORE} is not there")
    return json.loads(MRZ_MORE.read_text(encoding="utf-8"))["items"]


# ── real documents read as printed ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("source", ["page", "band"])
@pytest.mark.parametrize("model", ["mrz-only", "mrz-first"])
def test_every_mrz_more_zone_read_back_exactly_as_printed(source: str, model: str) -> None:
    """All 25 zones, the 7 the `mrz` checker rejects too (5 with printed check digits that fail — a
    specimen's wrong digit, a malformed zone, no expiry —, zero dates, a missing issuing state; digits in
    transliterated names): an OCR that is sure of every character gets them back unchanged, whatever a
    classifier of the synthetic issuers says; the checks are the zone's own."""
    items = _mrz_more()
    assert sum(not item["checker_valid"] for item in items) == 7
    assert sum(not parse(item["mrz_lines"]).valid for item in items) == 5
    for item in items:
        lines = tuple(item["mrz_lines"])
        ocr = from_page(lines) if source == "page" else from_band(lines)
        for l2 in (None, "AUR.passport", "VLM.id_card"):
            result = extract(VARIANTS[model], ocr, item["doc_class"], l2)
            assert result.mrz_lines == lines, (item["file"], l2)
            checks = dict(parse(lines).checks)
            if "optional_data" in checks:
                checks["personal_number"] = checks.pop("optional_data")
            assert dict(result.mrz_checks) == checks, item["file"]


def test_mrz_more_fields_from_the_mrz_of_an_unknown_layout() -> None:
    """Fields under CardFlow's names as the ground truth gives them (dates ISO), all from the MRZ; the
    visual zone of these unknown layouts is not read, and the extraction says so — when the classifier says
    'unknown', and when it names a synthetic issuer but the MRZ shows a real issuing state."""
    names = {"document_number": "document_number", "surname": "surname", "name": "given_names", "sex": "sex",
             "nationality": "nationality", "optional_data": "personal_number"}
    real_states = 0
    for item in _mrz_more():
        for l2 in ("unknown", "AUR.passport"):
            result = extract(MRZ_FIRST, from_band(item["mrz_lines"]), item["doc_class"], l2)
            truth = {names[k]: v for k, v in item["fields"].items() if k in names and v}
            assert {name: result.fields.get(name) for name in truth} == truth, item["file"]
            birth = item["fields"]["birth_date"]
            if birth.isdigit() and birth != "000000":
                assert result.fields["date_of_birth"][2:].replace("-", "") == birth
            if l2 == "unknown" or item["fields"]["country"] != "DOE":  # 'P<DOE<<…' shows no issuing state
                real_states += l2 != "unknown"
                assert result.sources["viz"] == VIZ_SKIPPED, item["file"]
                assert {result.sources[name] for name in result.fields} == {"mrz"}
    assert real_states == 24


def test_french_identity_card_read_in_its_own_layout() -> None:
    result = extract(MRZ_ONLY, from_page(CNI), "id_card")
    assert result.mrz_lines == CNI
    assert result.mrz_checks == {"document_number": True, "birth_date": True, "final": True}
    assert result.fields == {"document_number": "940992310285", "surname": "BERTHIER", "given_names": "CORINNE",
                             "date_of_birth": "1965-12-06", "sex": "F", "nationality": "FRA"}


def test_visa_read_as_mrv_a() -> None:
    result = extract(MRZ_ONLY, from_page(MRV_A), None)
    assert result.mrz_lines == MRV_A
    assert result.mrz_checks == {"document_number": True, "birth_date": True, "expiry_date": True}
    assert result.fields["nationality"] == "XXX" and result.fields["date_of_birth"] == "1940-09-07"
    assert result.fields["document_number"] == "L8988901C" and result.fields["personal_number"] == "6ZE184226B"


# ── codes are read, never assigned ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize("l2", [None, "AUR.passport", "VLM.passport", "KSN.id_card"])
def test_a_real_issuer_code_is_never_changed(l2: str | None) -> None:
    """UTO read right stays UTO though the document-number check fails and a synthetic classifier names a
    fictional issuer."""
    misread = (TD3[0], TD3[1][:3] + "3" + TD3[1][4:])  # 8 → 3 in the document number
    for ocr in (from_page(misread), from_page(misread, 70.0), from_band(misread, unsure={(1, 3): 30.0})):
        result = extract(MRZ_ONLY, ocr, "passport", l2)
        assert result.mrz_lines[0][2:5] == "UTO" and result.mrz_lines[1][10:13] == "UTO"
        assert result.fields["nationality"] == "UTO"
        # the band reader's unsure 3 is the digit its check digit wants (8); word confidences say nothing
        assert result.mrz_checks["document_number"] is bool(ocr.mrz)


def test_germany_s_one_letter_code_is_a_known_code() -> None:
    """'D<<' (ICAO's code for Germany) is read and trusted like any other: the VIZ does not replace it."""
    lines = ("P<D<<MUSTERMANN<<ERIKA<<<<<<<<<<<<<<<<<<<<<<", "C01X00T478D<<6408125F2702283<<<<<<<<<<<<<<<4")
    viz = page_lines(("Nationality", "DEUTSCH"))
    result = extract(MRZ_FIRST, OcrResult("doc", (*viz, *page_lines(lines)), (1250, 880)), "passport")
    assert result.mrz_lines == lines and result.mrz_valid is True
    assert (result.fields["nationality"], result.sources["nationality"]) == ("D", "mrz")
    assert result.fields["surname"] == "MUSTERMANN" and result.sources["viz"] == VIZ_SKIPPED
    reading = read_mrz(from_page(lines), "passport", MrzParams(), MRZ_ONLY.layouts)
    assert reading is not None and reading.country == "D"
    assert trusted(reading, "nationality", None, known_codes())
    assert not trusted(reading, "nationality", "AUR", known_codes())  # the classifier named another issuer


def test_unknown_codes_resolved_only_when_one_known_code_is_reachable() -> None:
    known = {"UTO", "GBO", "GBD", "VLM", "AUR"}
    assert resolve_code("UT0", [False, False, True], known) == "UTO"  # a digit is no letter: unsure
    assert resolve_code("VLN", [False, False, True], known) == "VLM"
    assert resolve_code("VLN", [False, False, False], known) is None  # read with certainty: kept
    assert resolve_code("GB0", [False, False, True], known) is None  # GBO or GBD: kept as read
    assert resolve_code("DOE", [True, True, True], known) is None
    assert resolve_code("UTO", [True, True, True], known | {"UTQ"}) == "UTO"  # known: never changed


def test_a_misread_code_becomes_a_known_code_only_where_the_ocr_was_unsure() -> None:
    """The band reader unsure of one character of the nationality: the one known code it can be."""
    misread = (TD3[0], TD3[1][:12] + "Q" + TD3[1][13:])  # UTO → UTQ
    assert extract(MRZ_ONLY, from_band(misread, unsure={(1, 12): 40.0}), "passport").mrz_lines == TD3
    assert extract(MRZ_ONLY, from_band(misread), "passport").mrz_lines == misread  # sure: as printed


def test_an_issuer_layout_guides_only_the_zone_that_shows_its_code() -> None:
    """A synthetic issuer's number pattern (AUR: two letters, then digits) repairs an 'I' read in its
    document number — because the zone shows AUR, with or without a classification; the same damage in a
    zone of another issuer is left to the check digit (which fails)."""
    damaged = (AUR[0], AUR[1][:4] + "B" + AUR[1][5:])  # NF85B4747: 8 → B
    for l2 in (None, "VLM.passport"):
        result = extract(MRZ_ONLY, from_page(damaged, 70.0), "passport", l2)
        assert result.mrz_lines == AUR
        assert result.fields["document_number"] == "NF8581474"
    other = (AUR[0].replace("AUR", "UTO"), damaged[1].replace("AUR", "UTO"))
    result = extract(MRZ_ONLY, from_page(other, 70.0), "passport", "AUR.passport")
    assert result.mrz_lines[1][:9] == "NF85B1474" and result.mrz_checks["document_number"] is False


# ── realistic OCR errors ─────────────────────────────────────────────────────────────────────────


def test_letter_o_at_a_digit_position_is_repaired() -> None:
    damaged = (TD1[0], TD1[1].replace("7408122", "74O8122"), TD1[2])
    for ocr in (from_page(damaged), from_band(damaged)):
        result = extract(MRZ_ONLY, ocr, "id_card")
        assert result.mrz_lines == TD1 and result.mrz_valid is True
        assert result.fields["date_of_birth"] == "1974-08-12"


def test_fillers_read_as_k_at_the_line_ends_are_repaired() -> None:
    damaged = (TD3[0][:-1] + "K", TD3[1][:41] + "K10")  # after the names; in the empty optional data
    for ocr in (from_page(damaged), from_band(damaged)):
        result = extract(MRZ_ONLY, ocr, "passport")
        assert result.mrz_lines == TD3 and result.mrz_valid is True
        assert result.fields["given_names"] == "ANNA MARIA"


def test_a_single_letter_name_is_no_misread_filler() -> None:
    lines = ("P<UTOERIKSSON<<ANNA<MARIA<E<<<<<<<<<<<<<<<<<", TD3[1])
    result = extract(MRZ_ONLY, from_page(lines), "passport")
    assert result.mrz_lines == lines and result.fields["given_names"] == "ANNA MARIA E"


def test_an_unsure_wrong_digit_is_fixed_by_its_check_digit_a_sure_one_is_not() -> None:
    misread = (TD3[0], TD3[1].replace("7408122", "7403122"))  # birth date 740812 read 740312
    fixed = extract(MRZ_ONLY, from_band(misread, unsure={(1, 16): 35.0}), "passport")
    assert fixed.mrz_lines == TD3 and fixed.mrz_valid is True
    assert fixed.fields["date_of_birth"] == "1974-08-12"
    kept = extract(MRZ_ONLY, from_band(misread), "passport")
    assert kept.mrz_lines == misread
    assert kept.mrz_checks["birth_date"] is False and kept.mrz_checks["final"] is False
    assert extract(MRZ_ONLY, from_page(misread, 60.0), "passport").mrz_lines == misread  # word confidence only


def test_band_lines_tell_the_format_though_a_line_lost_its_fillers() -> None:
    """The band reader gives the zone's lines: two lines, the longest 36 characters, starting 'IDFRA' is the
    French card though its first line lost its trailing fillers (page lines of those lengths would not say)."""
    result = extract(MRZ_ONLY, from_band((CNI[0][:21], CNI[1])), "id_card")
    assert result.mrz_lines == CNI and result.mrz_valid is True


def test_round_letters_read_in_a_document_number_become_the_zeros_its_check_digit_wants() -> None:
    """OCR reads OCR-B's 0 as O with all confidence (Croatian specimen: 000000000); zeros where that makes the
    check digit pass, and only then (L898902C3 keeps its C; a failing number with no unique fix stays)."""
    lines = ("IOHRV000000000000000000000<<<<", "0000000M0000000HRV<<<<<<<<<<<0", "UZORAK<<SPECIMEN<<<<<<<<<<<<<<")
    misread = (lines[0][:5] + "OOOOOOO" + lines[0][12:], lines[1], lines[2])
    result = extract(MRZ_ONLY, from_band(misread), "id_card")
    assert result.mrz_lines == lines and result.mrz_checks["document_number"] is True
    assert result.fields["document_number"] == "000000000"
    wrong = (TD3[0], "L898902O3" + "7" + TD3[1][10:])  # an O, and a check digit no zero satisfies
    assert extract(MRZ_ONLY, from_band(wrong), "passport").mrz_lines == wrong


# ── unknown layouts, empty pages ─────────────────────────────────────────────────────────────────


def test_unknown_layout_skips_the_visual_zone_and_says_so() -> None:
    viz = page_lines(("Document No.", "X1234567"))
    ocr = OcrResult("doc", (*viz, *page_lines(AUR)), (1250, 880))
    for l2 in ("unknown", "unknown.passport", "UTO.passport"):
        labels = extract(LABELS, ocr, "passport", l2)
        assert labels.fields == {} and labels.sources == {"viz": VIZ_SKIPPED}
        first = extract(MRZ_FIRST, ocr, "passport", l2)
        assert first.mrz_lines == AUR and first.sources["viz"] == VIZ_SKIPPED
        assert first.fields["surname"] == "SCOTT" and set(first.sources.values()) == {"mrz", VIZ_SKIPPED}
    known = extract(MRZ_FIRST, ocr, "passport", "AUR.passport")
    assert "viz" not in known.sources and set(known.sources.values()) == {"mrz"}


@pytest.mark.parametrize("variant", variants(), ids=lambda v: v.id)
def test_a_page_without_text_gives_an_empty_extraction(variant) -> None:
    empty = OcrResult("doc", ())
    junk_band = OcrResult("doc", (), (0, 0), (Line("", 0.0, (0, 0, 0, 0)), Line("¢€«", 10.0, (0, 0, 9, 9),
                                                                                  tuple(Word(c, 10.0, (0, 0, 3, 9))
                                                                                        for c in "¢€«"))))
    for ocr in (empty, junk_band):
        for l1, l2 in ((None, None), ("passport", "unknown"), ("id_card", "AUR.id_card")):
            [result] = variant.run([ExtractInput(ocr, Classification("doc", l1, l2=l2))])
            assert not isinstance(result, StepFailure), result.reason
            assert result.fields == {} and result.mrz_lines == () and result.mrz_checks == {}


# ── what the MRZ-band ensemble really read on mrz_more, with the confidences it gave ──────────────────


def _printed(file: str) -> tuple[str, ...]:
    return tuple(next(item for item in _mrz_more() if item["file"] == f"images/{file}")["mrz_lines"])


@pytest.mark.parametrize("model", ["mrz-only", "mrz-first"])
def test_a_zone_without_primary_identifier_keeps_its_names_in_place(model: str) -> None:
    # The edited Indian specimen: 'P<DOE<<JOCELYN<MICHELLE': the names field starts with the separator. Read
    # with the J unsure (87), it came back 'COCELYN' when the tidy-up moved the names two places left.
    lines = _printed("ind_passport_edited.jpg")
    assert lines[0][5:7] == "<<"
    result = extract(VARIANTS[model], from_band(lines, unsure={(0, 7): 87.0}), "passport")
    assert result.mrz_lines == lines
    assert result.fields["given_names"] == "JOCELYN MICHELLE"


def test_a_digit_in_a_transliterated_name_is_kept_where_no_letter_looks_like_it() -> None:
    # Russia's internal passport writes Ч as 3: 'ALEKSANDROVI3'; the ensemble read the 3 at 85, the I at 41.
    lines = _printed("rus_internal_passport.jpg")
    at = lines[0].index("I3<")
    result = extract(MRZ_ONLY, from_band(lines, unsure={(0, at): 41.0, (0, at + 1): 85.0}), "passport")
    assert result.mrz_lines == lines
    misread = (lines[0][:at + 1] + "8" + lines[0][at + 2:], lines[1])  # an 8 in a name: a misread B
    assert extract(MRZ_ONLY, from_band(misread, unsure={(0, at + 1): 60.0}), "passport").mrz_lines[0][at + 1] == "B"


def test_a_misprinted_check_digit_is_not_corrected_against_the_composite() -> None:
    # The Spanish DNI specimen's birth date 800101 fails its check digit as printed, the composite passes; the
    # leading 8 read at 89 (unsure) used to become the 6 that passes the birth-date check, breaking the
    # composite, and the optional data '<44282767Q0' (one filler, then data) was blanked.
    lines = _printed("esp_dni_muestra.jpg")
    assert not parse(lines).checks["birth_date"] and parse(lines).checks["final"]
    unsure = {(1, 0): 89.0, (1, 4): 66.0, (1, 6): 66.0, (1, 12): 60.0}  # the expiry's 1 too: two repairs to undo
    result = extract(MRZ_ONLY, from_band(lines, unsure=unsure), "id_card")
    assert result.mrz_lines == lines
    assert result.mrz_checks["final"] is True and result.mrz_checks["birth_date"] is False
    assert result.fields["date_of_birth"] == "1980-01-01" and result.fields["personal_number"] == "44282767Q0"


def test_a_speck_read_past_the_end_of_a_line_is_dropped() -> None:
    # The French card read 'IDFRADAMBARD<…<075025I': 37 characters; the extra I goes, not a filler before 075025.
    lines = _printed("fra_cni_dambard_edited.jpg")
    result = extract(MRZ_ONLY, from_band((lines[0] + "I", lines[1])), "id_card")
    assert result.mrz_lines == lines
