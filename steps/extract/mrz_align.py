"""Aligning OCR lines to MRZ layouts: position classes (digit, letter, filler, check digit …), the generic
layouts of every format (ICAO 9303 TD1, TD2, TD3, MRV-A, MRV-B; the French identity card) and an issuer's own,
dynamic-programming alignment that undoes OCR confusions by position, and the choice of a candidate line for
each line of the layout. The alignment proposes; what stands of its changes at characters the OCR was sure of
is decided after the check digits (mrz_trust.py)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from common.icao import FILLER
from steps.extract.layouts import IssuerLayout
from steps.extract.mrz_find import LOOKALIKES, MRZ_CHARS, MrzCandidate
from steps.extract.text import TO_DIGIT, TO_LETTER, TO_SEX

# Position classes: N digit, C check digit or '<', A letter or '<' (names, codes), L letter, X letter,
# digit or '<', F filler only, S sex (M, F, X or '<'), P / I the first letter of a passport / identity
# card code, T the first letter of a TD2 document code, V a visa's, "=c" the literal character c (an issuer's
# code and document code where the MRZ shows that issuer's code; the French card's 'IDFRA').
_CLASS_CHARS = {
    "N": frozenset("0123456789"),
    "C": frozenset("0123456789<"),
    "A": frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ<"),
    "L": frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "X": MRZ_CHARS,
    "F": frozenset(FILLER),
    "S": frozenset("MFX<"),
    "P": frozenset("P"),
    "I": frozenset("IAC"),
    "T": frozenset("IACPV"),  # ICAO's A, C, I; some passports and MRV-B visas use the TD2 size too
    "V": frozenset("V"),
}
_CLASS_CONFUSIONS = {"N": TO_DIGIT, "C": TO_DIGIT, "A": TO_LETTER, "L": TO_LETTER, "S": TO_SEX}
Layout = tuple[tuple[str, ...], ...]  # per line, per position: a class


def _pattern_classes(pattern: str, width: int) -> tuple[str, ...]:
    classes = tuple("L" if c == "L" else "N" for c in pattern[:width])
    return classes + ("F",) * (width - len(classes))


def _code_classes(code: str) -> tuple[str, ...]:
    """A document code as literal positions, a filler as a filler ('P<' → '=P', 'F')."""
    return tuple("F" if c == FILLER else f"={c}" for c in code)


_TD2_DATA = (*"X" * 9, "C", *"AAA", *"N" * 7, "S", *"N" * 7)  # TD2, TD3 and visas: number … expiry
_GENERIC: dict[str, Layout] = {
    "TD1": (("I", "A", *"AAA", *"X" * 9, "C", *"X" * 15), (*"N" * 7, "S", *"N" * 7, *"AAA", *"X" * 11, "C"),
            tuple("A" * 30)),
    "TD2": (("T", "A", *"AAA", *"A" * 31), (*_TD2_DATA, *"X" * 7, "C")),
    "TD3": (("P", "A", *"AAA", *"A" * 39), (*_TD2_DATA, *"X" * 14, "C", "C")),
    "MRV-A": (("V", "A", *"AAA", *"A" * 39), (*_TD2_DATA, *"X" * 16)),
    "MRV-B": (("V", "A", *"AAA", *"A" * 31), (*_TD2_DATA, *"X" * 8)),
    "FRA-CNI": ((*(f"={c}" for c in "IDFRA"), *"A" * 25, *"X" * 6),
                (*"X" * 12, "C", *"A" * 14, *"N" * 6, "C", "S", "C")),
}


def mrz_layout(kind: str, issuer: IssuerLayout | None = None) -> Layout:
    """Position classes of an MRZ of format `kind`: generic (ICAO 9303; the French card's own), or as one
    issuer writes its TD1 / TD3 (its document and issuer codes, number patterns, fillers where it has no
    optional data) — for the issuer whose code the MRZ shows, never one a classifier named. Generic for the
    other formats and for an issuer that writes no MRZ of that format (no document code for it)."""
    spec = issuer if issuer is not None and kind in ("TD1", "TD3") and kind in issuer.mrz_codes else None
    if spec is None:
        return _GENERIC[kind]
    code = tuple(f"={c}" for c in spec.code)
    if kind == "TD3":
        return ((*_code_classes(spec.mrz_codes[kind]), *code, *"A" * 39),
                (*_pattern_classes(spec.doc_number, 9), "N", *code, *"N" * 7, "S", *"N" * 7,
                 *_pattern_classes(spec.personal_number, 14), "N" if spec.personal_number else "F", "N"))
    personal = spec.personal_number if "personal_number" in spec.extra_fields.get("id_card", ()) else ""
    number = spec.id_number
    if len(number) > 9:  # runs on into the optional data: '<' at the check digit's place (ICAO 9303-5)
        run_on = _pattern_classes(number[9:], len(number) - 9) + ("N",)
        upper = (*_pattern_classes(number, 9), "F", *run_on, *_pattern_classes(personal, 15 - len(run_on)))
    else:
        upper = (*_pattern_classes(number, 9), "N", *_pattern_classes(personal, 15))
    return ((*_code_classes(spec.mrz_codes[kind]), *code, *upper),
            (*"N" * 7, "S", *"N" * 7, *code, *"F" * 11, "N"),
            tuple("A" * 30))


def _edge_k(text: str, k: int) -> bool:
    """A 'K' touching a filler, past the document and issuer codes ('P<KSN…' is no misread filler)."""
    return k >= 5 and text[k] == "K" and FILLER in text[k - 1] + text[k + 1:k + 2]


def noise_flags(text: str, noisy: bool = False) -> list[bool]:
    """Look-alike letters that can only be misread fillers: between two fillers, or in the run of fillers
    and look-alikes that ends the line (its leading look-alikes too when they cannot end a name: 'KKKEK');
    in an MRZ with `noisy` fillers, also every 'K' touching a filler."""
    flags = [(c in LOOKALIKES and 0 < k < len(text) - 1 and text[k - 1] == FILLER == text[k + 1])
             or (noisy and _edge_k(text, k)) for k, c in enumerate(text)]
    tail = re.search(f"[{FILLER}{''.join(sorted(LOOKALIKES))}]*$", text)
    if tail and len(tail.group()) >= 4:
        lead = tail.group().split(FILLER, 1)[0]
        keep = 0 if lead.count("K") >= 2 or len(lead) >= 4 else len(lead)
        for k in range(tail.start() + keep, len(text)):
            flags[k] = text[k] in LOOKALIKES
    return flags


def noisy_fillers(texts: Iterable[str]) -> bool:
    """Whether an MRZ's lines show fillers misread as look-alike letters ('<K<', 'KKKEK' at the end, a 'K'
    touching the fillers of a data line): then any 'K' touching a filler is taken for one (otherwise
    kept: names may start or end in K, 'NOWAK<<MAREK')."""
    texts = list(texts)
    noise = sum(sum(noise_flags(t)) for t in texts)
    data_edges = sum(_edge_k(t, k) for t in texts if sum(c.isdigit() for c in t) >= 6 for k in range(len(t)))
    edges = sum(_edge_k(t, k) for t in texts for k in range(len(t)))
    return noise >= 1 or data_edges >= 1 or edges >= 3


def _fit(char: str, klass: str, noise: bool) -> tuple[float, str]:
    """Cost and repaired character of an OCR character at a position of class `klass`."""
    if klass.startswith("="):
        want = klass[1]
        if char == want:
            return 0.0, want
        return (0.35 if want in (TO_DIGIT.get(char), TO_LETTER.get(char)) else 1.0), want
    allowed = _CLASS_CHARS[klass]
    if FILLER in allowed and (noise or (klass == "F" and char in LOOKALIKES)):
        return (0.0 if noise else 0.2), FILLER
    if char in allowed:
        return 0.0, char
    confusion = _CLASS_CONFUSIONS.get(klass, {}).get(char)
    if confusion:
        return 0.35, confusion
    if klass == "A" and char.isdigit():  # no letter looks like it: printed so (Russia writes Ч as 3), kept
        return 1.0, char
    return 1.0, FILLER


def _missing(klass: str) -> str:
    """What a position the OCR missed holds: the one character its class allows ('P' of a passport, a
    literal code letter), else a filler."""
    if klass.startswith("="):
        return klass[1]
    allowed = _CLASS_CHARS[klass]
    return next(iter(allowed)) if len(allowed) == 1 else FILLER


def _filler_runs(text: str) -> list[int]:
    """For each character, the length of the run of fillers it belongs to (0 for other characters)."""
    out = [0] * len(text)
    for match in re.finditer(f"{FILLER}+", text):
        out[match.start():match.end()] = [match.end() - match.start()] * (match.end() - match.start())
    return out


def _delete_costs(text: str, noise: list[bool]) -> list[float]:
    """Cost of dropping each OCR character: fillers of long runs and misread fillers are cheap to drop; a
    'K' touching a filler (not known to be one) costs a little more than a filler: names may end in K."""
    runs = _filler_runs(text)
    return [0.5 if runs[k] >= 3 else 0.3 if noise[k] else 0.55 if _edge_k(text, k) else 1.0
            for k in range(len(text))]


def align_line(text: str, template: Sequence[str], noisy: bool = False) -> tuple[float, str, str]:
    """Align an OCR line to a line template by dynamic programming: the cost, the repaired line, and the
    OCR character behind each of its positions (' ' where one was missing)."""
    cost, line, sources = align_sources(text, template, noisy)
    return cost, line, "".join(text[k] if k >= 0 else " " for k in sources)


def align_sources(text: str, template: Sequence[str], noisy: bool = False) -> tuple[float, str, list[int]]:
    """`align_line`, with the index in `text` of the OCR character behind each position (-1 where one was
    missing).

    Substitutions undo OCR confusions by position class; extra characters are dropped and missing ones
    filled with '<' (or the one character the position allows), cheaper inside filler runs and after a line's
    trailing fillers, and (in a line too long) at its ends, so that length errors are absorbed where the
    fillers and the edges are rather than inside names and numbers. A digit where a name letter belongs that
    no letter is confused with stays a digit.
    """
    n, m = len(text), len(template)
    noise = noise_flags(text, noisy)
    delete = _delete_costs(text, noise)
    if n > m:  # a line too long: a character at either end (a border, a speck read as 'I') is cheap to drop
        delete[0], delete[-1] = min(delete[0], 0.6), min(delete[-1], 0.6)
    runs = _filler_runs(text)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int, str] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        in_run = max(runs[i - 1] if i > 0 else 0, runs[i] if i < n else 0) >= 2
        insert_filler = 0.5 if i == n and runs[-1:] != [0] else 0.6 if in_run else 1.0
        for j in range(m + 1):
            here = cost[i][j]
            if here == inf:
                continue
            if i < n and j < m:
                step, char = _fit(text[i], template[j], noise[i])
                if here + step < cost[i + 1][j + 1]:
                    cost[i + 1][j + 1], back[i + 1][j + 1] = here + step, (i, j, char)
            if i < n and here + delete[i] < cost[i + 1][j]:
                cost[i + 1][j], back[i + 1][j] = here + delete[i], (i, j, "")
            if j < m:
                step = insert_filler if FILLER in _CLASS_CHARS.get(template[j], "") else 1.0
                if here + step < cost[i][j + 1]:
                    cost[i][j + 1], back[i][j + 1] = here + step, (i, j, _missing(template[j]))
    out, sources, i, j = [], [], n, m
    while (step_back := back[i][j]) is not None:
        pi, pj, char = step_back
        if char:
            out.append(char)
            sources.append(pi if pi < i else -1)
        i, j = pi, pj
    return cost[n][m], "".join(reversed(out)), list(reversed(sources))


@dataclass(frozen=True)
class LineFit:
    """One MRZ line: the OCR text it was read from, its repaired form, and the alignment cost."""

    source: str
    line: str
    read: str  # the OCR character behind each position of `line` (' ' where one was missing)
    cost: float
    confidence: tuple[float, ...] = ()  # the OCR's confidence in `read`, per position (0 where missing)
    per_character: bool = False  # … each character's own (else its word's)


def _line_fit(candidate: MrzCandidate, template: Sequence[str], noisy: bool) -> LineFit:
    cost, line, sources = align_sources(candidate.text, template, noisy)
    confidences = candidate.confidences()
    return LineFit(candidate.text, line, "".join(candidate.text[k] if k >= 0 else " " for k in sources), cost,
                   tuple(confidences[k] if k >= 0 else 0.0 for k in sources), candidate.per_character)


def assign_lines(candidates: Sequence[MrzCandidate], layout: Layout, max_cost: float) -> list[LineFit | None]:
    """The best candidate for each MRZ line (keeping top-to-bottom order), repaired; None where none fits."""
    noisy = noisy_fillers(c.text for c in candidates)
    fits = [[_line_fit(c, t, noisy) for t in layout] for c in candidates]
    best_score, best_pick = 0.0, [None] * len(layout)
    for pick in itertools.product([None, *range(len(candidates))], repeat=len(layout)):
        chosen = [p for p in pick if p is not None]
        if chosen != sorted(set(chosen)):
            continue
        score = 0.0
        for role, p in enumerate(pick):
            if p is not None:
                per_char = fits[p][role].cost / len(layout[role])
                score += (max_cost - per_char) if per_char < max_cost else -1.0
        if score > best_score:
            best_score, best_pick = score, list(pick)
    return [None if p is None else fits[p][role] for role, p in enumerate(best_pick)]

