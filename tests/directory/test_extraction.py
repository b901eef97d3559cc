"""The extraction reader and writer, without any database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory.extraction import COLUMNS, HEADER, format_row, read_extraction, write_extraction
from messaging.directory import ExtractionError
from messaging.types import Address, MailboxKind
from tests.directory.factories import extraction, line, org, values


def read(lines: list[bytes]) -> list[tuple[str, ...]]:
    return [row.values for row in read_extraction(lines)]


def error_of(lines: list[bytes]) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        read(lines)
    return caught.value


def test_the_header_has_the_31_columns_of_the_national_file():
    assert len(COLUMNS) == 31
    assert HEADER.startswith(b"Type de BAL|Adresse BAL|Type Identifiant PP|")
    assert HEADER.endswith("|Département structure BAL|Pays structure BAL\n".encode())


def test_a_line_gives_its_values_as_written_with_its_address_kind_and_flag():
    rows = list(read_extraction(extraction(line(address="Sophie.Martin@Medecin.MSSante.fr"))))
    assert len(rows) == 1
    row = rows[0]
    assert row.line == 2
    assert row.values[1] == "Sophie.Martin@Medecin.MSSante.fr"
    assert row.address == Address("sophie.martin", "medecin.mssante.fr")
    assert row.kind is MailboxKind.PER
    assert row.dematerialised is True
    assert row.raw == line(address="Sophie.Martin@Medecin.MSSante.fr").rstrip(b"\n")


def test_a_header_alone_is_an_empty_extraction():
    assert read([HEADER]) == []


def test_crlf_endings_a_bom_and_a_missing_last_newline_are_accepted():
    lines = [b"\xef\xbb\xbf" + HEADER.replace(b"\n", b"\r\n"), line().rstrip(b"\n")]
    assert read(lines) == [tuple(values())]


def test_an_empty_file_is_an_error_on_line_1():
    error = error_of([])
    assert (error.line, error.column, error.name) == (1, 1, "Type de BAL")
    assert "empty" in error.reason


def test_a_wrong_header_names_the_first_column_that_differs():
    header = HEADER.replace(b"Code postal structure BAL", b"Code postal")
    error = error_of([header, line()])
    assert (error.line, error.column, error.name) == (1, 29, "Code postal structure BAL")
    assert "'Code postal'" in error.reason
    assert str(error).startswith("line 1, column 29 (Code postal structure BAL): ")


def test_a_header_with_a_column_too_few_is_refused():
    header = HEADER.replace(b"|Pays structure BAL", b"")
    error = error_of([header])
    assert (error.line, error.column, error.name) == (1, 31, "Pays structure BAL")


def test_a_line_of_30_columns_is_refused_at_the_31st():
    short = b"|".join(line().rstrip(b"\n").split(b"|")[:30]) + b"\n"
    error = error_of(extraction(line(), short))
    assert (error.line, error.column, error.name) == (3, 31, "Pays structure BAL")
    assert "30 columns" in error.reason


def test_a_line_of_32_columns_is_refused_past_the_last_column():
    error = error_of(extraction(line().replace(b"\n", b"|\n")))
    assert (error.line, error.column, error.name) == (2, 32, None)
    assert str(error).startswith("line 2, column 32: ")


def test_invalid_utf8_is_refused_in_the_column_that_holds_it():
    bad = line(family="MARTIN").replace(b"MARTIN", b"MART\xc3N")
    error = error_of(extraction(line(), bad))
    assert (error.line, error.column, error.name) == (3, 10, "Nom d'exercice")
    assert "UTF-8" in error.reason


def test_an_invalid_address_is_refused_with_the_reason():
    error = error_of(extraction(line(address="sophie.martin@@medecin")))
    assert (error.line, error.column, error.name) == (2, 2, "Adresse BAL")
    assert "sophie.martin@@medecin" in error.reason


@pytest.mark.parametrize("kind", ["APP", "per", "", "PAT"])
def test_only_per_and_org_lines_are_accepted(kind: str):
    error = error_of(extraction(line(kind=kind)))
    assert (error.line, error.column, error.name) == (2, 1, "Type de BAL")


@pytest.mark.parametrize("flag", ["true", "1", "", "Vrai"])
def test_dematerialisation_is_true_or_false(flag: str):
    error = error_of(extraction(line(dematerialised=flag)))
    assert (error.line, error.column, error.name) == (2, 18, "Dématérialisation")


def test_the_first_bad_line_is_reported_even_deep_in_the_file():
    lines = extraction(*[line(address=f"p{n}@medecin.mssante.fr") for n in range(400)])
    lines.append(line(address="nobody"))
    assert error_of(lines).line == 402


def test_the_writer_gives_back_the_bytes_the_reader_took():
    lines = extraction(line(), org(address="accueil@ch-rennes.mssante.fr"))
    assert b"".join(write_extraction(read(lines))) == b"".join(lines)


def test_the_writer_refuses_what_the_format_cannot_carry():
    with pytest.raises(ValueError, match="'|'"):
        format_row(values(family="MARTIN|DUPONT"))
    with pytest.raises(ValueError, match="31 expected"):
        format_row(values()[:30])


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="|\r\n"),
    max_size=12,
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["PER", "ORG"]),
            st.from_regex(
                r"[a-z][a-z0-9-]{0,5}(\.[a-z0-9-]{1,5})?@[a-z]{1,8}\.(fr|com)", fullmatch=True
            ),
            st.lists(_text, min_size=29, max_size=29),
            st.sampled_from(["True", "False"]),
        ),
        max_size=5,
    )
)
def test_reading_what_was_written_gives_the_same_values(
    rows: list[tuple[str, str, list[str], str]],
):
    written = []
    for kind, address, others, flag in rows:
        fields = [kind, address, *others]
        fields[17] = flag
        written.append(fields)
    lines = list(write_extraction(written))
    assert [list(v) for v in read(b"".join(lines).splitlines(keepends=True))] == written


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_rows_or_an_extraction_error_never_a_crash(data: bytes):
    try:
        read(HEADER.splitlines(keepends=True) + data.splitlines(keepends=True))
    except ExtractionError as exc:
        assert exc.line >= 2
