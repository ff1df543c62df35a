"""ICAO 9303 machine-readable zones (common/mrz9303.py): formats, fields and check digits of the ICAO specimens
and of the real documents of real-dev/mrz_more, and the table of known codes."""

from __future__ import annotations

import json

import pytest

from common.icao import MrzError, check_digit
from common.mrz9303 import FIELDS, SHAPE, check_passes, format_of, known_codes, parse
from tests.conftest import REAL_DEV

TD1 = ("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6", "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")
TD2 = ("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6")
TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
MRV_A = ("V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L8988901C4XXX4009078F96121096ZE184226B<<<<<<")
MRV_B = ("V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "L8988901C4XXX4009078F9612109<<<<<<<<")
ANNA = {"country": "UTO", "sex": "F", "surname": "ERIKSSON", "name": "ANNA MARIA"}
MRZ_MORE = REAL_DEV / "mrz_more" / "ground_truth.json"


def _mrz_more() -> list[dict]:
    if not MRZ_MORE.is_file():
        pytest.skip(f"{MRZ_MORE} is not there")
    return json.loads(MRZ_MORE.read_text(encoding="utf-8"))["items"]


def test_check_digits_of_the_specimens_by_hand() -> None:
    """The weights 7, 3, 1 worked out by hand for the fields the specimens protect."""
    # 7·7 + 4·3 + 0·1 + 8·7 + 1·3 + 2·1 = 122 → 2 (the birth date 740812 of every specimen)
    assert check_digit("740812") == "2"
    # L8988901C (L = 21, C = 12): 21·7 + 8·3 + 9·1 + 8·7 + 8·3 + 9·1 + 0·7 + 1·3 + 12·1 = 284 → 4
    assert check_digit("L8988901C") == "4"
    assert check_digit("961210") == "9"  # 9·7 + 6·3 + 1·1 + 2·7 + 1·3 + 0·1 = 99
    assert check_digit("400907") == "8"  # 4·7 + 0 + 0 + 9·7 + 0 + 7·1 = 98
    assert check_passes("<<<<<<<<<<<<<<", "<", optional=True)
    assert not check_passes("<<<<<<", "<")  # a filler stands for an empty check digit in optional data only
    assert not check_passes("7408¢2", "2")


@pytest.mark.parametrize(("lines", "kind", "fields", "checks"), [
    (TD1, "TD1", ANNA | {"document_type": "I", "document_number": "D23145890", "birth_date": "740812",
                         "expiry_date": "120415", "nationality": "UTO", "optional_data": ""},
     {"document_number": True, "birth_date": True, "expiry_date": True, "final": True}),
    (TD2, "TD2", ANNA | {"document_type": "I", "document_number": "D23145890", "birth_date": "740812",
                         "expiry_date": "120415", "nationality": "UTO", "optional_data": ""},
     {"document_number": True, "birth_date": True, "expiry_date": True, "final": True}),
    (TD3, "TD3", ANNA | {"document_type": "P", "document_number": "L898902C3", "birth_date": "740812",
                         "expiry_date": "120415", "nationality": "UTO", "optional_data": "ZE184226B"},
     {"document_number": True, "birth_date": True, "expiry_date": True, "optional_data": True, "final": True}),
    (MRV_A, "MRV-A", ANNA | {"document_type": "V", "document_number": "L8988901C", "birth_date": "400907",
                             "expiry_date": "961210", "nationality": "XXX", "optional_data": "6ZE184226B"},
     {"document_number": True, "birth_date": True, "expiry_date": True}),
    (MRV_B, "MRV-B", ANNA | {"document_type": "V", "document_number": "L8988901C", "birth_date": "400907",
                             "expiry_date": "961210", "nationality": "XXX", "optional_data": ""},
     {"document_number": True, "birth_date": True, "expiry_date": True}),
], ids=["TD1", "TD2", "TD3", "MRV-A", "MRV-B"])
def test_icao_specimens_parsed_and_valid(lines: tuple[str, ...], kind: str, fields: dict, checks: dict) -> None:
    assert format_of(lines) == kind
    parsed = parse(lines)
    assert parsed.format == kind and parsed.lines == lines
    assert {name: parsed.fields[name] for name in fields} == fields
    assert dict(parsed.checks) == checks
    assert parsed.valid


@pytest.mark.parametrize(("line", "position", "check"), [
    (1, 9, "document_number"), (1, 19, "birth_date"), (1, 27, "expiry_date"), (1, 42, "optional_data"),
    (1, 43, "final")])
def test_a_wrong_check_digit_fails_its_check(line: int, position: int, check: str) -> None:
    lines = list(TD3)
    lines[line] = lines[line][:position] + str((int(lines[line][position]) + 1) % 10) + lines[line][position + 1:]
    checks = parse(lines).checks
    assert checks[check] is False
    assert sum(not ok for ok in checks.values()) == (1 if check == "final" else 2)  # the composite covers it


def test_format_of_by_shape_and_first_letter() -> None:
    assert format_of(TD3) == "TD3" and format_of(MRV_A) == "MRV-A"
    assert format_of(TD2) == "TD2" and format_of(MRV_B) == "MRV-B"
    assert format_of(("IDFRABERTHIER<<<<<<<<<<<<<<<<<<<<<<<", "9409923102854CORINNE<<<<<<<6512068F4")) == "FRA-CNI"
    assert format_of((TD3[0][:-1], TD3[1] + "<")) == "TD3"  # within 2 characters of the width
    assert format_of(TD1[:2]) is None and format_of(()) is None and format_of(("P<UTO", "L898")) is None
    with pytest.raises(MrzError):
        parse((TD3[0], TD3[1][:-1]))  # one character short
    with pytest.raises(MrzError):
        parse(TD3, "TD1")


def test_field_tables_cover_each_line_without_overlap() -> None:
    for kind, fields in FIELDS.items():
        count, width = SHAPE[kind]
        taken: set[tuple[int, int]] = set()
        for spec in fields:
            cells = {(spec.line, k) for k in range(spec.start, spec.end)}
            if spec.check is not None:
                cells.add((spec.line, spec.check))
            assert not cells & taken, (kind, spec.name)
            assert all(0 <= line < count and 0 <= k < width for line, k in cells)
            taken |= cells


def test_french_identity_card_is_its_own_format() -> None:
    """FRA-CNI (1988–2021): a 12-character number with its office codes, the given names on line 2, no
    expiry; its composite check covers line 1 and line 2 up to the last character. (The DAMBARD sample of
    mrz_more with the check digits it should have printed: birth date 3, composite 8.)"""
    lines = ("IDFRADAMBARD<<<<<<<<<<<<<<<<<<075025", "175775H557903VICTOR<<MARIE<9404243M8")
    parsed = parse(lines)
    assert parsed.format == "FRA-CNI"
    assert parsed.fields["document_number"] == "175775H55790"
    assert parsed.fields["optional_data"] == "075025"
    assert (parsed.fields["surname"], parsed.fields["name"]) == ("DAMBARD", "VICTOR MARIE")
    assert (parsed.fields["birth_date"], parsed.fields["sex"], parsed.fields["nationality"]) == ("940424", "M", "FRA")
    assert dict(parsed.checks) == {"document_number": True, "birth_date": True, "final": True}


def test_every_mrz_more_item_parsed_as_its_ground_truth() -> None:
    """The fields of the ground truth (the `mrz` package's names and conventions; the French layout for
    FRA_CNI_1988), and our check results agree with the checker's hash results."""
    hash_names = {"document number hash": "document_number", "birth date hash": "birth_date",
                  "expiry date hash": "expiry_date", "optional data hash": "optional_data", "final hash": "final"}
    items = _mrz_more()
    assert len(items) == 25
    for item in items:
        parsed = parse(item["mrz_lines"])
        assert parsed.format == ("FRA-CNI" if item.get("mrz_variant") == "FRA_CNI_1988" else item["mrz_format"])
        truth = {name: value for name, value in item["fields"].items() if value is not None}
        assert {name: parsed.fields.get(name) for name in truth} == truth, item["file"]
        failed = {name for name, ok in parsed.checks.items() if not ok}
        assert failed == {hash_names[f] for f in item["checker_falses"] if f in hash_names}, item["file"]


def test_known_codes_are_icao_plus_the_extra() -> None:
    codes = known_codes()
    assert {"UTO", "FRA", "GBR", "D<<", "XXA", "EUE", "UNO", "XXC"} <= codes
    assert "AUR" not in codes and "DOE" not in codes
    assert {"AUR", "VLM", "FRA"} <= known_codes(("AUR", "VLM"))
    assert all(len(code) == 3 for code in codes)
