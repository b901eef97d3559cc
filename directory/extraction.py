"""The "Extraction Correspondance MSSanté" file: a strict, streamed reader and its writer.

Format (DOMAIN.md, "Directory exchange formats"): UTF-8, one header line, then one line per
mailbox role, 31 fields separated by ``|``, no quoting. Only ``PER`` and ``ORG`` lines;
``Dématérialisation`` is ``True`` or ``False``.

Implementation notes, the invariants both directions keep:

- The reader never holds more than one line: it takes any iterable of binary lines (a file
  opened ``rb``) and yields :class:`ExtractionRow` values one at a time.
- It stops at the first problem with an :class:`~messaging.directory.ExtractionError`
  naming the line (the header is line 1) and the column (fields count from 1, with the
  header's name of the column). Checked: the header, word for word; 31 fields on every
  line; UTF-8; ``Type de BAL``; ``Adresse BAL`` through :meth:`Address.parse`;
  ``Dématérialisation``. An empty file is an error; a header alone is a valid, empty
  extraction.
- Lines end with ``\\n``; a ``\\r\\n`` ending and a UTF-8 byte order mark before the
  header are accepted and dropped. The writer always writes ``\\n`` and no BOM, so for
  such files the round trip is exact up to those bytes.
- Values are kept exactly as written (no trimming, no case change): the writer gives back
  the same bytes, which is what makes ``export(import(file)) == file`` hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final, NamedTuple

from messaging.directory import ExtractionError
from messaging.errors import InvalidAddress
from messaging.types import Address, MailboxKind

__all__ = [
    "COLUMNS",
    "HEADER",
    "ExtractionRow",
    "read_extraction",
    "format_row",
    "write_extraction",
    "TYPE",
    "ADDRESS",
    "DEMATERIALISED",
]

COLUMNS: Final[tuple[str, ...]] = (
    "Type de BAL",
    "Adresse BAL",
    "Type Identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Type identifiant structure",
    "Identification Structure",
    "Service de rattachement",
    "Civilité d'exercice",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Catégorie profession",
    "Libellé de catégorie profession",
    "Code Profession",
    "Libellé Profession",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Dématérialisation",
    "Raison Sociale structure BAL",
    "Enseigne commerciale structure BAL",
    "L2COMPLEMENTLOCALISATION structure BAL",
    "L3COMPLEMENTDISTRIBUTION structure BAL",
    "L4NUMEROVOIE structure BAL",
    "L4COMPLEMENTNUMEROVOIE structure BAL",
    "NL4TYPEVOIE structure BAL",
    "L4LIBELLEVOIE structure BAL",
    "L5LIEUDITMENTION structure BAL",
    "L6LIGNEACHEMINEMENT structure BAL",
    "Code postal structure BAL",
    "Département structure BAL",
    "Pays structure BAL",
)
HEADER: Final[bytes] = "|".join(COLUMNS).encode() + b"\n"

# Indexes of the columns the reader checks.
TYPE: Final = 0
ADDRESS: Final = 1
DEMATERIALISED: Final = 17

_KINDS: Final = {"PER": MailboxKind.PER, "ORG": MailboxKind.ORG}
_BOOLEANS: Final = {"True": True, "False": False}
_BOM: Final = b"\xef\xbb\xbf"


class ExtractionRow(NamedTuple):
    """One checked line: its number, its bytes (without the line ending), its 31 values."""

    line: int
    raw: bytes
    values: tuple[str, ...]
    address: Address
    kind: MailboxKind
    dematerialised: bool


def _error(line: int, column: int, reason: str) -> ExtractionError:
    name = COLUMNS[column - 1] if column <= len(COLUMNS) else None
    return ExtractionError(line, column, name, reason)


def _decode(raw: bytes, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = raw.count(b"|", 0, exc.start) + 1
        raise _error(
            number, column, f"invalid UTF-8 (byte {raw[exc.start]:#04x} at byte {exc.start + 1})"
        ) from None


def _fields(raw: bytes, number: int) -> list[str]:
    fields = _decode(raw, number).split("|")
    count = len(fields)
    if count < len(COLUMNS):
        raise _error(
            number,
            count + 1,
            f"missing: the line has {count} columns, {len(COLUMNS)} expected",
        )
    if count > len(COLUMNS):
        raise _error(
            number,
            len(COLUMNS) + 1,
            f"unexpected: the line has {count} columns, {len(COLUMNS)} expected",
        )
    return fields


def _strip_ending(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


def _check_header(line: bytes) -> None:
    raw = _strip_ending(line.removeprefix(_BOM))
    fields = _decode(raw, 1).split("|")
    for index, expected in enumerate(COLUMNS):
        if index >= len(fields):
            raise _error(1, index + 1, f"the header lacks {expected!r}")
        if fields[index] != expected:
            raise _error(1, index + 1, f"the header has {fields[index]!r}, expected {expected!r}")
    if len(fields) > len(COLUMNS):
        raise _error(
            1, len(COLUMNS) + 1, f"the header has {len(fields)} columns, {len(COLUMNS)} expected"
        )


def read_extraction(lines: Iterable[bytes]) -> Iterator[ExtractionRow]:
    """Yield the checked rows of an extraction; raise ``ExtractionError`` at the first fault."""
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None or first == b"":
        raise _error(1, 1, "the file is empty; an extraction starts with its header line")
    _check_header(first)
    number = 1
    for line in iterator:
        number += 1
        raw = _strip_ending(line)
        values = _fields(raw, number)
        kind = _KINDS.get(values[TYPE])
        if kind is None:
            raise _error(number, TYPE + 1, f"{values[TYPE]!r} is not a mailbox type (PER or ORG)")
        try:
            address = Address.parse(values[ADDRESS])
        except InvalidAddress as exc:
            raise _error(number, ADDRESS + 1, str(exc)) from None
        dematerialised = _BOOLEANS.get(values[DEMATERIALISED])
        if dematerialised is None:
            raise _error(
                number, DEMATERIALISED + 1, f"{values[DEMATERIALISED]!r} is neither True nor False"
            )
        yield ExtractionRow(number, raw, tuple(values), address, kind, dematerialised)


def format_row(values: Sequence[str]) -> bytes:
    """One line of the file (with its ``\\n``); refuses what the format cannot carry."""
    if len(values) != len(COLUMNS):
        raise ValueError(f"{len(values)} values, {len(COLUMNS)} expected")
    for index, value in enumerate(values):
        if "|" in value or "\n" in value or "\r" in value:
            raise ValueError(f"{COLUMNS[index]!r} holds a '|' or a line break: {value!r}")
    return "|".join(values).encode() + b"\n"


def write_extraction(rows: Iterable[Sequence[str]]) -> Iterator[bytes]:
    """The header, then one line per row."""
    yield HEADER
    for values in rows:
        yield format_row(values)
