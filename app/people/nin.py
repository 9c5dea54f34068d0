"""Norwegian national identity numbers: fødselsnummer and D-number.

Both check digits are mod-11. For numbers issued from 2032 Skatteetaten accepts several
first check digits: the weighted sum including k1 may leave a remainder of 0, 1, 2 or 3
(https://skatteetaten.github.io/folkeregisteret-api-dokumentasjon/nyttfnr2032/). The second
check digit is unchanged. Synthetic test numbers (Skatteetaten's Tenor: month + 80) are valid
only where the caller allows them, which Varde does in demo and test mode alone.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from flask_babel import lazy_gettext as _l

K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
ASCII_DIGITS = frozenset("0123456789")
SYNTHETIC_MONTH_OFFSET = 80
D_NUMBER_DAY_OFFSET = 40

# OIDs used for the identifier systems in FHIR (HL7 Norway no-basis).
SYSTEM_FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
SYSTEM_DNR = "urn:oid:2.16.578.1.12.4.1.4.2"


class NinKind(StrEnum):
    FNR = "fnr"
    DNR = "dnr"


class InvalidNin(ValueError):
    """Raised with a code and a message a person can act on (translatable)."""

    def __init__(self, code: str, message: object) -> None:
        super().__init__(code)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


@dataclass(frozen=True)
class Nin:
    value: str
    kind: NinKind
    synthetic: bool

    @property
    def system(self) -> str:
        return SYSTEM_FNR if self.kind is NinKind.FNR else SYSTEM_DNR

    def __str__(self) -> str:
        return self.value


def _check_digits_ok(digits: list[int]) -> bool:
    s1 = sum(w * d for w, d in zip(K1_WEIGHTS, digits[:9], strict=True)) + digits[9]
    if s1 % 11 not in (0, 1, 2, 3):
        return False
    s2 = sum(w * d for w, d in zip(K2_WEIGHTS, digits[:10], strict=True)) + digits[10]
    return s2 % 11 == 0


def _day_month_possible(day: int, month: int, yy: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    # The century cannot be read reliably from numbers issued after 2032, so accept the
    # date if it exists in any century the number could belong to (29 February included).
    return any(day <= calendar.monthrange(century + yy, month)[1] for century in (1800, 1900, 2000))


def parse_nin(raw: str, *, allow_synthetic: bool = False) -> Nin:
    """Validate a national identity number and return it normalised.

    Spaces are ignored. Raises InvalidNin with a code (``length``, ``digits``, ``date``,
    ``checksum``, ``synthetic``) and a Norwegian message.
    """
    value = (raw or "").replace(" ", "")
    if not value:
        raise InvalidNin("empty", _l("Skriv inn fødselsnummeret med 11 siffer."))
    if any(ch not in ASCII_DIGITS for ch in value):
        raise InvalidNin("digits", _l("Fødselsnummeret kan bare inneholde sifrene 0–9."))
    if len(value) != 11:
        raise InvalidNin("length", _l("Fødselsnummeret må ha 11 siffer."))
    digits = [int(ch) for ch in value]
    day = digits[0] * 10 + digits[1]
    month = digits[2] * 10 + digits[3]
    yy = digits[4] * 10 + digits[5]

    kind = NinKind.FNR
    if day > D_NUMBER_DAY_OFFSET:
        kind = NinKind.DNR
        day -= D_NUMBER_DAY_OFFSET
    synthetic = False
    if month > SYNTHETIC_MONTH_OFFSET:
        synthetic = True
        month -= SYNTHETIC_MONTH_OFFSET
    if not _day_month_possible(day, month, yy):
        raise InvalidNin("date", _l("De seks første sifrene må være en gyldig fødselsdato (ddmmåå)."))
    if not _check_digits_ok(digits):
        raise InvalidNin("checksum", _l("Fødselsnummeret er ikke gyldig. Sjekk at alle sifrene er riktige."))
    if synthetic and not allow_synthetic:
        raise InvalidNin("synthetic", _l("Dette er et syntetisk testnummer og kan bare brukes i demomodus."))
    return Nin(value=value, kind=kind, synthetic=synthetic)


def nin_system(stored: str) -> str:
    """The FHIR identifier system of a stored (already valid) number: fødselsnummer or D-number."""
    return SYSTEM_DNR if int(stored[0:2]) > D_NUMBER_DAY_OFFSET else SYSTEM_FNR


def is_valid_nin(raw: str, *, allow_synthetic: bool = False) -> bool:
    try:
        parse_nin(raw, allow_synthetic=allow_synthetic)
    except InvalidNin:
        return False
    return True


def birth_date_of(nin: Nin) -> date | None:
    """Birth date from a number issued before 2032 (century from the individual number).

    Numbers from 2032 carry no century; the registry's own birth date must be used then, so
    this returns None when the date cannot be determined.
    """
    v = nin.value
    day = int(v[0:2]) - (D_NUMBER_DAY_OFFSET if nin.kind is NinKind.DNR else 0)
    month = int(v[2:4]) - (SYNTHETIC_MONTH_OFFSET if nin.synthetic else 0)
    yy = int(v[4:6])
    individual = int(v[6:9])
    if individual <= 499:
        year = 1900 + yy
    elif individual <= 749 and yy >= 54:
        year = 1800 + yy
    elif yy <= 39:
        year = 2000 + yy
    elif individual >= 900:
        year = 1900 + yy
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def make_nin(birth: date, individual: int, *, dnr: bool = False, synthetic: bool = False) -> str | None:
    """Build a number with the classic (pre-2032) check digits, or None if none exists.

    Used by demo data and test factories; real numbers come from the population register.
    """
    day = birth.day + (D_NUMBER_DAY_OFFSET if dnr else 0)
    month = birth.month + (SYNTHETIC_MONTH_OFFSET if synthetic else 0)
    head = f"{day:02d}{month:02d}{birth.year % 100:02d}{individual:03d}"
    digits = [int(c) for c in head]
    k1 = (11 - sum(w * d for w, d in zip(K1_WEIGHTS, digits, strict=True)) % 11) % 11
    if k1 == 10:
        return None
    digits.append(k1)
    k2 = (11 - sum(w * d for w, d in zip(K2_WEIGHTS, digits, strict=True)) % 11) % 11
    if k2 == 10:
        return None
    return head + str(k1) + str(k2)
