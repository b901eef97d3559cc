"""Mailboxes made outside the extraction, patients and applications — on every
implementation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from messaging.directory import (
    Application,
    Directory,
    MailboxEntry,
    MailboxTypeChanged,
    Patient,
)
from messaging.errors import AccountExists, UnknownMailbox
from messaging.ins import Ins, QualifiedIdentity, Sex, nir_key
from messaging.types import Address, MailboxKind
from tests.directory.factories import extraction, line

CABINET = Address("cabinet.dupont", "pli.test")
DOCTOR = Address("sophie.martin", "medecin.mssante.fr")


def identity(nir: str = "2840763123456", name: str = "DURAND") -> QualifiedIdentity:
    sex = Sex.MALE if nir.startswith("1") else Sex.FEMALE
    return QualifiedIdentity(Ins(nir, nir_key(nir)), name, "Camille", date(1984, 7, 2), sex)


async def test_a_local_mailbox_keeps_what_it_was_given(directory: Directory):
    entry = MailboxEntry(
        CABINET,
        MailboxKind.CAB,
        service="Accueil",
        description="Cabinet du Dr Dupont",
        responsible="Dr Dupont",
        preferred_rank=1,
    )
    await directory.add_mailbox(entry)
    assert await directory.get_mailbox(CABINET) == entry
    with pytest.raises(AccountExists):
        await directory.add_mailbox(entry)


async def test_patients_and_applications_are_not_added_as_plain_mailboxes(directory: Directory):
    for kind in (MailboxKind.PAT, MailboxKind.APP):
        with pytest.raises(ValueError, match="add_"):
            await directory.add_mailbox(MailboxEntry(CABINET, kind))


async def test_updating_a_mailbox_keeps_its_address_and_type(directory: Directory):
    await directory.add_mailbox(MailboxEntry(CABINET, MailboxKind.CAB))
    stored = await directory.update_mailbox(
        MailboxEntry(CABINET, MailboxKind.CAB, description="Nouveau", preferred_rank=2)
    )
    assert (stored.description, stored.preferred_rank) == ("Nouveau", 2)
    with pytest.raises(MailboxTypeChanged):
        await directory.update_mailbox(MailboxEntry(CABINET, MailboxKind.ORG))
    with pytest.raises(UnknownMailbox):
        await directory.update_mailbox(MailboxEntry(Address("x", "pli.test"), MailboxKind.CAB))


async def test_an_imported_mailbox_takes_descriptive_fields_and_keeps_them(
    directory: Directory,
):
    lines = extraction(line())
    await directory.import_extraction(lines)
    entry = await directory.get_mailbox(DOCTOR)
    assert entry is not None
    await directory.update_mailbox(replace(entry, responsible="Dr Martin", preferred_rank=1))
    await directory.import_extraction(lines)
    again = await directory.get_mailbox(DOCTOR)
    assert again is not None
    assert (again.responsible, again.preferred_rank, len(again.roles)) == ("Dr Martin", 1, 1)


async def test_a_patient_is_found_by_address_and_by_ins(directory: Directory):
    patient = Patient.create(identity(), "pli.test", minor=False, treating_doctor=DOCTOR)
    await directory.add_patient(patient)
    assert await directory.get_patient(patient.address) == patient
    assert await directory.find_patient(patient.identity.ins) == patient
    mailbox = await directory.get_mailbox(patient.address)
    assert mailbox is not None and mailbox.kind is MailboxKind.PAT
    assert await directory.get_patient(DOCTOR) is None


async def test_an_ins_has_one_patient_mailbox(directory: Directory):
    await directory.add_patient(Patient.create(identity(), "pli.test"))
    with pytest.raises(AccountExists):
        await directory.add_patient(Patient.create(identity(), "pli.test"))
    with pytest.raises(AccountExists):
        await directory.add_patient(Patient.create(identity(), "other.test"))


async def test_a_minor_and_a_treating_doctor_can_be_recorded_later(directory: Directory):
    patient = Patient.create(identity(), "pli.test", minor=True)
    await directory.add_patient(patient)
    await directory.update_patient(replace(patient, minor=False, treating_doctor=DOCTOR))
    stored = await directory.get_patient(patient.address)
    assert stored is not None and (stored.minor, stored.treating_doctor) == (False, DOCTOR)
    with pytest.raises(UnknownMailbox):
        await directory.update_patient(Patient.create(identity("1840763123456"), "pli.test"))


async def test_patients_never_show_in_search_or_export(directory: Directory):
    from messaging.directory import SearchQuery
    from tests.directory.conftest import export

    await directory.add_patient(Patient.create(identity(), "pli.test"))
    assert (await directory.search(SearchQuery(text="durand"))).items == ()
    assert (await directory.search(SearchQuery(mailbox="patient"))).items == ()
    assert b"patient" not in await export(directory)


async def test_the_catalogue_lists_referenced_applications_by_name(directory: Directory):
    results = Application(
        Address("resultats", "labo.pli.test"),
        "Résultats de laboratoire",
        category="biologie",
        description="Vos résultats d'analyses",
        referenced=True,
        organisation_id="1750000001",
    )
    draft = Application(Address("rdv", "labo.pli.test"), "Prise de rendez-vous")
    agenda = Application(Address("agenda", "ch.pli.test"), "Agenda", referenced=True)
    for app in (results, draft, agenda):
        await directory.add_application(app)
    assert await directory.list_applications() == [agenda, results]
    assert await directory.list_applications(referenced_only=False) == [agenda, draft, results]
    assert await directory.get_application(results.address) == results
    mailbox = await directory.get_mailbox(results.address)
    assert mailbox is not None and mailbox.kind is MailboxKind.APP
    assert mailbox.description == "Vos résultats d'analyses"

    await directory.update_application(replace(draft, referenced=True, category="agenda"))
    assert await directory.list_applications() == [
        agenda,
        replace(draft, referenced=True, category="agenda"),
        results,
    ]
    with pytest.raises(AccountExists):
        await directory.add_application(draft)
    with pytest.raises(UnknownMailbox):
        await directory.update_application(replace(draft, address=CABINET))
