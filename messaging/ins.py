"""The INS (identifiant national de santé) and the qualified identity a patient address needs.

An INS matricule is the 13-character NIR (numéro d'inscription au répertoire, or a temporary
NIA) followed by its 2-digit control key, ``97 − (NIR mod 97)``. Corsica's departments ``2A``
and ``2B`` sit where the NIR has two digits: the key is computed with ``2A`` read as ``19``
and ``2B`` as ``18`` (DOMAIN.md, "Mailboxes and identifiers").

A patient's mailbox is ``<INS>@patient.<domain>`` and may only be built from a *qualified*
identity: the matricule together with the identity traits that the national teleservice
returned (birth name, first given name, birth date, sex). :class:`QualifiedIdentity` holds
them and refuses traits that contradict the NIR, which encodes the sex and the birth year
(and the month when it is known): an identity whose traits do not match its INS is not the
same person, whatever a form says. Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import cast

from messaging.errors import PliError
from messaging.types import Address

__all__ = [
    "InvalidINS",
    "Ins",
    "Sex",
    "QualifiedIdentity",
    "nir_key",
    "patient_address",
    "ins_of",
    "PATIENT_SUBDOMAIN",
]

PATIENT_SUBDOMAIN = "patient"
"""Patient mailboxes live under ``patient.<operator domain>``."""

_CORSICA = {"2A": "19", "2B": "18"}
# The first NIR digit: 1 and 2 for people registered at birth, 3 and 4 (rare, foreign-born
# people being registered) and 7 and 8 for a temporary NIA; odd digits are men.
_SEX_DIGITS = {"1": "M", "2": "F", "3": "M", "4": "F", "7": "M", "8": "F"}


class InvalidINS(PliError, ValueError):
    """An INS, NIR or identity that is malformed, has a wrong key or is not qualified."""


def _check_nir(nir: str) -> None:
    if len(nir) != 13:
        raise InvalidINS(f"NIR {nir!r} has {len(nir)} characters; a NIR has 13")
    if nir[0] not in _SEX_DIGITS:
        raise InvalidINS(
            f"NIR {nir!r} starts with {nir[0]!r}; the first character is the sex "
            "(1 or 2, 3 or 4, 7 or 8 for a temporary NIA)"
        )
    department = nir[5:7]
    if not (department.isdecimal() or department in _CORSICA):
        raise InvalidINS(
            f"NIR {nir!r} has {department!r} at characters 6-7; the department is two digits, "
            "2A or 2B"
        )
    if not (nir[:5].isdecimal() and nir[7:].isdecimal() and nir.isascii()):
        raise InvalidINS(f"NIR {nir!r} has a character that is not a digit outside the department")


def nir_key(nir: str) -> str:
    """The 2-digit control key of a 13-character NIR (``2A``→19, ``2B``→18 for the sum)."""
    nir = nir.upper()
    _check_nir(nir)
    digits = nir[:5] + _CORSICA.get(nir[5:7], nir[5:7]) + nir[7:]
    return f"{97 - int(digits) % 97:02d}"


@dataclass(frozen=True, slots=True, order=True)
class Ins:
    """An INS matricule: the NIR (13 characters, upper case) and its checked 2-digit key."""

    nir: str
    key: str

    def __post_init__(self) -> None:
        _check_nir(self.nir)
        if len(self.key) != 2 or not (self.key.isdecimal() and self.key.isascii()):
            raise InvalidINS(f"INS key {self.key!r} is not two digits")
        expected = nir_key(self.nir)
        if self.key != expected:
            raise InvalidINS(
                f"INS {self.nir}{self.key} has the wrong key {self.key}: "
                f"the key of NIR {self.nir} is {expected}"
            )

    @classmethod
    def parse(cls, text: str) -> Ins:
        """Parse 15 characters (spaces allowed, ``2a``/``2b`` in any case); check the key."""
        compact = "".join(text.split()).upper()
        if len(compact) != 15:
            raise InvalidINS(
                f"INS {text!r} has {len(compact)} characters; an INS has 15: "
                "the 13-character NIR and its 2-digit key"
            )
        return cls(compact[:13], compact[13:])

    @property
    def sex(self) -> Sex:
        """The sex the NIR encodes in its first digit."""
        return Sex(_SEX_DIGITS[self.nir[0]])

    def __str__(self) -> str:
        return self.nir + self.key


class Sex(StrEnum):
    """The sex trait of the INS identity (the teleservice returns M or F)."""

    MALE = "M"
    FEMALE = "F"


@dataclass(frozen=True, slots=True)
class QualifiedIdentity:
    """An INS with the identity traits that qualify it; the only source of patient addresses.

    Names are kept as the teleservice returns them. Construction refuses a missing trait and
    traits that contradict the NIR (sex digit, birth year, and birth month when the NIR
    carries a real month, 01 to 12).
    """

    ins: Ins
    birth_name: str
    first_given_name: str
    birth_date: date
    sex: Sex

    def __post_init__(self) -> None:
        if not isinstance(cast(object, self.ins), Ins):
            raise InvalidINS("a qualified identity needs an INS (use Ins.parse)")
        for trait, value in (
            ("birth name", self.birth_name),
            ("first given name", self.first_given_name),
        ):
            if not value.strip():
                raise InvalidINS(f"a qualified identity needs its {trait}")
        sex = Sex(self.sex)
        if sex is not self.ins.sex:
            raise InvalidINS(
                f"sex {sex.value} contradicts INS {self.ins}, whose first digit says {self.ins.sex}"
            )
        nir = self.ins.nir
        if nir[1:3] != f"{self.birth_date.year % 100:02d}":
            raise InvalidINS(
                f"birth date {self.birth_date.isoformat()} contradicts INS {self.ins}, "
                f"whose birth year ends in {nir[1:3]}"
            )
        month = int(nir[3:5])
        if 1 <= month <= 12 and month != self.birth_date.month:
            raise InvalidINS(
                f"birth date {self.birth_date.isoformat()} contradicts INS {self.ins}, "
                f"whose birth month is {nir[3:5]}"
            )


def patient_address(identity: QualifiedIdentity, domain: str) -> Address:
    """``<INS>@patient.<domain>``, built only from a :class:`QualifiedIdentity`.

    ``domain`` is the operator's domain; the ``patient.`` label is added here.
    """
    if not isinstance(cast(object, identity), QualifiedIdentity):
        raise InvalidINS(
            "a patient address is built only from a qualified identity: the INS with the "
            "birth name, first given name, birth date and sex"
        )
    return Address.parse(f"{identity.ins}@{PATIENT_SUBDOMAIN}.{domain}")


def ins_of(address: Address) -> Ins:
    """The INS of a patient address; raises :class:`InvalidINS` for any other address."""
    if not address.domain.startswith(PATIENT_SUBDOMAIN + "."):
        raise InvalidINS(f"{address} is not a patient address (patient.<domain>)")
    return Ins.parse(address.local)
