"""Messages that arrive in clear are typed as their senders meant, with or without
``X-Pli-Type``."""

from __future__ import annotations

import crypto
from messaging import Address, MessageKind
from messaging.kinds import REGISTRY
from tests.messaging.conftest import World

THUNDERBIRD_REPLY = (
    b"From: Camille Durand <185057800608491@patient.pli.test>\r\n"
    b"To: bob@medecin.pli.test\r\n"
    b"Subject: Accepted: Consultation\r\n"
    b"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <reply-1@patient.pli.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/calendar; charset=UTF-8; method=REPLY\r\n"
    b"\r\n"
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\n"
    b"METHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:consult-42@medecin.pli.test\r\n"
    b"DTSTAMP:20261122T090000Z\r\nDTSTART:20261201T090000Z\r\nDTEND:20261201T093000Z\r\n"
    b"SUMMARY:Consultation\r\nORGANIZER:mailto:bob@medecin.pli.test\r\n"
    b"ATTENDEE;PARTSTAT=ACCEPTED:mailto:185057800608491@patient.pli.test\r\n"
    b"END:VEVENT\r\nEND:VCALENDAR\r\n"
)

DSN = (
    b"From: MAILER-DAEMON@mx.ailleurs.fr\r\nTo: bob@medecin.pli.test\r\nSubject: Undelivered\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
    b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.ailleurs.fr\r\n\r\n"
    b"Final-Recipient: rfc822; x@ailleurs.fr\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"--b--\r\n"
)


def test_every_message_kind_has_a_registered_spec():
    assert set(REGISTRY) == set(MessageKind)


async def test_a_plain_client_reply_to_an_invitation_arrives_as_an_appointment(world: World):
    bob = await world.person("bob")
    patient = Address.parse("185057800608491@patient.pli.test")
    sent = await world.delivery.receive(
        patient, [bob], THUNDERBIRD_REPLY, gateway=crypto.GatewayInfo("mx.test", "")
    )
    assert sent.kind is MessageKind.APPOINTMENT
    [record] = await world.delivery.list_messages(bob, "INBOX")
    assert record.kind is MessageKind.APPOINTMENT


async def test_a_delivery_status_report_arrives_as_a_receipt(world: World):
    bob = await world.person("bob")
    sent = await world.delivery.receive(
        Address.parse("mailer-daemon@mx.ailleurs.fr"),
        [bob],
        DSN,
        gateway=crypto.GatewayInfo("mx.ailleurs.fr", ""),
    )
    assert sent.kind is MessageKind.RECEIPT


async def test_a_plain_message_is_a_note(world: World):
    bob = await world.person("bob")
    raw = b"From: a@ailleurs.fr\r\nTo: bob@medecin.pli.test\r\nSubject: hi\r\n\r\nhello\r\n"
    sent = await world.delivery.receive(
        Address.parse("a@ailleurs.fr"), [bob], raw, gateway=crypto.GatewayInfo("x", "")
    )
    assert sent.kind is MessageKind.NOTE
