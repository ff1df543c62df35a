"""ICAO 9303 MRZs: check digits against the specimen in Doc 9303, and generated MRZs against an independent checker."""

from __future__ import annotations

from datetime import date

import pytest
from mrz.base.functions import hash_string
from mrz.checker.td1 import TD1CodeChecker
from mrz.checker.td2 import TD2CodeChecker
from mrz.checker.td3 import TD3CodeChecker

from common.icao import MrzError
from corpus import mrz
from corpus.generate import DEFAULT_DISTRIBUTIONS, make_document
from corpus.issuers import ISSUERS
from corpus.records import L1_CLASSES


@pytest.mark.parametrize(
    ("field", "digit"),
    [("L898902C3", "6"), ("740812", "2"), ("120415", "9"), ("ZE184226B", "1"), ("<<<<<<<<<<<<<<", "0")],
)
def test_check_digit_matches_icao_specimens(field: str, digit: str) -> None:
    assert mrz.check_digit(field) == digit


def test_td3_specimen_from_doc_9303() -> None:
    lines = mrz.td3(issuer="UTO", document_number="L898902C3", birth=date(1974, 8, 12), sex="F",
                    expiry=date(2012, 4, 15), nationality="UTO", surname="Eriksson", given_names="Anna Maria",
                    personal_number="ZE184226B")
    assert lines == ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
                     "L898902C36UTO7408122F1204159ZE184226B<<<<<10")


def test_td1_specimen_from_doc_9303() -> None:
    lines = mrz.td1(issuer="UTO", document_number="D23145890", birth=date(1974, 8, 12), sex="F",
                    expiry=date(2012, 4, 15), nationality="UTO", surname="Eriksson", given_names="Anna Maria",
                    doc_code="I")
    assert lines == ("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6",
                     "ERIKSSON<<ANNA<MARIA<<<<<<<<<<")


def test_td2_specimen_from_doc_9303() -> None:
    lines = mrz.td2(issuer="UTO", document_number="D23145890", birth=date(1974, 8, 12), sex="F",
                    expiry=date(2012, 4, 15), nationality="UTO", surname="Eriksson", given_names="Anna Maria",
                    doc_code="I")
    assert lines == ("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6")


def test_td1_long_document_number_runs_on_into_optional_data() -> None:
    """ICAO 9303-5's example of a 12-character number: 'D23145890' in the number field, '<' where its check
    digit would be, then '734' and the whole number's check digit 9 in the optional data."""
    lines = mrz.td1(issuer="UTO", document_number="D23145890734", birth=date(1974, 8, 12), sex="F",
                    expiry=date(2012, 4, 15), nationality="UTO", surname="Eriksson", given_names="Anna Maria",
                    doc_code="I")
    assert lines[0] == "I<UTOD23145890<7349<<<<<<<<<<<"
    checker = TD1CodeChecker("\n".join(lines))
    assert checker.final_hash and checker.birth_date_hash and checker.expiry_date_hash
    assert hash_string("D23145890734") == "9"


def test_transliteration_and_truncation() -> None:
    assert mrz.transliterate("Müller-Łęcka O'Neil") == "MULLER<LECKA<O<NEIL"
    assert mrz.transliterate("Straße") == "STRASSE"
    field = mrz.name_field("Wolfeschlegelsteinhausenbergerdorff", "Hubert Blaine", 30)
    assert len(field) == 30 and field.startswith("WOLFESCHLEGELSTEINHAUSENBERGER")
    with pytest.raises(MrzError, match="not allowed"):
        mrz.check_digit("ab")


def test_generated_mrz_check_digits_pass_independent_checker() -> None:
    """Every issuer x document type with an MRZ, several documents each, checked by the `mrz` package."""
    checked = {}
    index, long_numbers, td2 = 0, 0, 0
    while len(checked) < len(ISSUERS) * 2 or min(checked.values()) < 3:
        _, record = make_document(5, index, "clean", DEFAULT_DISTRIBUTIONS)
        index += 1
        truth = record["truth"]
        if truth["l1"] == "driving_licence":
            assert truth["mrz_lines"] == []
            continue
        code = "\n".join(truth["mrz_lines"])
        if truth["l1"] == "id_card" and len(truth["mrz_lines"]) == 2:  # VLM's cards: TD2
            assert [len(line) for line in truth["mrz_lines"]] == [36, 36]
            checker = TD2CodeChecker(code)
            hashes = [checker.document_number_hash, checker.birth_date_hash, checker.expiry_date_hash,
                      checker.final_hash]
            td2 += 1
        elif truth["l1"] == "id_card":
            assert [len(line) for line in truth["mrz_lines"]] == [30, 30, 30]
            checker = TD1CodeChecker(code)
            hashes = [checker.birth_date_hash, checker.expiry_date_hash, checker.final_hash]
            number = truth["fields"]["document_number"]
            if len(number) > 9:  # runs on into the optional data, which the `mrz` package does not follow
                parsed = checker.fields()
                assert parsed.document_number_hash == "<" and parsed.document_number == number[:9]
                assert parsed.optional_data[:len(number) - 8] == number[9:] + hash_string(number)
                long_numbers += 1
                checked[truth["l2"]] = checked.get(truth["l2"], 0) + 1
                continue
            hashes.append(checker.document_number_hash)
        else:
            assert [len(line) for line in truth["mrz_lines"]] == [44, 44]
            checker = TD3CodeChecker(code)
            hashes = [checker.document_number_hash, checker.birth_date_hash, checker.expiry_date_hash,
                      checker.optional_data_hash, checker.final_hash]
        assert all(hashes), (truth["l2"], truth["mrz_lines"])
        parsed = checker.fields()
        assert parsed.document_number == truth["fields"]["document_number"]
        assert parsed.country == truth["issuer"]
        assert parsed.birth_date == date.fromisoformat(truth["fields"]["date_of_birth"]).strftime("%y%m%d")
        assert parsed.sex == truth["fields"]["sex"]
        checked[truth["l2"]] = checked.get(truth["l2"], 0) + 1
    assert set(checked) == {f"{i.code}.{l1}" for i in ISSUERS for l1 in L1_CLASSES if l1 != "driving_licence"}
    assert long_numbers >= 3  # NRV's 12-digit identity-card numbers
    assert td2 >= 3  # VLM's identity cards
