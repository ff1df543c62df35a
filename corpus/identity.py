"""The content of one document: a fictional person and the document's data, drawn from a seeded RNG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
from faker import Faker

from corpus import mrz
from corpus.issuers import DOC_LETTERS, Issuer

CATEGORIES = ("AM", "A1", "A2", "A", "B1", "B", "BE", "C1", "C", "CE", "D1", "D")


@dataclass(frozen=True)
class Identity:
    issuer: Issuer
    l1: str
    surname: str
    given_names: str
    sex: str
    birth: date
    issue: date
    expiry: date
    document_number: str
    place_of_birth: str
    authority: str
    personal_number: str
    categories: str

    @property
    def l2(self) -> str:
        return f"{self.issuer.code}.{self.l1}"

    def printed_date(self, day: date) -> str:
        text = day.strftime(self.issuer.date_format)
        return text.upper() if self.issuer.uppercase_months else text

    def fields(self) -> dict[str, str]:
        """Ground-truth fields: values exactly as printed, except dates, which are ISO (YYYY-MM-DD)."""
        common = {
            "surname": self.surname,
            "given_names": self.given_names,
            "date_of_birth": self.birth.isoformat(),
            "date_of_expiry": self.expiry.isoformat(),
            "document_number": self.document_number,
        }
        if self.l1 == "driving_licence":
            return common | {
                "place_of_birth": self.place_of_birth,
                "date_of_issue": self.issue.isoformat(),
                "authority": self.authority,
                "categories": self.categories,
            }
        common |= {"sex": self.sex, "nationality": self.issuer.code}
        if self.l1 == "passport":
            common |= {
                "place_of_birth": self.place_of_birth,
                "date_of_issue": self.issue.isoformat(),
                "authority": self.authority,
            }
        for extra in self.issuer.extra_fields.get(self.l1, ()):
            common[extra] = getattr(self, extra)
        return common

    @property
    def mrz_format(self) -> str | None:
        """The MRZ format the document prints (None: no MRZ)."""
        return {"id_card": self.issuer.id_mrz, "passport": "TD3"}.get(self.l1)

    def mrz_lines(self) -> tuple[str, ...]:
        kind = self.mrz_format
        if kind is None:
            return ()
        personal = self.personal_number if "personal_number" in self.fields() else ""
        common = {"issuer": self.issuer.code, "document_number": self.document_number, "birth": self.birth,
                  "sex": self.sex, "expiry": self.expiry, "nationality": self.issuer.code, "surname": self.surname,
                  "given_names": self.given_names}
        if kind == "TD3":
            return mrz.td3(**common, personal_number=personal)
        return (mrz.td2 if kind == "TD2" else mrz.td1)(**common, optional=personal)


@lru_cache(maxsize=16)
def _faker(locale: str) -> Faker:
    return Faker(locale)


@lru_cache(maxsize=16)
def _city_list(locale: str) -> tuple[str, ...]:
    """The locale's city names in a fixed order. Some Faker locales (it_IT) build theirs from a set, whose
    order changes with PYTHONHASHSEED: sorting makes the draw reproducible across processes."""
    import importlib

    provider = importlib.import_module(f"faker.providers.address.{locale}").Provider
    return tuple(sorted(set(getattr(provider, "cities", ()))))


def _city(locale: str, fake: Faker, rng: np.random.Generator) -> str:
    cities = _city_list(locale)
    return cities[int(rng.integers(len(cities)))] if cities else fake.city()


def _pattern(pattern: str, rng: np.random.Generator) -> str:
    out = []
    for char in pattern:
        if char == "L":
            out.append(DOC_LETTERS[int(rng.integers(len(DOC_LETTERS)))])
        elif char == "9":
            out.append(str(int(rng.integers(10))))
        elif char == "1":
            out.append(str(int(rng.integers(1, 10))))
        else:
            out.append(char)
    return "".join(out)


def _random_date(rng: np.random.Generator, start: date, end: date) -> date:
    return start + timedelta(days=int(rng.integers((end - start).days + 1)))


def expiry_after(issue: date, years: int) -> date:
    """The day before the `years`-th anniversary of issue (a 29 February anniversary falls on 1 March)."""
    if (issue.month, issue.day) == (2, 29):
        return date(issue.year + years, 3, 1) - timedelta(days=1)
    return issue.replace(year=issue.year + years) - timedelta(days=1)


def draw_identity(issuer: Issuer, l1: str, rng: np.random.Generator) -> Identity:
    """A fictional person and document of `issuer`, fully determined by `rng`'s state."""
    fake = _faker(issuer.locale)
    fake.seed_instance(int(rng.integers(2**31)))
    sex = "F" if rng.random() < 0.5 else "M"
    first = fake.first_name_female if sex == "F" else fake.first_name_male
    given = first()
    if rng.random() < 0.35:
        for _ in range(2 if rng.random() < 0.3 else 1):  # some people have three given names
            more = first()
            if more not in given.split():
                given = f"{given} {more}"
    surname = fake.last_name()
    if issuer.double_surname or rng.random() < 0.12:  # 'GARCIA LOPEZ', 'MÜLLER-SCHMIDT'
        second_surname = fake.last_name()
        if second_surname != surname:
            surname = f"{surname} {second_surname}" if issuer.double_surname else f"{surname}-{second_surname}"
    birth = _random_date(rng, date(1950, 1, 1), date(2006, 12, 31))
    issue = _random_date(rng, date(2016, 1, 1), date(2025, 12, 31))
    years = {"passport": 10, "id_card": 10, "driving_licence": 15}[l1]
    expiry = expiry_after(issue, years)
    number = _pattern(issuer.number_pattern(l1), rng)
    n_categories = int(rng.integers(1, 5))
    picks = sorted(rng.choice(len(CATEGORIES), size=n_categories, replace=False))
    return Identity(
        issuer=issuer,
        l1=l1,
        surname=surname.upper(),
        given_names=given.upper(),
        sex=sex,
        birth=birth,
        issue=issue,
        expiry=expiry,
        document_number=number,
        place_of_birth=_city(issuer.locale, fake, rng).upper(),
        authority=_city(issuer.locale, fake, rng).upper(),
        personal_number=_pattern(issuer.personal_number, rng) if issuer.personal_number else "",
        categories=" ".join(CATEGORIES[i] for i in picks),
    )
