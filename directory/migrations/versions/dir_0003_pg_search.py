"""PostgreSQL: a family name × city index for searches on both.

Revision ID: dir_0003
Revises: dir_0002
Create Date: 2025-01-03

``dir_role_pairs`` holds, for each role of ``dir_role_search``, one row per family name word
and city word of at least 3 letters, keyed by the first 3 letters of each
(``marpar | martin | paris | role``). ``name=mar, city=par`` is then one range of one
B-tree (byte order, ``COLLATE "C"``) that holds exactly the matches, where the GIN index
intersects two posting lists of tens of thousands of entries. The importer keeps it in step
with ``dir_role_search`` (see directory/search.py, ``name_city_pairs``); the rows of the
roles already indexed are computed here from their terms, in SQL, the same way.

SQLite needs nothing: FTS5 answers these searches in time.
"""

from __future__ import annotations

from alembic import op

revision = "dir_0003"
down_revision = "dir_0002"
branch_labels = None
depends_on = None

PAIRS_INDEX = (
    "CREATE INDEX dir_role_pairs_key ON dir_role_pairs (key, name_word, city_word, role_id)"
)
ROLE_INDEX = "CREATE INDEX dir_role_pairs_role ON dir_role_pairs (role_id)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE TABLE dir_role_pairs (
            key text COLLATE "C" NOT NULL,
            name_word text COLLATE "C" NOT NULL,
            city_word text COLLATE "C" NOT NULL,
            role_id integer NOT NULL
        )
        """
    )
    op.execute(
        """
        INSERT INTO dir_role_pairs (key, name_word, city_word, role_id)
        SELECT DISTINCT left(n.word, 3) || left(c.word, 3), n.word, c.word, s.role_id
        FROM dir_role_search s
        CROSS JOIN LATERAL (
            SELECT substr(t, 2) AS word FROM unnest(string_to_array(s.terms, ' ')) t
            WHERE left(t, 1) = 'n' AND char_length(t) > 3) n
        CROSS JOIN LATERAL (
            SELECT substr(t, 2) AS word FROM unnest(string_to_array(s.terms, ' ')) t
            WHERE left(t, 1) = 'c' AND char_length(t) > 3) c
        """
    )
    op.execute(PAIRS_INDEX)
    op.execute(ROLE_INDEX)
    op.execute("ANALYZE dir_role_pairs")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE dir_role_pairs")
