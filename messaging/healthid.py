"""National health identifiers as health documents carry them: INS with its OID, RPPS.

- The INS (identifiant national de santé) travels as an HL7 instance identifier: the 15
  characters of :class:`~messaging.ins.Ins` with the OID of its assigning authority. The ANS
  "Référentiel INS" assigns ``1.2.250.1.213.1.4.8`` to the INS-NIR and ``1.2.250.1.213.1.4.9``
  to the INS-NIA (a temporary number, first digit 7 or 8); ``1.2.250.1.213.1.4.10`` and
  ``1.2.250.1.213.1.4.11`` are their *test* counterparts, used only by test identities.
- The RPPS (répertoire partagé des professionnels de santé) number of a professional is 11
  digits whose last one is a Luhn check digit (ISO/IEC 7812-1 annex B), as the RPPS register
  computes it.

:func:`checked_ins` turns the text of an INS found in a document into an :class:`Ins`, with the
refusal codes that documents use: ``ins-missing``, ``ins-malformed``, ``ins-key`` (the 13
characters are a NIR but the key is wrong), ``ins-oid`` (an OID that is not an INS authority
or that does not match the kind of number). Pure functions only.
"""

from __future__ import annotations

from messaging.errors import InvalidMessage
from messaging.ins import Ins, InvalidINS, nir_key

__all__ = [
    "INS_NIR_OID",
    "INS_NIA_OID",
    "INS_NIR_TEST_OID",
    "INS_NIA_TEST_OID",
    "INS_OIDS",
    "TEST_INS_OIDS",
    "ins_oid",
    "checked_ins",
    "check_ins_oid",
    "luhn_valid",
    "checked_rpps",
]

INS_NIR_OID = "1.2.250.1.213.1.4.8"
INS_NIA_OID = "1.2.250.1.213.1.4.9"
INS_NIR_TEST_OID = "1.2.250.1.213.1.4.10"
INS_NIA_TEST_OID = "1.2.250.1.213.1.4.11"
INS_OIDS = frozenset({INS_NIR_OID, INS_NIA_OID, INS_NIR_TEST_OID, INS_NIA_TEST_OID})
TEST_INS_OIDS = frozenset({INS_NIR_TEST_OID, INS_NIA_TEST_OID})

# A temporary NIA starts with 7 or 8 (see messaging.ins); every other number is a NIR.
_NIA_FIRST_DIGITS = frozenset("78")


def ins_oid(ins: Ins, *, test: bool = False) -> str:
    """The OID of the authority that assigned ``ins`` (NIR or NIA; test OIDs when asked)."""
    nia = ins.nir[0] in _NIA_FIRST_DIGITS
    if test:
        return INS_NIA_TEST_OID if nia else INS_NIR_TEST_OID
    return INS_NIA_OID if nia else INS_NIR_OID


def check_ins_oid(ins: Ins, oid: str, *, allow_test: bool) -> None:
    """Refuse an OID that is not the authority of ``ins`` (``ins-oid``)."""
    if oid not in INS_OIDS:
        raise InvalidMessage(f"{oid!r} is not the OID of an INS authority", "ins-oid")
    if oid in TEST_INS_OIDS and not allow_test:
        raise InvalidMessage(
            f"INS {ins} carries the test OID {oid}; test identities are not accepted here",
            "ins-oid",
        )
    expected = ins_oid(ins, test=oid in TEST_INS_OIDS)
    if oid != expected:
        raise InvalidMessage(
            f"INS {ins} is assigned by {expected}, not by {oid} (NIR and NIA have their own OIDs)",
            "ins-oid",
        )


def checked_ins(text: str | None) -> Ins:
    """An :class:`Ins` from document text, or :class:`InvalidMessage` with a precise code."""
    if text is None or not text.strip():
        raise InvalidMessage("the patient's INS is missing", "ins-missing")
    try:
        return Ins.parse(text)
    except InvalidINS as exc:
        compact = "".join(text.split()).upper()
        if len(compact) == 15:
            try:
                expected = nir_key(compact[:13])
            except InvalidINS:
                pass
            else:
                # The NIR itself is well formed, so only the key can be wrong.
                raise InvalidMessage(
                    f"INS {compact} has the wrong key: the key of NIR {compact[:13]} is {expected}",
                    "ins-key",
                ) from None
        raise InvalidMessage(f"malformed INS: {exc}", "ins-malformed") from None


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits passes the Luhn check (its last digit is the key)."""
    if not digits or not (digits.isascii() and digits.isdecimal()):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def checked_rpps(text: str | None) -> str:
    """An RPPS number (11 digits, Luhn key), or ``rpps-missing`` / ``rpps-invalid``."""
    if text is None or not text.strip():
        raise InvalidMessage("the prescriber's RPPS number is missing", "rpps-missing")
    value = text.strip()
    if len(value) != 11 or not (value.isascii() and value.isdecimal()):
        raise InvalidMessage(f"RPPS {value!r} is not 11 digits", "rpps-invalid")
    if not luhn_valid(value):
        raise InvalidMessage(f"RPPS {value} fails its Luhn check digit", "rpps-invalid")
    return value
