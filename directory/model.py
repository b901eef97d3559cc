"""How a line of the extraction maps to the directory's values and stored columns.

One table of correspondences serves both implementations: the SQL one stores a role's 31
fields in the columns named by :data:`ROLE_COLUMNS` (so export gives back the very same
strings), the in-memory one keeps the tuple itself; both build :class:`Role`,
:class:`Practitioner` and :class:`Organisation` values with the functions below.

Consolidation rule: a practitioner (keyed by ``Identification nationale PP``) and an
organisation (keyed by ``Identification Structure``) take the values of the *last* line of
the file that names them. Roles keep each line's own values.
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Sequence
from typing import Final

from messaging.directory import Code, Organisation, PostalAddress, Practitioner, Role
from messaging.types import Address, MailboxKind

__all__ = [
    "ROLE_COLUMNS",
    "PRACTITIONER_FIELDS",
    "PRACTITIONER_COLUMNS",
    "ORGANISATION_FIELDS",
    "ORGANISATION_COLUMNS",
    "PRACTITIONER_ID",
    "ORGANISATION_ID",
    "SERVICE",
    "practitioner_from",
    "organisation_from",
    "role_from",
    "pick",
    "fingerprint",
]

# Indexes of the 31 fields (see directory.extraction.COLUMNS).
PRACTITIONER_ID: Final = 4
ORGANISATION_ID: Final = 6
SERVICE: Final = 7

ROLE_COLUMNS: Final[tuple[str, ...]] = (
    # field 0, "Type de BAL", is the mailbox's kind and lives on the mailbox
    "address_as_written",
    "pp_id_type",
    "pp_id",
    "practitioner_id",
    "structure_id_type",
    "organisation_id",
    "service",
    "civility",
    "family_name",
    "given_name",
    "category_code",
    "category_label",
    "profession_code",
    "profession_label",
    "specialty_code",
    "specialty_label",
    "dematerialised",
    "organisation_name",
    "trade_name",
    "address_l2",
    "address_l3",
    "street_number",
    "street_number_suffix",
    "street_type",
    "street_name",
    "address_l5",
    "address_l6",
    "postcode",
    "department",
    "country",
)
"""``dir_roles`` column of each field from 1 to 30, in file order."""

PRACTITIONER_FIELDS: Final = (4, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16)
PRACTITIONER_COLUMNS: Final = (
    "national_id",
    "id_type",
    "identifier",
    "civility",
    "family_name",
    "given_name",
    "category_code",
    "category_label",
    "profession_code",
    "profession_label",
    "specialty_code",
    "specialty_label",
)
ORGANISATION_FIELDS: Final = (6, 5, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30)
ORGANISATION_COLUMNS: Final = (
    "national_id",
    "id_type",
    "name",
    "trade_name",
    "address_l2",
    "address_l3",
    "street_number",
    "street_number_suffix",
    "street_type",
    "street_name",
    "address_l5",
    "address_l6",
    "postcode",
    "department",
    "country",
)


def pick(values: Sequence[str], fields: Sequence[int]) -> tuple[str, ...]:
    return tuple(values[i] for i in fields)


_practitioner_fields = operator.itemgetter(*PRACTITIONER_FIELDS)
_organisation_fields = operator.itemgetter(*ORGANISATION_FIELDS)


def fingerprint(data: bytes) -> int:
    """A 64-bit digest as a signed integer (it fits a BIGINT column): unchanged lines and
    entities are recognised by it, so a re-import rewrites only what changed."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


@functools.lru_cache(maxsize=1024)
def _code(code: str, label: str) -> Code:
    # Few distinct codes: one value each, instead of one per role read.
    return Code(code, label)


def practitioner_from(fields: Sequence[str]) -> Practitioner:
    """A practitioner from its :data:`PRACTITIONER_COLUMNS` values."""
    (
        national_id,
        id_type,
        identifier,
        civility,
        family,
        given,
        category,
        category_label,
        profession,
        profession_label,
        specialty,
        specialty_label,
    ) = fields
    return Practitioner(
        national_id=national_id,
        id_type=id_type,
        identifier=identifier,
        civility=civility,
        family_name=family,
        given_name=given,
        category=_code(category, category_label),
        profession=_code(profession, profession_label),
        specialty=_code(specialty, specialty_label),
    )


def organisation_from(fields: Sequence[str]) -> Organisation:
    """An organisation from its :data:`ORGANISATION_COLUMNS` values."""
    return _organisation(tuple(fields))


@functools.lru_cache(maxsize=4096)
def _organisation(fields: tuple[str, ...]) -> Organisation:
    # Many roles share a structure: search pages and exports build each one once.
    national_id, id_type, name, trade_name, *address = fields
    return Organisation(
        national_id=national_id,
        id_type=id_type,
        name=name,
        trade_name=trade_name,
        address=PostalAddress(*address),
    )


def role_from(values: Sequence[str], address: Address, kind: MailboxKind, line: int) -> Role:
    """The role a line states (``values`` are its 31 fields)."""
    practitioner = (
        practitioner_from(_practitioner_fields(values)) if values[PRACTITIONER_ID] else None
    )
    organisation = (
        organisation_from(_organisation_fields(values)) if values[ORGANISATION_ID] else None
    )
    return Role(
        mailbox=address,
        kind=kind,
        practitioner=practitioner,
        organisation=organisation,
        service=values[SERVICE],
        dematerialised=values[17] == "True",
        line=line,
    )
