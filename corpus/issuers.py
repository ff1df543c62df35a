"""The fictional issuing countries and what each prints on its documents.

Each issuer has its own 3-letter code, language (field labels), name style (a Faker locale),
date format, document-number pattern, colours and typefaces, and a few issuer-specific fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Letters used in document numbers. Like many real issuers, CardFlow's leave out letters that look
# like digits (B, D, G, I, O, Q, S, Z), whose capital and small forms look alike (C, U, V, W, X) or
# that read as brackets (J), so that a number can be read back unambiguously.
DOC_LETTERS = "FHKLMNPRTY"


@dataclass(frozen=True)
class Palette:
    background: tuple[int, int, int]  # paper tint
    security: tuple[int, int, int]  # guilloche / pattern ink: vanishes in some colour channels
    accent: tuple[int, int, int]  # header band and field labels
    ink: tuple[int, int, int] = (18, 18, 28)  # field values


@dataclass(frozen=True)
class Issuer:
    code: str
    name: str  # printed in the header, in the issuer's language
    name_en: str
    locale: str  # Faker locale for names and places
    date_format: str  # strftime pattern of printed dates
    titles: dict[str, str]  # document title per level-1 class
    labels: dict[str, str]  # field label per field name (bilingual where the issuer prints both)
    palette: Palette
    font: str  # DejaVu face for values
    label_font: str
    photo_side: str  # "left" or "right"
    doc_number: str  # pattern: L = letter from DOC_LETTERS, 9 = digit, 1 = digit but 0 (serials start non-zero)
    dl_number: str
    extra_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per level-1 class
    personal_number: str = ""  # pattern; empty when the issuer has none
    # identity-card number pattern where it differs from `doc_number`: longer than 9 characters, it runs on
    # into the TD1 optional data (ICAO 9303-5: '<' at the check digit's place), as on Belgian cards
    id_number: str = ""
    id_mrz: str = "TD1"  # the identity card's MRZ format: TD1 (3×30) or TD2 (2×36, as on older cards)
    double_surname: bool = False  # two surnames, as in Spain ('GARCIA LOPEZ'); others sometimes hyphenate

    def number_pattern(self, l1: str) -> str:
        """The document-number pattern of the issuer's documents of type `l1`."""
        if l1 == "driving_licence":
            return self.dl_number
        return self.id_number if l1 == "id_card" and self.id_number else self.doc_number

    @property
    def uppercase_months(self) -> bool:
        return "%b" in self.date_format


def _labels(local: dict[str, str], bilingual: bool) -> dict[str, str]:
    english = {
        "surname": "Surname",
        "given_names": "Given names",
        "sex": "Sex",
        "nationality": "Nationality",
        "date_of_birth": "Date of birth",
        "document_number": "Document No.",
        "date_of_expiry": "Date of expiry",
        "date_of_issue": "Date of issue",
        "place_of_birth": "Place of birth",
        "authority": "Authority",
        "personal_number": "Personal No.",
        "type": "Type",
        "code": "Code",
    }
    if not bilingual:
        return {k: local.get(k, v) for k, v in english.items()}
    return {k: f"{local[k]} / {v}" if k in local and local[k] != v else v for k, v in english.items()}


ISSUERS: tuple[Issuer, ...] = (
    Issuer(
        code="AUR",
        name="REPUBLIC OF AURELIA",
        name_en="Republic of Aurelia",
        locale="en_GB",
        date_format="%d %b %Y",
        titles={"id_card": "IDENTITY CARD", "passport": "PASSPORT", "driving_licence": "DRIVING LICENCE"},
        labels=_labels({}, bilingual=False),
        palette=Palette(background=(226, 240, 236), security=(40, 150, 160), accent=(10, 90, 100)),
        font="DejaVuSans-Bold.ttf",
        label_font="DejaVuSans.ttf",
        photo_side="left",
        doc_number="LL1999999",
        dl_number="LLLLL999999LL",
    ),
    Issuer(
        code="NRV",
        name="BUNDESREPUBLIK NORVANIEN",
        name_en="Federal Republic of Norvania",
        locale="de_DE",
        date_format="%d.%m.%Y",
        titles={"id_card": "PERSONALAUSWEIS", "passport": "REISEPASS", "driving_licence": "FÜHRERSCHEIN"},
        labels=_labels(
            {
                "surname": "Name",
                "given_names": "Vornamen",
                "sex": "Geschlecht",
                "nationality": "Staatsangehörigkeit",
                "date_of_birth": "Geburtstag",
                "document_number": "Ausweisnummer",
                "date_of_expiry": "Gültig bis",
                "date_of_issue": "Ausstellungsdatum",
                "place_of_birth": "Geburtsort",
                "authority": "Behörde",
                "type": "Typ",
                "code": "Kode",
            },
            bilingual=True,
        ),
        palette=Palette(background=(247, 231, 236), security=(215, 85, 125), accent=(140, 20, 55)),
        font="DejaVuSerif-Bold.ttf",
        label_font="DejaVuSerif.ttf",
        photo_side="left",
        doc_number="L19999999",
        id_number="199999999999",
        dl_number="L999LLL99L99",
        extra_fields={"id_card": ("place_of_birth",)},
    ),
    Issuer(
        code="ESL",
        name="REINO DE ESTRELIA",
        name_en="Kingdom of Estrelia",
        locale="es_ES",
        date_format="%d %m %Y",
        titles={"id_card": "DOCUMENTO DE IDENTIDAD", "passport": "PASAPORTE", "driving_licence": "PERMISO DE CONDUCCIÓN"},
        labels=_labels(
            {
                "surname": "Apellidos",
                "given_names": "Nombre",
                "sex": "Sexo",
                "nationality": "Nacionalidad",
                "date_of_birth": "Fecha de nacimiento",
                "document_number": "Núm. soporte",
                "date_of_expiry": "Válido hasta",
                "date_of_issue": "Fecha de expedición",
                "place_of_birth": "Lugar de nacimiento",
                "authority": "Autoridad",
                "personal_number": "DNI",
                "type": "Tipo",
                "code": "Código",
            },
            bilingual=True,
        ),
        palette=Palette(background=(248, 240, 216), security=(215, 140, 40), accent=(150, 70, 0)),
        font="DejaVuSans-Bold.ttf",
        label_font="DejaVuSans-Oblique.ttf",
        photo_side="right",
        doc_number="LLL199999",
        dl_number="99999999L",
        extra_fields={"id_card": ("personal_number",), "passport": ("personal_number",)},
        personal_number="99999999L",
        double_surname=True,
    ),
    Issuer(
        code="VLM",
        name="REPUBBLICA DI VALMORA",
        name_en="Republic of Valmora",
        locale="it_IT",
        date_format="%d/%m/%Y",
        titles={"id_card": "CARTA DI IDENTITÀ", "passport": "PASSAPORTO", "driving_licence": "PATENTE DI GUIDA"},
        labels=_labels(
            {
                "surname": "Cognome",
                "given_names": "Nome",
                "sex": "Sesso",
                "nationality": "Cittadinanza",
                "date_of_birth": "Data di nascita",
                "document_number": "Numero",
                "date_of_expiry": "Scadenza",
                "date_of_issue": "Emissione",
                "place_of_birth": "Luogo di nascita",
                "authority": "Autorità",
                "type": "Tipo",
                "code": "Codice",
            },
            bilingual=True,
        ),
        palette=Palette(background=(235, 232, 247), security=(95, 85, 215), accent=(45, 35, 130)),
        font="DejaVuSans.ttf",
        label_font="DejaVuSans.ttf",
        photo_side="left",
        doc_number="LL19999LL",
        dl_number="LL9999999L",
        extra_fields={"id_card": ("place_of_birth",)},
        id_mrz="TD2",
    ),
    Issuer(
        code="KSN",
        name="RZECZPOSPOLITA KESTONII",
        name_en="Republic of Kestonia",
        locale="pl_PL",
        date_format="%Y-%m-%d",
        titles={"id_card": "DOWÓD OSOBISTY", "passport": "PASZPORT", "driving_licence": "PRAWO JAZDY"},
        labels=_labels(
            {
                "surname": "Nazwisko",
                "given_names": "Imiona",
                "sex": "Płeć",
                "nationality": "Obywatelstwo",
                "date_of_birth": "Data urodzenia",
                "document_number": "Numer dokumentu",
                "date_of_expiry": "Termin ważności",
                "date_of_issue": "Data wydania",
                "place_of_birth": "Miejsce urodzenia",
                "authority": "Organ wydający",
                "personal_number": "Numer PESEL",
                "type": "Typ",
                "code": "Kod",
            },
            bilingual=False,
        ),
        palette=Palette(background=(230, 242, 220), security=(110, 175, 60), accent=(30, 95, 20)),
        font="DejaVuSerif.ttf",
        label_font="DejaVuSans.ttf",
        photo_side="right",
        doc_number="LLL199999",
        dl_number="99999/99/9999",
        extra_fields={"id_card": ("personal_number",), "passport": ("personal_number",)},
        personal_number="99999999999",
    ),
)

ISSUER_BY_CODE = {issuer.code: issuer for issuer in ISSUERS}

# Driving-licence field labels follow the EU model: numbered fields, same numbers everywhere.
DL_NUMBERS = {
    "surname": "1.",
    "given_names": "2.",
    "date_of_birth": "3.",
    "date_of_issue": "4a.",
    "date_of_expiry": "4b.",
    "authority": "4c.",
    "document_number": "5.",
    "categories": "9.",
}
