"""The directory's private tables (SQLAlchemy 2 declarative, on :class:`directory.db.Base`).

Every name starts with ``dir_``: the directory shares its database with the mailbox store.
The migration ``dir_0001`` creates exactly these, plus the engine-specific search table
``dir_role_search`` (FTS5 on SQLite, a ``tsvector`` table on PostgreSQL) that no model here
describes.

- ``dir_mailboxes``: one per address; ``kind`` never changes. ``origin`` says who created
  it: ``extraction`` (an import; a later import retires it when no line names it any more)
  or ``local`` (the API; imports never retire it).
- ``dir_roles``: one per line of the extraction, keyed by (mailbox, occurrence): the n-th
  line of the file with that address. The 30 fields after the type are stored as written,
  so export gives back the same bytes; ``ordinal`` is the line number in the file last
  imported (the export order); ``row_hash`` fingerprints the line; ``indexed_hash`` is the
  fingerprint of the line as the search table holds it (NULL when it is not searchable).
- ``dir_practitioners`` / ``dir_organisations``: consolidated from the roles, the last
  line naming them winning. Roles refer to them by value (``practitioner_id``,
  ``organisation_id``, NULL when the line has none): no foreign key, so a bulk import
  does not pay a lookup per line for a link it builds itself.
- ``dir_patients`` and ``dir_applications`` extend a PAT or APP mailbox.
- ``dir_imports`` keeps a line per completed import.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from directory.db import Base

__all__ = [
    "MailboxRow",
    "RoleRow",
    "PractitionerRow",
    "OrganisationRow",
    "PatientRow",
    "ApplicationRow",
    "ImportRow",
]

_KINDS = "kind IN ('PER', 'ORG', 'APP', 'CAB', 'PAT')"


class MailboxRow(Base):
    __tablename__ = "dir_mailboxes"
    __table_args__ = (
        CheckConstraint(_KINDS, name="dir_mailboxes_kind"),
        CheckConstraint("origin IN ('extraction', 'local')", name="dir_mailboxes_origin"),
        UniqueConstraint("address", name="dir_mailboxes_address_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(3))
    origin: Mapped[str] = mapped_column(String(10))
    liste_rouge: Mapped[bool] = mapped_column(Boolean, default=False)
    service: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    responsible: Mapped[str] = mapped_column(Text, default="")
    preferred_rank: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RoleRow(Base):
    __tablename__ = "dir_roles"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "occurrence", name="dir_roles_line_key"),
        Index("dir_roles_ordinal", "ordinal"),
        Index("dir_roles_practitioner", "practitioner_id"),
        Index("dir_roles_organisation", "organisation_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("dir_mailboxes.id"))
    occurrence: Mapped[int] = mapped_column(Integer)
    ordinal: Mapped[int] = mapped_column(Integer)
    row_hash: Mapped[int] = mapped_column(BigInteger)
    indexed_hash: Mapped[int | None] = mapped_column(BigInteger)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The fields of the line, as written (see directory.model.ROLE_COLUMNS).
    address_as_written: Mapped[str] = mapped_column(Text)
    pp_id_type: Mapped[str] = mapped_column(Text)
    pp_id: Mapped[str] = mapped_column(Text)
    practitioner_id: Mapped[str | None] = mapped_column(Text)
    structure_id_type: Mapped[str] = mapped_column(Text)
    organisation_id: Mapped[str | None] = mapped_column(Text)
    service: Mapped[str] = mapped_column(Text)
    civility: Mapped[str] = mapped_column(Text)
    family_name: Mapped[str] = mapped_column(Text)
    given_name: Mapped[str] = mapped_column(Text)
    category_code: Mapped[str] = mapped_column(Text)
    category_label: Mapped[str] = mapped_column(Text)
    profession_code: Mapped[str] = mapped_column(Text)
    profession_label: Mapped[str] = mapped_column(Text)
    specialty_code: Mapped[str] = mapped_column(Text)
    specialty_label: Mapped[str] = mapped_column(Text)
    dematerialised: Mapped[bool] = mapped_column(Boolean)
    organisation_name: Mapped[str] = mapped_column(Text)
    trade_name: Mapped[str] = mapped_column(Text)
    address_l2: Mapped[str] = mapped_column(Text)
    address_l3: Mapped[str] = mapped_column(Text)
    street_number: Mapped[str] = mapped_column(Text)
    street_number_suffix: Mapped[str] = mapped_column(Text)
    street_type: Mapped[str] = mapped_column(Text)
    street_name: Mapped[str] = mapped_column(Text)
    address_l5: Mapped[str] = mapped_column(Text)
    address_l6: Mapped[str] = mapped_column(Text)
    postcode: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(Text)
    country: Mapped[str] = mapped_column(Text)


class PractitionerRow(Base):
    __tablename__ = "dir_practitioners"

    national_id: Mapped[str] = mapped_column(Text, primary_key=True)
    id_type: Mapped[str] = mapped_column(Text)
    identifier: Mapped[str] = mapped_column(Text)
    civility: Mapped[str] = mapped_column(Text)
    family_name: Mapped[str] = mapped_column(Text)
    given_name: Mapped[str] = mapped_column(Text)
    category_code: Mapped[str] = mapped_column(Text)
    category_label: Mapped[str] = mapped_column(Text)
    profession_code: Mapped[str] = mapped_column(Text)
    profession_label: Mapped[str] = mapped_column(Text)
    specialty_code: Mapped[str] = mapped_column(Text)
    specialty_label: Mapped[str] = mapped_column(Text)


class OrganisationRow(Base):
    __tablename__ = "dir_organisations"

    national_id: Mapped[str] = mapped_column(Text, primary_key=True)
    id_type: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    trade_name: Mapped[str] = mapped_column(Text)
    address_l2: Mapped[str] = mapped_column(Text)
    address_l3: Mapped[str] = mapped_column(Text)
    street_number: Mapped[str] = mapped_column(Text)
    street_number_suffix: Mapped[str] = mapped_column(Text)
    street_type: Mapped[str] = mapped_column(Text)
    street_name: Mapped[str] = mapped_column(Text)
    address_l5: Mapped[str] = mapped_column(Text)
    address_l6: Mapped[str] = mapped_column(Text)
    postcode: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(Text)
    country: Mapped[str] = mapped_column(Text)


class PatientRow(Base):
    __tablename__ = "dir_patients"
    __table_args__ = (
        CheckConstraint("sex IN ('M', 'F')", name="dir_patients_sex"),
        UniqueConstraint("ins", name="dir_patients_ins_key"),
    )

    mailbox_id: Mapped[int] = mapped_column(ForeignKey("dir_mailboxes.id"), primary_key=True)
    ins: Mapped[str] = mapped_column(String(15))
    birth_name: Mapped[str] = mapped_column(Text)
    first_given_name: Mapped[str] = mapped_column(Text)
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    minor: Mapped[bool] = mapped_column(Boolean)
    treating_doctor: Mapped[str | None] = mapped_column(String(320))


class ApplicationRow(Base):
    __tablename__ = "dir_applications"

    mailbox_id: Mapped[int] = mapped_column(ForeignKey("dir_mailboxes.id"), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    referenced: Mapped[bool] = mapped_column(Boolean)
    organisation_id: Mapped[str] = mapped_column(Text)


class ImportRow(Base):
    __tablename__ = "dir_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rows: Mapped[int] = mapped_column(Integer)
    added: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    retired: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
