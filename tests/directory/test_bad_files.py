"""Bad files: one clear error naming the line and the column, and the directory unchanged.

Each file is good for hundreds of lines before its fault, so a partial import would show.
"""

from __future__ import annotations

import pytest

from bench.gen_extraction import generate
from directory.extraction import HEADER
from messaging.directory import Directory, ExtractionError
from tests.directory.conftest import export

GOOD = list(generate(250, seed=11))
NEXT = list(generate(250, seed=12))  # another file, all of whose lines would be changes


def corrupt(lines: list[bytes], number: int, damage: bytes) -> list[bytes]:
    """``lines`` with line ``number`` (1 is the header) replaced by ``damage``."""
    return [*lines[: number - 1], damage, *lines[number:]]


def thirty_columns(raw: bytes) -> bytes:
    return b"|".join(raw.rstrip(b"\n").split(b"|")[:30]) + b"\n"


def bad_utf8(raw: bytes) -> bytes:
    fields = raw.split(b"|")
    fields[9] = fields[9] + b"\xff"
    return b"|".join(fields)


def bad_address(raw: bytes) -> bytes:
    fields = raw.split(b"|")
    fields[1] = b"not an address"
    return b"|".join(fields)


CASES = {
    "wrong header": (
        corrupt(NEXT, 1, HEADER.replace("Prénom".encode(), b"Prenom")),
        (1, 11, "Prénom d'exercice"),
    ),
    "30-column line": (
        corrupt(NEXT, 201, thirty_columns(NEXT[200])),
        (201, 31, "Pays structure BAL"),
    ),
    "invalid UTF-8": (corrupt(NEXT, 202, bad_utf8(NEXT[201])), (202, 10, "Nom d'exercice")),
    "invalid address": (corrupt(NEXT, 203, bad_address(NEXT[202])), (203, 2, "Adresse BAL")),
    "empty file": ([], (1, 1, "Type de BAL")),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
async def test_a_bad_file_is_refused_whole_and_changes_nothing(directory: Directory, case: str):
    await directory.import_extraction(GOOD)
    before = await export(directory)
    lines, where = CASES[case]
    with pytest.raises(ExtractionError) as caught:
        await directory.import_extraction(lines)
    error = caught.value
    assert (error.line, error.column, error.name) == where
    assert str(error).startswith(f"line {where[0]}, column {where[1]} ({where[2]}): ")
    assert await export(directory) == before
    # And the directory still takes a good file afterwards.
    report = await directory.import_extraction(NEXT)
    assert report.rows == 250
    assert await export(directory) == b"".join(NEXT)
