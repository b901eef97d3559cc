"""Directory search: normalisation, search documents, queries, tiers, and index terms.

**Normalisation** happens here, in Python, once for every engine: NFKD, combining marks
dropped, ligatures spelled out (œ→oe), lower case, every run of other characters one space.
``"Hélène MARTIN-DUPONT"`` becomes ``"helene martin dupont"``. A word with an apostrophe is
indexed split and joined (``N'DIAYE`` → ``n diaye ndiaye``) and a query joins it
(``n'dia`` → ``ndia``), so both ways of typing find it. Queries go through the same
function, so case and accents never matter and the engines only ever see plain words.

**Documents**: each live, visible role has nine normalised fields (:data:`FIELDS`).

**Queries** are lists of *terms*: word prefixes of at least :data:`MIN_PREFIX` characters,
each for any field (free text) or for one. Every term must match.

**Ranking** is by tier, then by role id (directory order), which keeps pages stable:
tier 1 when a free-text term starts a word of the family name, 2 when one starts a word of
the given name or the organisation, 3 otherwise. Tiers are cheap to compute from an index,
unlike bm25 or ts_rank, whose cost grows with every match (tens of milliseconds for a
three-letter prefix over 535,000 roles); tiers put the likely person first all the same.

**Index terms**: both engines index each word *tagged with its field* (:data:`TAGS`:
``n`` family name, ``g`` given name, ``o`` organisation, ``c`` city…), so that a prefix
in one field reads that field's postings only: ``name=le`` does not wade through every
``le`` of every street. A free-text term is the OR of its eight tagged forms.

- *SQLite*: an FTS5 table of one column, ``terms`` (``nmartin gsophie cparis …``), with
  prefix indexes for 3 to 7 characters (tag and 2 to 6 letters). A term is ``"nmar"*``;
  each tier is its own ``MATCH`` read in rowid order with a ``LIMIT``, so FTS5 stops early.
- *PostgreSQL*: a ``tsvector`` of *lexemes* under a GIN index: every word's prefixes of 2
  to 6 letters and the whole word, tagged with its field (``n_ma`` … ``n_martin``) and
  with ``u`` for any field (``u_mar``). A term is one *exact* lexeme (``'u_mar'``, or
  ``'n_mar'`` for ``name=``), which GIN intersects quickly, where ``'mar':*`` would make it
  merge every word that starts so; only terms longer than 6 letters use ``:*``. The tiers
  are ``LIKE`` tests on the role's terms (the SQLite ones, kept beside the vector). Heap
  rows stay small (the vector lives out of line), and the matches read are capped at
  ``COUNT_LIMIT``: past that many, the tiers order the first matches in storage order,
  not all of them — a query that broad is still being typed.
  A search on a family name and a city (``name=mar, city=par``, each at least 3 letters,
  no free text) does not use the vector: ``dir_role_pairs`` (:func:`name_city_pairs`) has a
  row per family name word × city word of a role, keyed by the first 3 letters of both
  (``marpar``), under a B-tree in byte order, so the matches are one range of it, read
  whole, exactly, and sorted by id as SQLite sorts them; its other words are ``LIKE``
  tests on the terms.
- *Memory*: :func:`tier` below, on the same documents.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from messaging.directory import InvalidQuery, PostalAddress, SearchQuery
from messaging.types import MailboxKind

__all__ = [
    "FIELDS",
    "TEXT_FIELDS",
    "MIN_PREFIX",
    "MAX_TERMS",
    "Term",
    "CompiledQuery",
    "normalise",
    "document",
    "TAGS",
    "fts_terms",
    "lexemes",
    "compile_query",
    "tier",
    "fts5_base",
    "fts5_tiers",
    "PgQuery",
    "pg_query",
    "PAIR_PREFIX",
    "name_city_pairs",
    "PairQuery",
    "pair_query",
]

FIELDS: Final = (
    "name",
    "given_name",
    "profession",
    "specialty",
    "organisation",
    "city",
    "postcode",
    "street",
    "kind",
)
"""Columns of a search document, in order (``kind`` is ``per`` or ``org``, a filter only)."""
TEXT_FIELDS: Final = FIELDS[:-1]
_NAME_FIELDS: Final = ("name",)
_SECOND_FIELDS: Final = ("given_name", "organisation")

MIN_PREFIX: Final = 2
MAX_TERMS: Final = 12
MAX_TERM_LENGTH: Final = 64
PG_PREFIX_MAX: Final = 6
"""Longest prefix PostgreSQL indexes as a lexeme; longer terms are rechecked on columns."""

_LIGATURES: Final = str.maketrans(
    {"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l", "ı": "i", "ð": "d"}
)
_APOSTROPHES: Final = re.compile(r"['’ʼ`´]")
_NON_WORD: Final = re.compile(r"[\W_]+")
_APOSTROPHE_WORD: Final = re.compile(r"\w+(?:['’ʼ`´]\w+)+")

# NL4TYPEVOIE holds a code; people type the word.
STREET_TYPES: Final = {
    "R": "rue",
    "AV": "avenue",
    "BD": "boulevard",
    "PL": "place",
    "CHE": "chemin",
    "CH": "chemin",
    "RTE": "route",
    "IMP": "impasse",
    "ALL": "allee",
    "QU": "quai",
    "QUAI": "quai",
    "CRS": "cours",
    "SQ": "square",
    "PAS": "passage",
    "FG": "faubourg",
    "LOT": "lotissement",
    "HAM": "hameau",
    "RPT": "rond point",
    "PRV": "parvis",
    "ESP": "esplanade",
    "SEN": "sente",
    "VOIE": "voie",
    "ZA": "zone d activite",
    "ZI": "zone industrielle",
}


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower().translate(_LIGATURES))
    return "".join(c for c in folded if not unicodedata.combining(c))


@functools.lru_cache(maxsize=1 << 16)
def normalise(text: str) -> str:
    """A field as the index holds it: words folded, apostrophe words split and joined.

    Cached: names, cities and labels repeat a lot in a 535,000-line file.
    """
    folded = _fold(text)
    joined = [_APOSTROPHES.sub("", w) for w in _APOSTROPHE_WORD.findall(folded)]
    return " ".join([*_NON_WORD.sub(" ", folded).split(), *joined])


def query_words(text: str) -> list[str]:
    """The words of a query: folded, apostrophes joined."""
    return _NON_WORD.sub(" ", _APOSTROPHES.sub("", _fold(text))).split()


@functools.lru_cache(maxsize=1 << 14)
def _organisation(name: str, trade_name: str, service: str) -> str:
    return normalise(f"{name} {trade_name} {service}")


@functools.lru_cache(maxsize=1 << 14)
def _place(*fields: str) -> tuple[str, str, str]:
    """City, postcode and street of the address fields 20 to 28 (L2 … code postal)."""
    l2, l3, number, suffix, street_type, street_name, l5, l6, postcode = fields
    parts = (l2, l3, number, suffix, street_type, STREET_TYPES.get(street_type, ""), street_name)
    street = " ".join(p for p in (*parts, l5) if p)
    city = PostalAddress(routing_line=l6).city
    return normalise(city), normalise(postcode), normalise(street)


def document(values: Sequence[str], kind: MailboxKind) -> tuple[str, ...]:
    """The search document of a line of the extraction, in :data:`FIELDS` order.

    The organisation and place parts are cached: every line of a structure repeats them.
    """
    return (
        normalise(values[9]),
        normalise(values[10]),
        normalise(values[14]),
        normalise(values[16]),
        _organisation(values[18], values[19], values[7]),
        *_place(*values[20:29]),
        kind.value.lower(),
    )


TAGS: Final = {
    "name": "n",
    "given_name": "g",
    "organisation": "o",
    "profession": "p",
    "specialty": "s",
    "city": "c",
    "postcode": "z",
    "street": "a",
    "kind": "k",
}
"""The tag of each field in index terms."""
_TEXT_TAGS: Final = tuple(TAGS[f] for f in TEXT_FIELDS)
_ANY: Final = "u"  # PostgreSQL's tag of a word in any text field


@functools.lru_cache(maxsize=1 << 16)
def _fts_field(tag: str, text: str) -> str:
    return " ".join(tag + word for word in text.split())


def fts_terms(doc: Sequence[str]) -> str:
    """SQLite's index terms of a document: every word with its field's tag before it."""
    return " ".join(_fts_field(TAGS[f], text) for f, text in zip(FIELDS, doc, strict=True))


@functools.lru_cache(maxsize=1 << 17)
def _pg_lexemes(token: str) -> tuple[str, ...]:
    tag, word = token[0], token[1:]
    if tag == TAGS["kind"]:
        return (f"{tag}_{word}",)
    return tuple(
        f"{lead}_{prefix}"
        for lead in (tag, _ANY)
        for prefix in {word[:k] for k in range(MIN_PREFIX, PG_PREFIX_MAX + 1)} | {word}
    )


def lexemes(terms: str) -> str:
    """PostgreSQL's lexemes of a role's terms (:func:`fts_terms`): each word's prefixes of 2
    to 6 letters and the whole word, tagged with its field and once more with ``u`` (any
    field) for free-text terms."""
    found: set[str] = set()
    for token in terms.split():
        found.update(_pg_lexemes(token))
    return " ".join(sorted(found))


@dataclass(frozen=True, slots=True)
class Term:
    """A word prefix, for any text field (``field is None``) or for one."""

    prefix: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    terms: tuple[Term, ...]
    kind: MailboxKind | None
    mailbox: str
    limit: int
    offset: int

    @property
    def free(self) -> tuple[Term, ...]:
        """The free-text terms, which decide the tiers."""
        return tuple(t for t in self.terms if t.field is None)

    @property
    def window(self) -> int:
        """How many hits of each tier a page may need."""
        return self.offset + self.limit


_QUERY_FIELDS: Final = (
    "name",
    "given_name",
    "profession",
    "specialty",
    "organisation",
    "city",
    "postcode",
    "street",
)


def compile_query(query: SearchQuery) -> CompiledQuery:
    """Normalise a query into terms; refuse an empty, too short or oversized one."""
    words = [Term(word) for word in query_words(query.text)]
    for field in _QUERY_FIELDS:
        words += [Term(word, field) for word in query_words(getattr(query, field))]
    mailbox = query.mailbox.strip().lower()
    terms = [t for t in words if len(t.prefix) >= MIN_PREFIX]
    if words and not terms and not mailbox:
        raise InvalidQuery(f"type at least {MIN_PREFIX} characters of a word")
    if not terms and not mailbox:
        raise InvalidQuery("a search needs at least one word (or part of an address)")
    if len(terms) > MAX_TERMS:
        raise InvalidQuery(f"a search takes at most {MAX_TERMS} words")
    if any(len(t.prefix) > MAX_TERM_LENGTH for t in terms):
        raise InvalidQuery(f"a search word has at most {MAX_TERM_LENGTH} characters")
    # Duplicate terms change nothing but the cost.
    unique = tuple(dict.fromkeys(terms))
    return CompiledQuery(unique, query.kind, mailbox, query.limit, query.offset)


# -- memory ----------------------------------------------------------------------------


def _starts_a_word(prefix: str, text: str) -> bool:
    return any(word.startswith(prefix) for word in text.split())


def tier(doc: Sequence[str], query: CompiledQuery) -> int | None:
    """The tier of a document for a query, or ``None`` when it does not match."""
    fields = dict(zip(FIELDS, doc, strict=True))
    if query.kind is not None and fields["kind"] != query.kind.value.lower():
        return None
    for term in query.terms:
        where = TEXT_FIELDS if term.field is None else (term.field,)
        if not any(_starts_a_word(term.prefix, fields[f]) for f in where):
            return None
    for level, group in ((1, _NAME_FIELDS), (2, _SECOND_FIELDS)):
        if any(_starts_a_word(t.prefix, fields[f]) for t in query.free for f in group):
            return level
    return 3 if query.free else 1


# -- SQLite ----------------------------------------------------------------------------


def _fts_term(term: Term) -> str:
    tags = _TEXT_TAGS if term.field is None else (TAGS[term.field],)
    forms = [f'"{tag}{term.prefix}"*' for tag in tags]
    return forms[0] if len(forms) == 1 else "(" + " OR ".join(forms) + ")"


def fts5_base(query: CompiledQuery) -> str | None:
    """The FTS5 expression every hit matches (terms are plain words, quoted anyway)."""
    parts = [_fts_term(t) for t in query.terms]
    if query.kind is not None:
        parts.append(f'"k{query.kind.value.lower()}"')
    return " AND ".join(parts) or None


def _fts_any(query: CompiledQuery, fields: Sequence[str]) -> str:
    """Some free-text term starts a word of one of ``fields``."""
    return "(" + " OR ".join(f'"{TAGS[f]}{t.prefix}"*' for t in query.free for f in fields) + ")"


def fts5_tiers(query: CompiledQuery) -> list[str]:
    """One FTS5 expression per tier, best first; they split the hits of :func:`fts5_base`."""
    base = fts5_base(query)
    if base is None:
        return []
    if not query.free:
        return [base]
    first, second = _fts_any(query, _NAME_FIELDS), _fts_any(query, _SECOND_FIELDS)
    return [
        f"{base} AND {first}",
        f"({base} AND {second}) NOT {first}",
        f"{base} NOT ({first} OR {second})",
    ]


# -- PostgreSQL ------------------------------------------------------------------------


def _pg_lexeme(tag: str, prefix: str) -> str:
    # Prefixes up to 6 letters are lexemes of their own; longer ones match whole words.
    return f"'{tag}_{prefix}'" + (":*" if len(prefix) > PG_PREFIX_MAX else "")


@dataclass(frozen=True, slots=True)
class PgQuery:
    """A PostgreSQL search: the ``tsquery`` every hit matches, and the ``LIKE`` patterns on
    a role's terms (:func:`fts_terms`) that put it in tier 1 or 2."""

    every: str
    first: tuple[str, ...]
    second: tuple[str, ...]


def pg_query(query: CompiledQuery) -> PgQuery | None:
    """The search of a query with terms (``None`` without: a mailbox part only)."""
    items = [_pg_lexeme(_ANY if t.field is None else TAGS[t.field], t.prefix) for t in query.terms]
    if query.kind is not None:
        items.append(f"'k_{query.kind.value.lower()}'")
    if not items:
        return None

    def patterns(fields: Sequence[str]) -> tuple[str, ...]:
        return tuple(f"% {TAGS[f]}{t.prefix}%" for t in query.free for f in fields)

    return PgQuery(" & ".join(items), patterns(_NAME_FIELDS), patterns(_SECOND_FIELDS))


# -- PostgreSQL: name × city pairs ------------------------------------------------------

PAIR_PREFIX: Final = 3
"""Letters of a family name word and of a city word that key a pair; shorter words have none."""


def name_city_pairs(terms: str) -> set[tuple[str, str, str]]:
    """The rows of ``dir_role_pairs`` for a role's terms (:func:`fts_terms`): one per family
    name word and city word of at least :data:`PAIR_PREFIX` letters, keyed by both their
    first letters (``("marpar", "martin", "paris")``).

    The migration ``dir_0003`` computes the same rows in SQL for roles indexed before it.
    """
    names, cities = [], []
    for token in terms.split():
        if len(token) > PAIR_PREFIX:
            if token[0] == "n":
                names.append(token[1:])
            elif token[0] == "c":
                cities.append(token[1:])
    return {
        (name[:PAIR_PREFIX] + city[:PAIR_PREFIX], name, city) for name in names for city in cities
    }


def _after(prefix: str) -> str:
    """The least string above every string that starts with ``prefix`` (code point order,
    which is UTF-8 byte order: ``COLLATE "C"``)."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are not characters
        last = 0xE000
    return prefix[:-1] + chr(last)


@dataclass(frozen=True, slots=True)
class PairQuery:
    """A search by family name and city prefixes that ``dir_role_pairs`` answers on its own:
    the key, the ranges of the two words, and ``LIKE`` patterns on a role's terms for the
    query's other terms and kind (empty for the usual ``name=, city=``)."""

    key: str
    name_range: tuple[str, str]
    city_range: tuple[str, str]
    others: tuple[str, ...]


def pair_query(query: CompiledQuery) -> PairQuery | None:
    """The pair search of a query with a family name and a city term of at least
    :data:`PAIR_PREFIX` letters, no free text (whose tiers need every field) and no mailbox
    part; ``None`` for any other query."""
    if query.free or query.mailbox:
        return None
    names = [t for t in query.terms if t.field == "name" and len(t.prefix) >= PAIR_PREFIX]
    cities = [t for t in query.terms if t.field == "city" and len(t.prefix) >= PAIR_PREFIX]
    if not names or not cities:
        return None
    # The longest prefixes read the fewest pairs; the other terms are rechecked.
    name = max(names, key=lambda t: len(t.prefix))
    city = max(cities, key=lambda t: len(t.prefix))
    others = [
        f"% {TAGS[t.field]}{t.prefix}%" for t in query.terms if t not in (name, city) and t.field
    ]
    if query.kind is not None:
        others.append(f"% k{query.kind.value.lower()} %")
    return PairQuery(
        name.prefix[:PAIR_PREFIX] + city.prefix[:PAIR_PREFIX],
        (name.prefix, _after(name.prefix)),
        (city.prefix, _after(city.prefix)),
        tuple(others),
    )
