"""``pli directory``: the commands on their own, with a parser built here."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from directory import InMemoryDirectory, SqlDirectory
from messaging.directory import Directory
from pli.cli_directory import FAILED, OK, USAGE, register
from tests.directory.factories import extraction, file_bytes, line, org

LINES = extraction(
    line(),
    org(address="accueil@ch-rennes.mssante.fr", service="Accueil"),
    line(address="paul.martin@medecin.mssante.fr", given="Paul", national_id="810000000009"),
)


class Pli:
    """A ``pli`` parser with the directory commands, over one directory."""

    def __init__(self, url: str | None) -> None:
        self.memory = InMemoryDirectory()

        async def open_directory(_args: object) -> Directory:
            return self.memory if url is None else await SqlDirectory.open(url)

        self.parser = argparse.ArgumentParser(prog="pli")
        register(self.parser.add_subparsers(dest="command", required=True), open_directory)

    def __call__(self, *argv: str) -> int:
        args = self.parser.parse_args(["directory", *argv])
        status: int = args.handler(args)
        return status


@pytest.fixture(params=["memory", "sqlite"])
def pli(request: pytest.FixtureRequest, tmp_path: Path) -> Pli:
    return Pli(None if request.param == "memory" else f"sqlite:///{tmp_path / 'pli.db'}")


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "extraction.csv"
    path.write_bytes(file_bytes(LINES))
    return path


def test_import_applies_the_file_and_says_what_changed(pli: Pli, good_file: Path, capsys):
    assert pli("import", str(good_file)) == OK
    assert capsys.readouterr().out == ("3 lines: 3 added, 0 updated, 0 unchanged, 0 retired\n")
    assert pli("import", str(good_file)) == OK
    assert "3 unchanged" in capsys.readouterr().out


def test_a_bad_file_names_line_and_column_and_imports_nothing(pli: Pli, tmp_path: Path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(file_bytes([*LINES, line(address="not-an-address")]))
    assert pli("import", str(bad)) == FAILED
    err = capsys.readouterr().err
    assert f"pli directory import: {bad}: line 5, column 2 (Adresse BAL): " in err
    assert "nothing was imported" in err
    assert pli("export") == OK
    assert capsys.readouterr().out == file_bytes(extraction()).decode()


def test_a_missing_file_is_a_usage_error(pli: Pli, tmp_path: Path, capsys):
    assert pli("import", str(tmp_path / "absent.csv")) == USAGE
    assert "absent.csv" in capsys.readouterr().err


def test_export_writes_the_extraction_to_standard_output_or_a_file(
    pli: Pli, good_file: Path, tmp_path: Path, capsysbinary
):
    pli("import", str(good_file))
    capsysbinary.readouterr()
    assert pli("export") == OK
    assert capsysbinary.readouterr().out == good_file.read_bytes()
    target = tmp_path / "out" / "export.csv"
    target.parent.mkdir()
    assert pli("export", "-o", str(target)) == OK
    assert target.read_bytes() == good_file.read_bytes()
    assert b"3 lines written" in capsysbinary.readouterr().err
    assert [p.name for p in target.parent.iterdir()] == ["export.csv"]


def test_search_prints_one_line_per_hit_when_piped(pli: Pli, good_file: Path, capsys):
    pli("import", str(good_file))
    capsys.readouterr()
    assert pli("search", "martin", "--city", "rennes") == OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].split("\t") == [
        "sophie.martin@medecin.mssante.fr",
        "DR Sophie MARTIN",
        "Médecin · Cardiologie et maladies vasculaires (SM)",
        "CH Rennes",
        "RENNES CEDEX 9",
    ]
    assert len(out) == 2
    assert pli("search", "--limit", "1", "martin") == OK
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_a_search_without_match_fails_and_a_bad_one_is_a_usage_error(
    pli: Pli, good_file: Path, capsys
):
    pli("import", str(good_file))
    assert pli("search", "nobody") == FAILED
    assert "no match" in capsys.readouterr().err
    assert pli("search", "m") == USAGE
    assert "at least 2 characters" in capsys.readouterr().err
    assert pli("search", "martin", "--limit", "500") == USAGE


def test_show_prints_a_mailbox_and_its_roles(pli: Pli, good_file: Path, capsys):
    pli("import", str(good_file))
    capsys.readouterr()
    assert pli("show", "Sophie.Martin@medecin.mssante.fr") == OK
    out = capsys.readouterr().out
    assert out.startswith("sophie.martin@medecin.mssante.fr  (PER)\n")
    assert "  line 2:\n    DR Sophie MARTIN  (idNatPS 810001234567)\n" in out
    assert "CENTRE HOSPITALIER DE RENNES (CH Rennes)  (structure 1750712184)" in out
    assert "2 R HENRI LE GUILLOUX" in out and "35033 RENNES CEDEX 9" in out


def test_show_of_an_unknown_or_malformed_address(pli: Pli, capsys):
    assert pli("show", "nobody@pli.test") == FAILED
    assert "nobody@pli.test is not in the directory" in capsys.readouterr().err
    assert pli("show", "not an address") == USAGE


def test_the_commands_need_a_subcommand(pli: Pli):
    with pytest.raises(SystemExit) as exited:
        pli()
    assert exited.value.code == 2
