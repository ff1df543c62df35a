"""Machine-readable zones as ICAO Doc 9303 defines them, and the French national identity card's: formats, their
field tables (line, start, length, character class, check digit), the format of a set of lines, parsing with
check-digit results, and the table of known issuing-state / organisation codes.

    TD1    3×30  identity cards              TD3    2×44  passports
    TD2    2×36  identity cards, some passports   MRV-A  2×44  visas (line 1 starts 'V')
    MRV-B  2×36  visas (line 1 starts 'V')   FRA-CNI 2×36  French identity card, 1988–2021 model ('IDFRA…')

FRA-CNI is not ICAO TD2: line 1 is the document code, 'FRA', the surname (25) and the issuing office (6);
line 2 the 12-character number (year, month and département of issue, office, serial), its check digit,
the given names (14), the birth date and its check digit, the sex and a composite check digit over line 1
and line 2's first 35 characters. It carries no nationality field (FRA) and no expiry date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from common.icao import FILLER, MRZ_ALPHABET, MrzError, check_digit

# Character classes of a position: N digit, A letter or filler (codes, names), X any MRZ character, S sex
# (M, F, X or filler), C check digit (a digit, or a filler where the field is empty).
CLASS_CHARS: Mapping[str, frozenset[str]] = {
    "N": frozenset("0123456789"),
    "A": frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ<"),
    "X": frozenset(MRZ_ALPHABET),
    "S": frozenset("MFX<"),
    "C": frozenset("0123456789<"),
}
FORMATS = ("TD1", "TD2", "TD3", "MRV-A", "MRV-B", "FRA-CNI")
SHAPE = {"TD1": (3, 30), "TD2": (2, 36), "TD3": (2, 44), "MRV-A": (2, 44), "MRV-B": (2, 36), "FRA-CNI": (2, 36)}


@dataclass(frozen=True)
class Field:
    """One field of an MRZ: where it is, its characters' class, and the position of its check digit."""

    name: str
    line: int
    start: int
    length: int
    klass: str  # a key of CLASS_CHARS
    check: int | None = None  # the check digit's position on the same line, if the field has its own

    @property
    def end(self) -> int:
        return self.start + self.length


def _f(name: str, line: int, start: int, length: int, klass: str, check: int | None = None) -> Field:
    return Field(name, line, start, length, klass, check)


_TD2_TD3_DATA = (_f("nationality", 1, 10, 3, "A"), _f("birth_date", 1, 13, 6, "N", 19), _f("sex", 1, 20, 1, "S"),
                 _f("expiry_date", 1, 21, 6, "N", 27))
FIELDS: Mapping[str, tuple[Field, ...]] = {
    "TD1": (_f("document_type", 0, 0, 2, "A"), _f("country", 0, 2, 3, "A"), _f("document_number", 0, 5, 9, "X", 14),
            _f("optional_data", 0, 15, 15, "X"), _f("birth_date", 1, 0, 6, "N", 6), _f("sex", 1, 7, 1, "S"),
            _f("expiry_date", 1, 8, 6, "N", 14), _f("nationality", 1, 15, 3, "A"),
            _f("optional_data_2", 1, 18, 11, "X"), _f("names", 2, 0, 30, "A")),
    "TD2": (_f("document_type", 0, 0, 2, "A"), _f("country", 0, 2, 3, "A"), _f("names", 0, 5, 31, "A"),
            _f("document_number", 1, 0, 9, "X", 9), *_TD2_TD3_DATA, _f("optional_data", 1, 28, 7, "X")),
    "TD3": (_f("document_type", 0, 0, 2, "A"), _f("country", 0, 2, 3, "A"), _f("names", 0, 5, 39, "A"),
            _f("document_number", 1, 0, 9, "X", 9), *_TD2_TD3_DATA, _f("optional_data", 1, 28, 14, "X", 42)),
    "MRV-A": (_f("document_type", 0, 0, 2, "A"), _f("country", 0, 2, 3, "A"), _f("names", 0, 5, 39, "A"),
              _f("document_number", 1, 0, 9, "X", 9), *_TD2_TD3_DATA, _f("optional_data", 1, 28, 16, "X")),
    "MRV-B": (_f("document_type", 0, 0, 2, "A"), _f("country", 0, 2, 3, "A"), _f("names", 0, 5, 31, "A"),
              _f("document_number", 1, 0, 9, "X", 9), *_TD2_TD3_DATA, _f("optional_data", 1, 28, 8, "X")),
    "FRA-CNI": (_f("document_type", 0, 0, 2, "A"), _f("country", 0, 2, 3, "A"), _f("surname", 0, 5, 25, "A"),
                _f("optional_data", 0, 30, 6, "X"), _f("document_number", 1, 0, 12, "X", 12),
                _f("given_names", 1, 13, 14, "A"), _f("birth_date", 1, 27, 6, "N", 33), _f("sex", 1, 34, 1, "S")),
}
# Composite ("final") check digit: (line, position) and the (line, start, end) spans it covers.
FINAL: Mapping[str, tuple[tuple[int, int], tuple[tuple[int, int, int], ...]]] = {
    "TD1": ((1, 29), ((0, 5, 30), (1, 0, 7), (1, 8, 15), (1, 18, 29))),
    "TD2": ((1, 35), ((1, 0, 10), (1, 13, 20), (1, 21, 35))),
    "TD3": ((1, 43), ((1, 0, 10), (1, 13, 20), (1, 21, 43))),
    "FRA-CNI": ((1, 35), ((0, 0, 36), (1, 0, 35))),
}


def format_of(lines: Sequence[str]) -> str | None:
    """The MRZ format of `lines` (top to bottom, no spaces): 'TD1', 'TD2', 'TD3', 'MRV-A', 'MRV-B' or
    'FRA-CNI'; None when they are no MRZ. By the number of lines and their length (within 2 characters of
    the format's, for OCR that lost or added a filler), then the first letter: 'V' is a visa (MRV-A at 44,
    MRV-B at 36); a 2×36 zone starting 'IDFRA' is the French identity card's."""
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        return None
    width = round(sum(len(t) for t in texts) / len(texts))
    if len(texts) == 3 and abs(width - 30) <= 2:
        return "TD1"
    if len(texts) != 2:
        return None
    visa = texts[0].startswith("V")
    if abs(width - 44) <= 2:
        return "MRV-A" if visa else "TD3"
    if abs(width - 36) <= 2:
        if visa:
            return "MRV-B"
        return "FRA-CNI" if texts[0].startswith("IDFRA") else "TD2"
    return None


# ICAO codes the `mrz` package's table lacks (Doc 9303 part 3, 5: organisations and the refugee code XXC).
_EXTRA_CODES = ("XXC", "XPO", "XCE", "XES", "XMP", "XDC")


@cache
def _icao_codes() -> frozenset[str]:
    from mrz.base.countries_ops import code_list  # the package's table of ICAO state and organisation codes

    return frozenset(code.ljust(3, FILLER) for code in (*code_list(), *_EXTRA_CODES))


def known_codes(extra: Iterable[str] = ()) -> frozenset[str]:
    """Issuing-state and organisation codes as an MRZ writes them (three characters, 'D<<' for Germany): the
    ICAO table (the `mrz` package's, with the organisations it lacks) and `extra` (e.g. a layouts file's
    issuer codes: just more codes in the same table)."""
    return _icao_codes() | frozenset(code.ljust(3, FILLER) for code in extra)




def check_passes(field: str, digit: str, optional: bool = False) -> bool:
    """Whether `digit` is the check digit of `field` (an empty optional-data field may have '<' instead, as
    the `mrz` package allows); False for characters outside the MRZ alphabet."""
    if optional and digit == FILLER and not field.strip(FILLER):
        return True
    try:
        return check_digit(field) == digit
    except MrzError:
        return False


@dataclass(frozen=True)
class MrzParse:
    """An MRZ read as printed: its format, lines, fields (ICAO names; dates YYMMDD as printed; codes, numbers
    and optional data without their edge fillers; names with spaces for fillers) and check results."""

    format: str
    lines: tuple[str, ...]
    fields: Mapping[str, str]
    checks: Mapping[str, bool]  # protected field ('document_number', …, 'final') → its check digit holds

    @property
    def valid(self) -> bool:
        return all(self.checks.values())


def field_text(lines: Sequence[str], spec: Field) -> str:
    return lines[spec.line][spec.start:spec.end]


def _names(text: str) -> tuple[str, str]:
    """'SURNAME<<GIVEN<NAMES<<<' → ('SURNAME', 'GIVEN NAMES')."""
    surname, _, given = text.partition(FILLER * 2)
    return " ".join(surname.split(FILLER)).strip(), " ".join(given.replace(FILLER, " ").split())


def _long_number(lines: Sequence[str]) -> tuple[str, str]:
    """TD1's document number and its check digit; a number longer than 9 characters goes on in the optional
    data ('<' at the check digit's place), its check digit just before the optional data's first filler."""
    number, digit, optional = lines[0][5:14], lines[0][14], lines[0][15:30]
    rest = optional.split(FILLER, 1)[0]
    if digit == FILLER and len(rest) >= 2:
        return number + rest[:-1], rest[-1]
    return number, digit


def _checks(kind: str, lines: Sequence[str]) -> dict[str, bool]:
    out = {}
    for spec in FIELDS[kind]:
        if spec.check is None:
            continue
        text, digit = field_text(lines, spec), lines[spec.line][spec.check]
        if kind == "TD1" and spec.name == "document_number":
            text, digit = _long_number(lines)
        out[spec.name] = check_passes(text, digit, optional=spec.name == "optional_data")
    if kind in FINAL:
        (line, position), spans = FINAL[kind]
        out["final"] = check_passes("".join(lines[k][a:b] for k, a, b in spans), lines[line][position])
    return out


def parse(lines: Sequence[str], kind: str | None = None) -> MrzParse:
    """Fields and check results of MRZ `lines` (top to bottom, exactly as printed) in format `kind` (by
    default `format_of(lines)`); MrzError when the lines do not have that format's shape."""
    kind = kind or format_of(lines)
    if kind is None or kind not in SHAPE:
        raise MrzError(f"not an MRZ of a known format: {list(lines)!r}")
    count, width = SHAPE[kind]
    if len(lines) != count or any(len(line) != width for line in lines):
        raise MrzError(f"a {kind} MRZ has {count} lines of {width} characters, got {[len(x) for x in lines]}")
    if any(c not in CLASS_CHARS["X"] for line in lines for c in line):
        raise MrzError(f"characters outside the MRZ alphabet in {list(lines)!r}")
    raw = {spec.name: field_text(lines, spec) for spec in FIELDS[kind]}
    fields = {name: value if name.endswith("_date") or name == "sex" else value.strip(FILLER)
              for name, value in raw.items() if name not in ("names", "surname", "given_names")}
    if kind == "TD1":
        fields["document_number"] = _long_number(lines)[0].strip(FILLER)
    if kind == "FRA-CNI":
        surname = " ".join(raw["surname"].split(FILLER)).strip()
        given = " ".join(raw["given_names"].replace(FILLER, " ").split())
        fields |= {"nationality": fields["country"], "expiry_date": ""}  # French nationals; no expiry in the MRZ
    else:
        surname, given = _names(raw["names"])
    fields |= {"surname": " ".join(surname.split()), "name": given}
    return MrzParse(kind, tuple(lines), fields, _checks(kind, lines))


__all__ = ["CLASS_CHARS", "FIELDS", "FINAL", "FORMATS", "SHAPE", "Field", "MrzParse", "check_digit", "check_passes",
           "field_text", "format_of", "known_codes", "parse"]
