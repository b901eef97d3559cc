"""Read receipts on a patient's open, content-free notices to a real SMTP smarthost, and the
minor's own address — through the delivery service, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import Envelope, Session

from messaging import Address, MessageKind, RuleViolation
from messaging.kinds.consent import Decision, Scope
from messaging.kinds.document import build_document
from messaging.kinds.notification import NoticeEvent, parse_notice
from messaging.mdn import DispositionType, parse_mdn
from messaging.notices import SmtpNoticeSender
from messaging.patient_delivery import MDN_SENT
from tests.messaging.kinds.samples import JEANNE, PAUL
from tests.messaging.kinds.test_document import MESSAGE
from tests.messaging.patient_world import PatientWorld, build_world, mail

ENGINES = ["memory", "sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PatientWorld]:
    async for built in build_world(request, request.param, tmp_path):
        yield built


# -- read receipts ----------------------------------------------------------------------------


async def test_a_patient_opening_a_message_that_asked_for_one_sends_a_read_receipt(
    world: PatientWorld,
) -> None:
    doctor = await world.professional("sophie")
    patient = await world.patient("277076322082910")
    raw = mail(doctor, patient, "Résultats", Disposition_Notification_To=str(doctor))
    sent = await world.delivery.send(doctor, await world.keys(doctor), [patient], raw)
    [inbox] = [p for p in sent.placed if p.account == patient]

    # A mail client's fetch (IMAP) sends nothing: the client does its own receipts.
    fetched = await world.delivery.open_message(
        patient, await world.keys(patient), "INBOX", inbox.uid
    )
    assert MDN_SENT not in fetched.record.flags
    assert await world.store.list_messages(doctor, "INBOX") == []

    opened = await world.delivery.open_message(
        patient, await world.keys(patient), "INBOX", inbox.uid, displayed=True
    )

    assert MDN_SENT in opened.record.flags
    [receipt] = await world.store.list_messages(doctor, "INBOX")
    assert receipt.kind is MessageKind.RECEIPT and receipt.sender == patient
    assert receipt.thread_id == sent.thread_id
    read = await world.delivery.open_message(doctor, await world.keys(doctor), "INBOX", receipt.uid)
    mdn = parse_mdn(read.raw)
    assert mdn.disposition is DispositionType.DISPLAYED
    assert mdn.final_recipient == patient
    original = email.message_from_bytes(raw, policy=email.policy.default)
    assert mdn.original_message_id == original["Message-ID"]

    # Once only: opening again sends nothing more.
    await world.delivery.open_message(
        patient, await world.keys(patient), "INBOX", inbox.uid, displayed=True
    )
    assert len(await world.store.list_messages(doctor, "INBOX")) == 1


async def test_no_receipt_is_sent_to_a_third_party_or_by_a_professional(
    world: PatientWorld,
) -> None:
    doctor, other = await world.professional("sophie"), await world.professional("paul")
    patient = await world.patient("277076322082910")
    third = mail(doctor, patient, Disposition_Notification_To=str(other))
    sent = await world.delivery.send(doctor, await world.keys(doctor), [patient], third)
    [inbox] = [p for p in sent.placed if p.account == patient]
    opened = await world.delivery.open_message(
        patient, await world.keys(patient), "INBOX", inbox.uid, displayed=True
    )
    assert MDN_SENT not in opened.record.flags
    assert await world.store.list_messages(other, "INBOX") == []

    to_doctor = mail(other, doctor, Disposition_Notification_To=str(other))
    sent = await world.delivery.send(other, await world.keys(other), [doctor], to_doctor)
    await world.delivery.open_message(
        doctor, await world.keys(doctor), "INBOX", sent.placed[0].uid, displayed=True
    )
    assert await world.store.list_messages(other, "INBOX") == []


# -- the minor's own address --------------------------------------------------------------------


async def test_a_document_about_a_minor_goes_to_the_minor_only(world: PatientWorld) -> None:
    doctor = await world.professional("sophie")
    child = await world.patient(str(JEANNE.ins))
    parent = await world.patient(str(PAUL.ins))
    await world.service.set_minor(child, True)

    def document(to: Address) -> bytes:
        message = replace(MESSAGE, sender=doctor, recipients=(to,))
        return build_document(message, message_id="<doc@medecin.pli.test>", date=world.clock.now())

    with pytest.raises(RuleViolation) as refused:
        await world.delivery.send(doctor, await world.keys(doctor), [parent], document(parent))
    assert refused.value.code == "minor-own-address"
    assert str(child) in refused.value.reason
    assert await world.store.list_messages(parent, "INBOX") == []

    sent = await world.delivery.send(doctor, await world.keys(doctor), [child], document(child))
    assert sent.kind is MessageKind.DOCUMENT
    # An adult's document may go to whom the adult chose.
    await world.service.set_minor(child, False)
    await world.delivery.send(doctor, await world.keys(doctor), [parent], document(parent))


# -- notices --------------------------------------------------------------------------------------


@dataclass
class Sink:
    port: int = 0
    received: list[Envelope] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class SinkHandler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_DATA(self, _server: SmtpServer, _session: Session, envelope: Envelope) -> str:
        self.sink.received.append(envelope)
        self.sink.arrived.set()
        return "250 OK"


@pytest.fixture
async def smarthost() -> AsyncIterator[Sink]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SmtpServer(SinkHandler(sink), hostname="smarthost.test"), "127.0.0.1", 0
    )
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture(params=ENGINES)
async def noticed(
    request: pytest.FixtureRequest, tmp_path: Path, smarthost: Sink
) -> AsyncIterator[tuple[PatientWorld, Sink]]:
    sender = SmtpNoticeSender("127.0.0.1", smarthost.port, "ne-pas-repondre@pli.example", False)
    async for built in build_world(request, request.param, tmp_path, notices=sender):
        yield built, smarthost


async def test_notices_announce_a_message_a_document_and_a_record_access_without_content(
    noticed: tuple[PatientWorld, Sink],
) -> None:
    world, sink = noticed
    doctor, reader = await world.professional("sophie"), await world.professional("paul")
    patient = await world.patient("277076322082910")
    await world.service.set_contact(patient, email="jeanne.dupont@example.org", lang="en")

    secret = "Résultat de biopsie : maligne"
    await world.delivery.send(
        doctor, await world.keys(doctor), [patient], mail(doctor, patient, secret, secret)
    )
    document = await world.delivery.send(
        doctor,
        await world.keys(doctor),
        [patient],
        mail(doctor, patient, secret, secret, X_Pli_Type="document"),
    )
    request, _ = await world.service.request_consent(
        reader,
        await world.keys(reader),
        patient,
        scope=Scope.record(),
        purpose="Avis",
        duration_days=3,
    )
    await world.service.answer_consent(
        patient, await world.keys(patient), request.request_id, Decision.GRANT
    )
    world.clock.advance(timedelta(seconds=5))
    await world.service.open_document(
        reader, await world.keys(reader), patient, document.envelope_id
    )

    notices = [parse_notice(e.original_content) for e in sink.received]  # type: ignore[arg-type]
    assert [n.event for n in notices] == [
        NoticeEvent.NEW_MESSAGE,
        NoticeEvent.NEW_DOCUMENT,
        NoticeEvent.NEW_MESSAGE,  # the consent request
        NoticeEvent.RECORD_ACCESS,
    ]
    assert all(e.rcpt_tos == ["jeanne.dupont@example.org"] for e in sink.received)
    assert all(n.lang == "en" and n.link == "https://pli.example/webmail" for n in notices)
    for envelope in sink.received:
        content = envelope.original_content
        assert isinstance(content, bytes)
        assert b"biopsie" not in content and b"sophie" not in content and b"paul" not in content


async def test_a_smarthost_that_is_down_never_undoes_a_delivery(tmp_path: Path) -> None:
    class Request:  # the world needs no database for this one
        pass

    # Port 9 on 127.0.0.1: nothing listens there, the connection is refused at once.
    sender = SmtpNoticeSender("127.0.0.1", 9, "ne-pas-repondre@pli.example", False, timeout=2)
    async for world in build_world(Request(), "memory", tmp_path, notices=sender):  # type: ignore[arg-type]
        doctor = await world.professional("sophie")
        patient = await world.patient("277076322082910")
        await world.service.set_contact(patient, email="jeanne.dupont@example.org")
        await world.delivery.send(
            doctor, await world.keys(doctor), [patient], mail(doctor, patient)
        )
        assert len(await world.store.list_messages(patient, "INBOX")) == 1


async def test_a_receipt_that_cannot_be_sent_never_stops_the_patient_reading(
    world: PatientWorld,
) -> None:
    doctor = await world.professional("sophie")
    patient = await world.patient("277076322082910")
    raw = mail(doctor, patient, "Résultats", Disposition_Notification_To=str(doctor))
    sent = await world.delivery.send(doctor, await world.keys(doctor), [patient], raw)
    [inbox] = [p for p in sent.placed if p.account == patient]
    await world.service.close(doctor)  # the receipt has nowhere to go now

    opened = await world.delivery.open_message(
        patient, await world.keys(patient), "INBOX", inbox.uid, displayed=True
    )

    assert opened.raw == raw
    assert MDN_SENT not in opened.record.flags
