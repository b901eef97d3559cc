"""Directory tables: mailboxes, roles, practitioners, organisations, patients, applications,
imports, and the engine-specific search table.

Revision ID: dir_0001
Revises:
Create Date: 2025-01-01

The search table is written by hand for each engine (see directory/search.py), keyed by
role id and filled by the importer with each role's field-tagged words:
- SQLite: an FTS5 table of one column, prefix indexes for 3 to 7 characters (a tag and 2 to
  6 letters), ``detail=none`` (rowids only: no phrases, no columns are ever asked for);
- PostgreSQL: the same terms, and a tsvector of tagged prefixes and words under a GIN index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dir_0001"
down_revision = None
branch_labels = None
depends_on = None

_KINDS = "kind IN ('PER', 'ORG', 'APP', 'CAB', 'PAT')"


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "dir_mailboxes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(3), nullable=False),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("liste_rouge", sa.Boolean(), nullable=False),
        _text("service"),
        _text("description"),
        _text("responsible"),
        sa.Column("preferred_rank", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_KINDS, name="dir_mailboxes_kind"),
        sa.CheckConstraint("origin IN ('extraction', 'local')", name="dir_mailboxes_origin"),
        sa.UniqueConstraint("address", name="dir_mailboxes_address_key"),
    )
    op.create_table(
        "dir_roles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mailbox_id", sa.Integer(), sa.ForeignKey("dir_mailboxes.id"), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.BigInteger(), nullable=False),
        sa.Column("indexed_hash", sa.BigInteger(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        _text("address_as_written"),
        _text("pp_id_type"),
        _text("pp_id"),
        _text("practitioner_id", nullable=True),
        _text("structure_id_type"),
        _text("organisation_id", nullable=True),
        _text("service"),
        _text("civility"),
        _text("family_name"),
        _text("given_name"),
        _text("category_code"),
        _text("category_label"),
        _text("profession_code"),
        _text("profession_label"),
        _text("specialty_code"),
        _text("specialty_label"),
        sa.Column("dematerialised", sa.Boolean(), nullable=False),
        _text("organisation_name"),
        _text("trade_name"),
        _text("address_l2"),
        _text("address_l3"),
        _text("street_number"),
        _text("street_number_suffix"),
        _text("street_type"),
        _text("street_name"),
        _text("address_l5"),
        _text("address_l6"),
        _text("postcode"),
        _text("department"),
        _text("country"),
        sa.UniqueConstraint("mailbox_id", "occurrence", name="dir_roles_line_key"),
    )
    op.create_index("dir_roles_ordinal", "dir_roles", ["ordinal"])
    op.create_index("dir_roles_practitioner", "dir_roles", ["practitioner_id"])
    op.create_index("dir_roles_organisation", "dir_roles", ["organisation_id"])
    op.create_table(
        "dir_practitioners",
        _text("national_id"),
        _text("id_type"),
        _text("identifier"),
        _text("civility"),
        _text("family_name"),
        _text("given_name"),
        _text("category_code"),
        _text("category_label"),
        _text("profession_code"),
        _text("profession_label"),
        _text("specialty_code"),
        _text("specialty_label"),
        sa.PrimaryKeyConstraint("national_id"),
    )
    op.create_table(
        "dir_organisations",
        _text("national_id"),
        _text("id_type"),
        _text("name"),
        _text("trade_name"),
        _text("address_l2"),
        _text("address_l3"),
        _text("street_number"),
        _text("street_number_suffix"),
        _text("street_type"),
        _text("street_name"),
        _text("address_l5"),
        _text("address_l6"),
        _text("postcode"),
        _text("department"),
        _text("country"),
        sa.PrimaryKeyConstraint("national_id"),
    )
    op.create_table(
        "dir_patients",
        sa.Column("mailbox_id", sa.Integer(), sa.ForeignKey("dir_mailboxes.id"), nullable=False),
        sa.Column("ins", sa.String(15), nullable=False),
        _text("birth_name"),
        _text("first_given_name"),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("minor", sa.Boolean(), nullable=False),
        sa.Column("treating_doctor", sa.String(320), nullable=True),
        sa.PrimaryKeyConstraint("mailbox_id"),
        sa.UniqueConstraint("ins", name="dir_patients_ins_key"),
        sa.CheckConstraint("sex IN ('M', 'F')", name="dir_patients_sex"),
    )
    op.create_table(
        "dir_applications",
        sa.Column("mailbox_id", sa.Integer(), sa.ForeignKey("dir_mailboxes.id"), nullable=False),
        _text("name"),
        _text("category"),
        sa.Column("referenced", sa.Boolean(), nullable=False),
        _text("organisation_id"),
        sa.PrimaryKeyConstraint("mailbox_id"),
    )
    op.create_table(
        "dir_imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("retired", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Rows stay small: the vector is only read through its index, so it lives out of
        # line (EXTERNAL past 128 bytes), while the terms the tiers test stay in the row.
        op.execute(
            """
            CREATE TABLE dir_role_search (
                role_id integer PRIMARY KEY,
                terms text NOT NULL,
                document tsvector NOT NULL
            ) WITH (toast_tuple_target = 128)
            """
        )
        op.execute("ALTER TABLE dir_role_search ALTER COLUMN terms SET STORAGE PLAIN")
        op.execute("ALTER TABLE dir_role_search ALTER COLUMN document SET STORAGE EXTERNAL")
        op.execute("CREATE INDEX dir_role_search_document ON dir_role_search USING gin (document)")
    else:
        op.execute(
            """
            CREATE VIRTUAL TABLE dir_role_search USING fts5(
                terms,
                tokenize = 'unicode61 remove_diacritics 0',
                prefix = '3 4 5 6 7',
                detail = none
            )
            """
        )


def downgrade() -> None:
    op.execute("DROP TABLE dir_role_search")
    for table in (
        "dir_imports",
        "dir_applications",
        "dir_patients",
        "dir_organisations",
        "dir_practitioners",
        "dir_roles",
        "dir_mailboxes",
    ):
        op.drop_table(table)
