"""Importing extractions: what lands, what a re-import changes, what retires — on every
implementation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from messaging.directory import (
    Directory,
    ExtractionError,
    ImportProgress,
    ImportReport,
    MailboxEntry,
)
from messaging.types import Address, MailboxKind
from tests.directory.conftest import export
from tests.directory.factories import extraction, line, org

SOPHIE = Address("sophie.martin", "medecin.mssante.fr")
ACCUEIL = Address("accueil", "ch-rennes.mssante.fr")


def report(rows: int, added: int = 0, updated: int = 0, retired: int = 0, dups: int = 0):
    return ImportReport(rows, added, updated, rows - added - updated, retired, dups)


async def test_an_import_creates_mailboxes_roles_practitioners_and_organisations(
    directory: Directory,
):
    result = await directory.import_extraction(
        extraction(line(), org(address=str(ACCUEIL), service="Accueil"))
    )
    assert result == report(2, added=2)

    sophie = await directory.get_mailbox(SOPHIE)
    assert sophie is not None
    assert (sophie.kind, sophie.liste_rouge, sophie.retired) == (MailboxKind.PER, False, False)
    (role,) = sophie.roles
    assert role.line == 2 and role.dematerialised
    assert role.practitioner is not None and role.organisation is not None
    assert role.practitioner.display_name == "DR Sophie MARTIN"
    assert role.practitioner.rpps == "10001234567" and role.practitioner.adeli is None
    assert role.practitioner.specialty.label == "Cardiologie et maladies vasculaires (SM)"
    assert role.organisation.finess == "750712184"
    assert role.organisation.address.city == "RENNES CEDEX 9"

    accueil = await directory.get_mailbox(ACCUEIL)
    assert accueil is not None and accueil.kind is MailboxKind.ORG
    assert accueil.service == "Accueil"
    assert accueil.roles[0].practitioner is None

    practitioner = await directory.get_practitioner("810001234567")
    assert practitioner == role.practitioner
    organisation = await directory.get_organisation("1750712184")
    assert organisation is not None and organisation.trade_name == "CH Rennes"
    assert await directory.get_practitioner("899999999999") is None
    assert await directory.get_mailbox(Address("nobody", "medecin.mssante.fr")) is None


async def test_importing_the_same_file_again_changes_nothing(directory: Directory):
    lines = extraction(line(), org(address=str(ACCUEIL)))
    await directory.import_extraction(lines)
    before = await export(directory)
    assert await directory.import_extraction(lines) == report(2)
    assert await export(directory) == before


async def test_a_changed_line_is_updated_and_counted(directory: Directory):
    await directory.import_extraction(extraction(line(), org(address=str(ACCUEIL))))
    result = await directory.import_extraction(
        extraction(line(specialty="Cardiologie (SM)"), org(address=str(ACCUEIL)))
    )
    assert result == report(2, updated=1)
    sophie = await directory.get_mailbox(SOPHIE)
    assert sophie is not None and sophie.roles[0].practitioner is not None
    assert sophie.roles[0].practitioner.specialty.label == "Cardiologie (SM)"


async def test_lines_missing_from_a_new_file_are_retired_not_deleted(directory: Directory):
    await directory.import_extraction(extraction(line(), org(address=str(ACCUEIL))))
    result = await directory.import_extraction(extraction(org(address=str(ACCUEIL))))
    assert result == report(1, retired=1)
    sophie = await directory.get_mailbox(SOPHIE)
    assert sophie is not None
    assert sophie.retired and sophie.retired_at is not None
    assert sophie.roles == ()
    assert b"sophie.martin" not in await export(directory)
    # Its practitioner is still known (FHIR reads of old references keep working).
    assert await directory.get_practitioner("810001234567") is not None


async def test_a_retired_mailbox_comes_back_when_a_file_names_it_again(directory: Directory):
    await directory.import_extraction(extraction(line()))
    await directory.import_extraction(extraction(org(address=str(ACCUEIL))))
    result = await directory.import_extraction(extraction(line(), org(address=str(ACCUEIL))))
    assert result == report(2, updated=1)
    sophie = await directory.get_mailbox(SOPHIE)
    assert sophie is not None and not sophie.retired and len(sophie.roles) == 1


async def test_an_empty_extraction_retires_everything_it_had_created(directory: Directory):
    await directory.import_extraction(extraction(line(), org(address=str(ACCUEIL))))
    assert await directory.import_extraction(extraction()) == report(0, retired=2)
    for address in (SOPHIE, ACCUEIL):
        entry = await directory.get_mailbox(address)
        assert entry is not None and entry.retired


async def test_a_mailbox_added_locally_is_never_retired_by_an_import(directory: Directory):
    local = Address("cabinet", "pli.test")
    await directory.add_mailbox(MailboxEntry(local, MailboxKind.CAB, description="Cabinet"))
    await directory.import_extraction(extraction(line()))
    await directory.import_extraction(extraction())
    entry = await directory.get_mailbox(local)
    assert entry is not None and not entry.retired and entry.description == "Cabinet"


async def test_a_repeated_address_is_one_mailbox_with_a_role_per_line(directory: Directory):
    lines = extraction(
        line(structure="1750712184"),
        org(address=str(ACCUEIL)),
        line(structure="1350000001", organisation="CLINIQUE SAINT-LUC", trade_name=""),
    )
    result = await directory.import_extraction(lines)
    assert result == report(3, added=3, dups=1)
    sophie = await directory.get_mailbox(SOPHIE)
    assert sophie is not None
    assert [role.line for role in sophie.roles] == [2, 4]
    assert [r.organisation.name for r in sophie.roles if r.organisation] == [
        "CENTRE HOSPITALIER DE RENNES",
        "CLINIQUE SAINT-LUC",
    ]
    assert await export(directory) == b"".join(lines)
    # Dropping the second line retires that role only.
    result = await directory.import_extraction(lines[:3])
    assert result == report(2, retired=1)
    sophie = await directory.get_mailbox(SOPHIE)
    assert sophie is not None and not sophie.retired and len(sophie.roles) == 1


async def test_the_last_line_naming_a_practitioner_gives_its_values(directory: Directory):
    lines = extraction(
        line(specialty="Cardiologie (SM)"),
        line(address="s.martin@ch-rennes.mssante.fr", specialty="Médecine interne (SM)"),
    )
    await directory.import_extraction(lines)
    practitioner = await directory.get_practitioner("810001234567")
    assert practitioner is not None
    assert practitioner.specialty.label == "Médecine interne (SM)"
    # Each role keeps what its own line says.
    sophie = await directory.get_mailbox(SOPHIE)
    assert sophie is not None and sophie.roles[0].practitioner is not None
    assert sophie.roles[0].practitioner.specialty.label == "Cardiologie (SM)"


async def test_a_mailbox_cannot_change_type_from_one_file_to_the_next(directory: Directory):
    await directory.import_extraction(extraction(line()))
    before = await export(directory)
    with pytest.raises(ExtractionError) as caught:
        await directory.import_extraction(
            extraction(org(address="x@ch.fr"), org(address=str(SOPHIE)))
        )
    error = caught.value
    assert (error.line, error.column, error.name) == (3, 1, "Type de BAL")
    assert "never changes" in error.reason
    assert await export(directory) == before
    assert await directory.get_mailbox(Address("x", "ch.fr")) is None


async def test_a_repeated_address_cannot_change_type_within_a_file(directory: Directory):
    with pytest.raises(ExtractionError) as caught:
        await directory.import_extraction(
            extraction(line(), org(address="x@ch.fr"), org(address=str(SOPHIE)))
        )
    error = caught.value
    assert (error.line, error.column) == (4, 1)
    assert "line 2" in error.reason


async def test_an_address_taken_by_a_patient_or_application_cannot_be_imported(
    directory: Directory,
):
    from messaging.directory import Application

    await directory.add_application(Application(ACCUEIL, "Résultats"))
    with pytest.raises(ExtractionError, match="APP mailbox"):
        await directory.import_extraction(extraction(org(address=str(ACCUEIL))))


async def test_the_import_reports_its_progress(directory: Directory):
    seen: list[ImportProgress] = []
    lines = extraction(*[line(address=f"p{n}@medecin.mssante.fr") for n in range(12)])
    await directory.import_extraction(lines, progress=seen.append)
    assert seen[-1].phase == "done" and seen[-1].lines == 12
    assert "merging" in {p.phase for p in seen}


async def test_liste_rouge_survives_a_re_import(directory: Directory):
    lines = extraction(line())
    await directory.import_extraction(lines)
    sophie = await directory.get_mailbox(SOPHIE)
    assert sophie is not None
    await directory.update_mailbox(replace(sophie, liste_rouge=True))
    await directory.import_extraction(lines)
    again = await directory.get_mailbox(SOPHIE)
    assert again is not None and again.liste_rouge
