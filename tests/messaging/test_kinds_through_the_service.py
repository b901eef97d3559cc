"""Acceptance 1 of issue 4, end to end: every type is built, sealed, delivered, opened and
parsed back through the delivery service (patient rules on), and what the recipient opens is
accepted by Python's strict ``email`` parser and by a second, independent parser
(``mail-parser``); the iCalendar part by the ``icalendar`` package. On memory and SQLite."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mailparser
import pytest
from icalendar import Calendar

from messaging import Address, Draft, MessageKind, build_message, parse_message
from messaging.dsn import BounceReason, DeliveryReport, bounce, build_dsn, parse_dsn
from messaging.kinds import appointment as appointment_kind
from messaging.kinds import certificate as cert_kind
from messaging.kinds import consent as consent_kind
from messaging.kinds import document as doc_kind
from messaging.kinds import prescription as rx_kind
from messaging.kinds.notification import (
    Channel,
    Notice,
    NoticeEvent,
    build_notice_email,
    parse_notice,
)
from messaging.mdn import build_mdn, parse_mdn, read_receipt
from tests.messaging.kinds.corpus_cases import CERTIFICATE, PRESCRIPTION
from tests.messaging.kinds.samples import JEANNE
from tests.messaging.kinds.test_document import MESSAGE as DOCUMENT
from tests.messaging.patient_world import PatientWorld, build_world

STRICT = email.policy.default.clone(raise_on_defect=True)
WHEN = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PatientWorld]:
    async for built in build_world(request, request.param, tmp_path):
        yield built


@dataclass
class People:
    doctor: Address
    patient: Address


async def people(world: PatientWorld) -> People:
    return People(await world.professional("sophie.martin"), await world.patient(str(JEANNE.ins)))


async def round_trip(
    world: PatientWorld, sender: Address, to: Address, raw: bytes, kind: MessageKind
) -> bytes:
    """Send ``raw`` sealed, open it as ``to``; the bytes opened, checked by both parsers."""
    sent = await world.delivery.send(sender, await world.keys(sender), [to], raw)
    assert sent.kind is kind
    [placed] = [p for p in sent.placed if p.account == to]
    opened = await world.delivery.open_message(to, await world.keys(to), "INBOX", placed.uid)
    assert opened.raw == raw
    strict = email.message_from_bytes(opened.raw, policy=STRICT)
    assert not strict.defects
    second = mailparser.parse_from_bytes(opened.raw)
    assert second.message_id and second.from_[0][1] == str(sender)
    return opened.raw


async def test_a_note(world: PatientWorld) -> None:
    who = await people(world)
    draft = Draft(sender=who.doctor, recipients=(who.patient,), subject="Bonjour", body="Texte")
    raw = build_message(draft, message_id="<note@pli.test>", date=WHEN)
    opened = await round_trip(world, who.doctor, who.patient, raw, MessageKind.NOTE)
    assert parse_message(opened).subject == "Bonjour"


async def test_a_document(world: PatientWorld) -> None:
    who = await people(world)
    message = replace(DOCUMENT, sender=who.doctor, recipients=(who.patient,))
    raw = doc_kind.build_document(message, message_id="<doc@pli.test>", date=WHEN)
    opened = await round_trip(world, who.doctor, who.patient, raw, MessageKind.DOCUMENT)
    assert doc_kind.parse_document(opened).documents == message.documents


@pytest.mark.parametrize("which", ["prescription", "certificate"])
async def test_a_signed_prescription_or_certificate(world: PatientWorld, which: str) -> None:
    who = await people(world)
    keys = await world.keys(who.doctor)
    if which == "prescription":
        rx = replace(PRESCRIPTION, sender=who.doctor, recipients=(who.patient,))
        raw = rx_kind.build_prescription(rx, keys.signing_key, message_id="<rx@x>", date=WHEN)
        kind: MessageKind = MessageKind.PRESCRIPTION
        parse: Callable[[bytes], object] = lambda b: rx_kind.parse_prescription(  # noqa: E731
            b, keys.signing_public
        )
        expected: object = rx
    else:
        cert = replace(CERTIFICATE, sender=who.doctor, recipients=(who.patient,))
        raw = cert_kind.build_certificate(cert, keys.signing_key, message_id="<c@x>", date=WHEN)
        kind = MessageKind.CERTIFICATE
        parse = lambda b: cert_kind.parse_certificate(b, keys.signing_public)  # noqa: E731
        expected = cert
    opened = await round_trip(world, who.doctor, who.patient, raw, kind)
    assert parse(opened) == expected


async def test_an_appointment_and_its_reply(world: PatientWorld) -> None:
    who = await people(world)
    request = appointment_kind.new_request(
        uid="rdv-1@pli.test",
        organizer=who.doctor,
        attendees=[who.patient],
        start=WHEN + timedelta(days=3),
        end=WHEN + timedelta(days=3, minutes=30),
        summary="Consultation",
        dtstamp=WHEN,
        location="Cabinet du Parc",
    )
    raw = appointment_kind.build_appointment(request, message_id="<rdv@pli.test>", date=WHEN)
    opened = await round_trip(world, who.doctor, who.patient, raw, MessageKind.APPOINTMENT)
    assert appointment_kind.parse_appointment(opened) == request
    payloads = [
        part.get_payload(decode=True)
        for part in email.message_from_bytes(opened, policy=STRICT).walk()
        if part.get_content_type() == "text/calendar"
    ]
    calendars = [Calendar.from_ical(p) for p in payloads if isinstance(p, bytes)]
    assert len(calendars) == len(payloads)
    assert calendars and all(str(c["METHOD"]) == "REQUEST" for c in calendars)
    # The patient answers in the doctor's thread: the reply passes the patient rules.
    reply = appointment_kind.reply_to(
        request, who.patient, appointment_kind.PartStat.ACCEPTED, dtstamp=WHEN
    )
    raw_reply = appointment_kind.build_appointment(
        reply, message_id="<rdv-r@pli.test>", date=WHEN, in_reply_to="<rdv@pli.test>"
    )
    answered = await round_trip(world, who.patient, who.doctor, raw_reply, MessageKind.APPOINTMENT)
    assert appointment_kind.parse_appointment(answered) == reply


async def test_the_three_consent_messages(world: PatientWorld) -> None:
    who = await people(world)
    patient_keys = await world.keys(who.patient)
    request = consent_kind.ConsentRequest.new(
        professional=who.doctor,
        patient=who.patient,
        scope=consent_kind.Scope.of_categories("11488-4"),
        purpose="Suivi",
        duration_days=30,
        at=world.clock.now(),
    )
    raw = consent_kind.build_request(request, message_id="<cr@pli.test>")
    opened = await round_trip(world, who.doctor, who.patient, raw, MessageKind.CONSENT_REQUEST)
    assert consent_kind.parse_request(opened) == request

    response = consent_kind.answer(
        request, consent_kind.Decision.GRANT, patient_keys.signing_key, world.clock.now()
    )
    raw = consent_kind.build_response(response, message_id="<cs@pli.test>", lang="en")
    opened = await round_trip(world, who.patient, who.doctor, raw, MessageKind.CONSENT_RESPONSE)
    assert consent_kind.parse_response(opened, [patient_keys.signing_public]) == response

    revocation = consent_kind.revoke(response, patient_keys.signing_key, world.clock.now())
    raw = consent_kind.build_revocation(revocation, message_id="<cv@pli.test>")
    opened = await round_trip(world, who.patient, who.doctor, raw, MessageKind.CONSENT_REVOCATION)
    assert consent_kind.parse_revocation(opened, [patient_keys.signing_public]) == revocation


async def test_receipts_delivery_status_and_read(world: PatientWorld) -> None:
    who = await people(world)
    report = DeliveryReport(
        sender=Address.parse(f"mailer-daemon@{who.doctor.domain}"),
        recipient=who.doctor,
        reporting_mta="mx.pli.test",
        recipients=(bounce(who.patient, BounceReason.PATIENT_NOT_FOUND),),
        original_message_id="<lost@pli.test>",
    )
    # The doctor files the report their system received (e.g. into the patient's thread).
    raw = build_dsn(report, message_id="<dsn@pli.test>", date=WHEN)
    sent = await world.delivery.send(who.doctor, await world.keys(who.doctor), [who.doctor], raw)
    assert sent.kind is MessageKind.RECEIPT
    [placed] = [p for p in sent.placed if p.folder == "INBOX"]
    opened = await world.delivery.open_message(
        who.doctor, await world.keys(who.doctor), "INBOX", placed.uid
    )
    assert parse_dsn(opened.raw) == report
    assert mailparser.parse_from_bytes(opened.raw).message_id

    mdn = read_receipt(reader=who.patient, notify=who.doctor, original_message_id="<m@pli.test>")
    raw = build_mdn(mdn, message_id="<mdn@pli.test>", date=WHEN)
    received = await round_trip(world, who.patient, who.doctor, raw, MessageKind.RECEIPT)
    assert parse_mdn(received) == mdn


async def test_a_notification(world: PatientWorld) -> None:
    who = await people(world)
    notice = Notice(NoticeEvent.NEW_DOCUMENT, Channel.EMAIL, "j@example.org", "https://pli.test/")
    raw = build_notice_email(notice, from_address=who.doctor, message_id="<n@pli.test>", date=WHEN)
    opened = await round_trip(world, who.doctor, who.patient, raw, MessageKind.NOTIFICATION)
    assert parse_notice(opened) == notice
