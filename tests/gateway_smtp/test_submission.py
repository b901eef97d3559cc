"""Submission on 587 (STARTTLS) and 465 (implicit TLS) with smtplib: AUTH, ownership, e2e."""

from __future__ import annotations

import base64
import smtplib

import pytest

from messaging import MessageKind, Provenance, SignatureStatus
from tests.gateway_smtp.conftest import (
    DOCTOR,
    LAB_APP,
    NURSE,
    PATIENT,
    SmtpWorld,
    in_thread,
    note,
    submission_session,
)

CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Thunderbird//EN\r\nMETHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\nUID:rdv-7@medecin.pli.test\r\nDTSTAMP:20261122T090000Z\r\n"
    "DTSTART:20261201T093000Z\r\nDTEND:20261201T100000Z\r\n"
    f"ORGANIZER:mailto:{DOCTOR}\r\n"
    f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{PATIENT}\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def submit(world: SmtpWorld, recipients, message: bytes, implicit=False, mechanism="PLAIN"):
    client = submission_session(world, implicit=implicit)
    try:
        client.user, client.password = str(DOCTOR), world.app_passwords[DOCTOR]
        code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
        assert code == 235
        refused = client.sendmail(str(DOCTOR), [str(r) for r in recipients], message)
        client.quit()
        return refused
    finally:
        client.close()


@pytest.mark.parametrize(("implicit", "mechanism"), [(False, "PLAIN"), (True, "LOGIN")])
async def test_a_client_submits_on_587_and_465_and_the_recipient_gets_an_e2e_envelope(
    world: SmtpWorld, implicit: bool, mechanism: str
) -> None:
    message = note(DOCTOR, PATIENT, Subject_Extra="x").replace(
        b"From: " + str(DOCTOR).encode(), b'From: "Sophie" <' + str(DOCTOR).encode() + b">"
    )
    refused = await in_thread(submit, world, [PATIENT], message, implicit, mechanism)
    assert refused == {}
    [record] = await world.inbox(PATIENT)
    opened = await world.opened(PATIENT, record.uid)
    assert opened.provenance is Provenance.E2E
    assert opened.signature is SignatureStatus.VALID
    assert opened.signer == str(DOCTOR)
    # DOMAIN.md: the From: label and X-MSS-NIL are set by the submission server.
    assert b"\r\nFrom: Dr_Sophie_MARTIN_Cabinet <sophie.martin@medecin.pli.test>\r\n" in (
        b"\r\n" + opened.raw
    )
    assert b"X-MSS-NIL: Pli/0.1\r\n" in opened.raw
    assert opened.raw.count(b"\r\nFrom:") + opened.raw.startswith(b"From:") == 1
    # The sender's Sent copy.
    [sent] = await world.inbox(DOCTOR, "Sent")
    assert sent.envelope_id == record.envelope_id


async def test_auth_before_tls_is_refused_530(world: SmtpWorld) -> None:
    def attempt():
        client = smtplib.SMTP("127.0.0.1", world.port("submission"), timeout=30)
        try:
            client.ehlo()
            token = base64.b64encode(f"\0{DOCTOR}\0secret".encode()).decode()
            return (
                client.ehlo_resp,
                client.docmd("AUTH", f"PLAIN {token}"),
                client.docmd(f"MAIL FROM:<{DOCTOR}>"),
            )
        finally:
            client.close()

    ehlo, auth, mail = await in_thread(attempt)
    assert b"AUTH" not in ehlo and b"STARTTLS" in ehlo
    assert auth == (530, b"5.7.0 Must issue a STARTTLS command first")
    assert mail[0] == 530


async def test_mail_before_auth_is_refused(world: SmtpWorld) -> None:
    def attempt():
        client = submission_session(world)
        try:
            return client.docmd(f"MAIL FROM:<{DOCTOR}>")
        finally:
            client.close()

    code, text = await in_thread(attempt)
    assert (code, text[:5]) == (530, b"5.7.0")


async def test_wrong_passwords_are_slowed_counted_and_end_the_session(world: SmtpWorld) -> None:
    def attempt():
        client = submission_session(world, implicit=True)
        replies = []
        try:
            for guess in ("guess-1", "guess-2", "guess-3"):
                token = base64.b64encode(f"\0{DOCTOR}\0{guess}".encode()).decode()
                replies.append(client.docmd("AUTH", f"PLAIN {token}"))
            replies.append(client.getreply())
            return replies
        except smtplib.SMTPServerDisconnected:
            return replies + [(-1, b"disconnected")]
        finally:
            client.close()

    replies = await in_thread(attempt)
    assert replies[0] == (535, b"5.7.8 Authentication credentials invalid")
    assert replies[1] == (535, b"5.7.8 Authentication credentials invalid")
    assert replies[2] == (535, b"5.7.8 Authentication credentials invalid")
    assert replies[3] == (421, b"4.7.0 Too many authentication failures")
    assert world.fronts.auth_failures.total == 3
    trace = await world.store.list_trace()
    assert [t.action for t in trace].count("smtp-submission-auth-failed") == 3
    assert "guess" not in repr(trace)


async def test_a_passphrase_is_not_an_app_password(world: SmtpWorld) -> None:
    def attempt():
        client = submission_session(world)
        try:
            client.user, client.password = str(DOCTOR), f"passphrase of {DOCTOR.local}"
            return client.auth("PLAIN", client.auth_plain, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code, error.smtp_error
        finally:
            client.close()

    assert (await in_thread(attempt))[0] == 535


async def test_a_forged_mail_from_and_a_forged_from_header_are_refused(world: SmtpWorld) -> None:
    def attempt():
        client = submission_session(world)
        try:
            client.login(str(DOCTOR), world.app_passwords[DOCTOR])
            mail = client.docmd(f"MAIL FROM:<{NURSE}>")
            client.docmd("RSET")
            client.docmd(f"MAIL FROM:<{DOCTOR}>")
            client.docmd(f"RCPT TO:<{PATIENT}>")
            client.docmd("DATA")
            client.send(note(NURSE, PATIENT) + b"\r\n.\r\n")
            data = client.getreply()
            return mail, data
        finally:
            client.close()

    mail, data = await in_thread(attempt)
    assert mail == (553, b"5.7.1 Sender address not owned by the authenticated user")
    assert data == (550, b"5.7.1 From: header not owned by the authenticated user")
    assert await world.inbox(PATIENT) == []


async def test_an_appointment_from_a_plain_client_arrives_as_an_appointment(
    world: SmtpWorld,
) -> None:
    message = (
        f"From: {DOCTOR}\r\nTo: {PATIENT}\r\nSubject: Consultation\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/calendar; method=REQUEST; charset="utf-8"\r\n\r\n'
        f"{CALENDAR}"
    ).encode()
    assert await in_thread(submit, world, [PATIENT], message) == {}
    [record] = await world.inbox(PATIENT)
    assert record.kind is MessageKind.APPOINTMENT
    opened = await world.opened(PATIENT, record.uid)
    # Message-ID and Date were missing: the submission server adds them (RFC 6409 §8).
    assert b"\r\nMessage-ID: <" in b"\r\n" + opened.raw
    assert b"\r\nDate: " in b"\r\n" + opened.raw


async def test_a_remote_recipient_outside_the_trust_space_is_refused_at_rcpt(
    world: SmtpWorld,
) -> None:
    def attempt():
        client = submission_session(world)
        try:
            client.login(str(DOCTOR), world.app_passwords[DOCTOR])
            client.docmd(f"MAIL FROM:<{DOCTOR}>")
            return client.docmd("RCPT TO:<someone@gmail.example>")
        finally:
            client.close()

    assert await in_thread(attempt) == (550, b"5.7.1 Recipient domain is not in the trust space")


async def test_an_app_mailbox_answers_a_document_with_the_national_mdn(world: SmtpWorld) -> None:
    message = note(
        DOCTOR,
        LAB_APP,
        X_Pli_Type="document",
        Disposition_Notification_To=f"<{DOCTOR}>",
    )
    assert await in_thread(submit, world, [LAB_APP], message) == {}
    [received] = await world.inbox(LAB_APP)
    assert received.kind is MessageKind.DOCUMENT
    [receipt] = await world.inbox(DOCTOR)
    assert receipt.kind is MessageKind.RECEIPT
    opened = await world.opened(DOCTOR, receipt.uid)
    assert b"multipart/report" in opened.raw
    assert b"disposition-notification" in opened.raw
    assert b"Disposition: automatic-action/MDN-sent-automatically; processed" in opened.raw
    assert b"Original-Message-ID: <note-1@peer.test>" in opened.raw


async def test_an_mdn_request_is_carried_through(world: SmtpWorld) -> None:
    message = note(DOCTOR, PATIENT, Disposition_Notification_To=f"<{DOCTOR}>")
    assert await in_thread(submit, world, [PATIENT], message) == {}
    [record] = await world.inbox(PATIENT)
    opened = await world.opened(PATIENT, record.uid)
    assert f"Disposition-Notification-To: <{DOCTOR}>".encode() in opened.raw
    assert await world.inbox(DOCTOR) == []  # a patient is not an integrating system


@pytest.fixture
async def relaying_world(tmp_path, certs):
    from tests.gateway_smtp.conftest import TEST_LIMITS, make_world  # noqa: PLC0415

    made = await make_world(tmp_path, certs, TEST_LIMITS, relay=True)
    try:
        yield made
    finally:
        await made.fronts.stop(grace=1)


async def test_a_local_patient_and_a_remote_peer_get_one_submission_typed_as_sent(
    relaying_world: SmtpWorld,
) -> None:
    world = relaying_world
    remote = "bob@ch.peer.test"
    message = (
        f"From: {DOCTOR}\r\nTo: {PATIENT}, {remote}\r\nSubject: Consultation\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/calendar; method=REQUEST; charset="utf-8"\r\n\r\n'
        f"{CALENDAR}"
    ).encode()

    def attempt():
        client = submission_session(world)
        try:
            client.login(str(DOCTOR), world.app_passwords[DOCTOR])
            assert "dsn" in client.esmtp_features
            return client.sendmail(
                str(DOCTOR),
                [str(PATIENT), remote],
                message,
                mail_options=["RET=HDRS", "ENVID=rdv+2B7"],
                rcpt_options=["NOTIFY=SUCCESS,FAILURE"],
            )
        finally:
            client.close()

    assert await in_thread(attempt) == {}
    [record] = await world.inbox(PATIENT)
    assert record.kind is MessageKind.APPOINTMENT
    [queued] = await world.store.outbound.list_queued()
    [recipient] = queued.message.recipients
    assert str(recipient.address) == remote
    assert recipient.notify == frozenset({"SUCCESS", "FAILURE"})
    assert queued.message.envid == "rdv+7"
    assert queued.message.ret is not None and queued.message.ret.value == "HDRS"
    from messaging.outbound import open_queued  # noqa: PLC0415

    plaintext = open_queued(queued.message, world.queue_keys)
    assert b"text/calendar" in plaintext and b"X-MSS-NIL: Pli/0.1" in plaintext


async def test_bad_dsn_parameters_are_refused(relaying_world: SmtpWorld) -> None:
    world = relaying_world

    def attempt():
        client = submission_session(world)
        try:
            client.login(str(DOCTOR), world.app_passwords[DOCTOR])
            ret = client.docmd(f"MAIL FROM:<{DOCTOR}> RET=ALL")
            client.docmd(f"MAIL FROM:<{DOCTOR}>")
            notify = client.docmd(f"RCPT TO:<{PATIENT}> NOTIFY=NEVER,SUCCESS")
            return ret, notify
        finally:
            client.close()

    ret, notify = await in_thread(attempt)
    assert ret == (501, b"5.5.4 RET must be FULL or HDRS")
    assert notify[0] == 501


async def test_a_patient_cannot_write_to_a_patient(world: SmtpWorld) -> None:
    other = PATIENT.__class__.parse("269054958815780@patient.pli.test")
    from messaging import MailboxKind  # noqa: PLC0415

    await world.accounts.create(other, MailboxKind.PAT, "other", "passphrase of other")

    def attempt():
        client = submission_session(world)
        try:
            client.login(str(PATIENT), world.app_passwords[PATIENT])
            client.docmd(f"MAIL FROM:<{PATIENT}>")
            return client.docmd(f"RCPT TO:<{other}>"), client.docmd(f"RCPT TO:<{DOCTOR}>")
        finally:
            client.close()

    to_patient, to_doctor = await in_thread(attempt)
    assert to_patient == (550, b"5.7.1 A patient cannot write to a patient")
    assert to_doctor == (250, b"2.1.5 Recipient OK")
    trace = await world.store.list_trace(str(other))
    assert trace[0].details["reason"] == "patient-to-patient"
