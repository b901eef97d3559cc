"""The MX with Python clients: TLS and certificates, allow-list, recipients, sealing, 4xx."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import warnings

import pytest

from messaging import MessageKind, Provenance
from tests.gateway_smtp.conftest import (
    CLOSED,
    DOCTOR,
    NURSE,
    PATIENT,
    SmtpWorld,
    in_thread,
    mx_session,
    note,
    raw_data,
)

PEER_SENDER = "dr.house@hopital.peer.test"


def deliver(world: SmtpWorld, issued, sender: str, recipients: list[str], payload: bytes):
    """One transaction; returns the (code, text) of MAIL, each RCPT and DATA."""
    client = mx_session(world, issued)
    try:
        replies = [client.docmd(f"MAIL FROM:<{sender}>")]
        if replies[0][0] != 250:
            return replies
        replies += [client.docmd(f"RCPT TO:<{r}>") for r in recipients]
        if not any(code == 250 for code, _ in replies[1:]):
            return replies
        replies.append(raw_data(client, payload))
        client.quit()
        return replies
    finally:
        client.close()


async def test_a_peer_message_is_sealed_with_gateway_provenance_naming_the_peer(
    world: SmtpWorld,
) -> None:
    payload = note(PEER_SENDER, str(DOCTOR)) + b"\r\n.\r\n"
    replies = await in_thread(
        deliver, world, world.certs.peer, PEER_SENDER, [str(DOCTOR), str(NURSE)], payload
    )
    assert [code for code, _ in replies] == [250, 250, 250, 250]
    assert replies[-1][1].startswith(b"2.0.0 OK queued as ")
    for address in (DOCTOR, NURSE):
        [record] = await world.inbox(address)
        opened = await world.opened(address, record.uid)
        assert opened.provenance is Provenance.GATEWAY
        assert opened.gateway_peer == "mx.peer.test"
        assert opened.record.kind is MessageKind.NOTE
        assert opened.raw.startswith(
            b"Return-Path: <dr.house@hopital.peer.test>\r\n"
            b"Received: from mx.peer.test ([127.0.0.1]) by mx.pli.test (Pli) with ESMTPS"
        )
        assert b"\r\n\r\nBonjour,\r\n\xc3\xa0 demain.\r\n" in opened.raw
    # The accept is in the trace, without content.
    trace = await world.store.list_trace(str(DOCTOR))
    assert [t.action for t in trace] == ["deliver"]
    assert "Bonjour" not in repr(trace)


async def test_mail_before_starttls_is_refused_530(world: SmtpWorld) -> None:
    def attempt():
        client = mx_session(world, None, tls=False)
        try:
            return client.docmd(f"MAIL FROM:<{PEER_SENDER}>")
        finally:
            client.close()

    code, text = await in_thread(attempt)
    assert (code, text[:5]) == (530, b"5.7.0")


async def test_a_peer_without_certificate_is_refused_530_at_mail(world: SmtpWorld) -> None:
    replies = await in_thread(deliver, world, None, PEER_SENDER, [str(DOCTOR)], b"")
    assert replies == [(530, b"5.7.0 A trust-space client certificate is required")]
    assert await world.everything() == []
    [trace] = await world.store.list_trace()
    assert trace.action == "smtp-mx-refuse"
    assert trace.details["reason"] == "peer-certificate"


@pytest.mark.parametrize("which", ["foreign", "expired", "revoked"])
async def test_a_certificate_from_another_ca_expired_or_revoked_ends_the_session_in_tls(
    world: SmtpWorld, which: str
) -> None:
    issued = getattr(world.certs, which)

    def attempt():
        client = smtplib.SMTP("127.0.0.1", world.port("mx"), timeout=30)
        try:
            client.ehlo()
            # TLS 1.3 finishes the client's handshake before the server checks the
            # certificate; the refusal arrives as an alert on the next read.
            client.starttls(context=world.certs.ca.client_context(issued))
            client.ehlo()
            return client.docmd(f"MAIL FROM:<{PEER_SENDER}>")
        finally:
            client.close()

    with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)) as raised:
        await in_thread(attempt)
    expected = {
        "foreign": "UNKNOWN_CA",
        "expired": "CERTIFICATE_EXPIRED",
        "revoked": "CERTIFICATE_REVOKED",
    }[which]
    if isinstance(raised.value, ssl.SSLError):
        assert expected in str(raised.value).upper()
    assert await world.everything() == []
    # The refusal is in the trace, with OpenSSL's reason.
    trace = []
    for _ in range(200):  # bounded: the server side may finish after the client gave up
        trace = await world.store.list_trace()
        if trace:
            break
        await asyncio.sleep(0.01)
    [entry] = trace
    assert entry.details["stage"] == "tls"
    assert {
        "foreign": "self-signed certificate in certificate chain",  # another CA's chain
        "expired": "certificate has expired",
        "revoked": "certificate revoked",
    }[which] in entry.details["reason"]


async def test_tls_below_1_2_is_not_offered(world: SmtpWorld) -> None:
    def attempt():
        client = smtplib.SMTP("127.0.0.1", world.port("mx"), timeout=30)
        context = world.certs.ca.client_context(world.certs.peer)
        with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            client.ehlo()
            client.starttls(context=context)
        finally:
            client.close()

    with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
        await in_thread(attempt)


async def test_a_sender_domain_off_the_allow_list_is_refused_550_5_7_1(world: SmtpWorld) -> None:
    replies = await in_thread(
        deliver, world, world.certs.peer, "x@elsewhere.test", [str(DOCTOR)], b""
    )
    assert replies == [(550, b"5.7.1 Sender domain is not in the trust space")]
    # A null sender (a bounce) is judged by the certificate's name.
    replies = await in_thread(deliver, world, world.certs.off_list, "", [str(DOCTOR)], b"")
    assert replies == [(550, b"5.7.1 Sender domain is not in the trust space")]
    assert await world.everything() == []


async def test_a_peer_cannot_send_as_one_of_our_own_addresses(world: SmtpWorld) -> None:
    for sender in (str(PATIENT), "someone@pli.test", f"x@{DOCTOR.domain}"):
        replies = await in_thread(deliver, world, world.certs.peer, sender, [str(DOCTOR)], b"")
        assert replies == [
            (550, b"5.7.1 Mail from this domain is submitted here, not relayed by a peer")
        ], sender
    assert await world.everything() == []


async def test_an_internationalised_peer_domain_is_matched_in_either_form(world: SmtpWorld) -> None:
    payload = note("secretariat@xn--hpital-exemple-0ob.test", str(DOCTOR)) + b"\r\n.\r\n"
    replies = await in_thread(
        deliver,
        world,
        world.certs.idn_peer,
        "secretariat@xn--hpital-exemple-0ob.test",
        [str(DOCTOR)],
        payload,
    )
    assert [code for code, _ in replies] == [250, 250, 250]

    def utf8_sender():
        client = mx_session(world, world.certs.idn_peer)
        try:
            # smtplib writes commands in ASCII: the UTF-8 command goes out as bytes.
            client.send("MAIL FROM:<secretariat@hôpital-exemple.test> SMTPUTF8\r\n".encode())
            return client.getreply()
        finally:
            client.close()

    assert (await in_thread(utf8_sender))[0] == 250


async def test_recipients_are_checked_at_rcpt(world: SmtpWorld) -> None:
    def attempt():
        client = mx_session(world, world.certs.peer)
        try:
            client.docmd(f"MAIL FROM:<{PEER_SENDER}>")
            return [
                client.docmd(f"RCPT TO:<{r}>")
                for r in (
                    "nobody@medecin.pli.test",
                    str(CLOSED),
                    "someone@elsewhere.test",
                    "not an address",
                    str(PATIENT),
                    str(PATIENT),
                )
            ]
        finally:
            client.close()

    unknown, closed, foreign, malformed, patient, twice = await in_thread(attempt)
    assert unknown == (550, b"5.1.1 No such mailbox")
    assert closed == (550, b"5.2.1 Mailbox is closed")
    assert foreign == (550, b"5.7.1 Relaying not permitted here")
    assert malformed[0] in (501, 553)
    assert patient == (250, b"2.1.5 Recipient OK")
    assert twice[0] == 250
    trace = await world.store.list_trace()
    assert {t.details["reason"] for t in trace} >= {
        "unknown-mailbox",
        "mailbox-closed",
        "relay-denied",
    }


async def test_an_appointment_in_clear_is_typed_on_arrival(world: SmtpWorld) -> None:
    calendar = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Peer//EN\r\nMETHOD:REQUEST\r\n"
        "BEGIN:VEVENT\r\nUID:rdv-1@peer.test\r\nDTSTAMP:20261122T090000Z\r\n"
        "DTSTART:20261201T093000Z\r\nDTEND:20261201T100000Z\r\n"
        f"ORGANIZER:mailto:{PEER_SENDER}\r\n"
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{PATIENT}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    payload = (
        f"From: {PEER_SENDER}\r\nTo: {PATIENT}\r\nSubject: Rendez-vous\r\n"
        "Message-ID: <rdv-1@peer.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/calendar; method=REQUEST; charset="utf-8"\r\n\r\n'
        f"{calendar}\r\n.\r\n"
    ).encode()
    replies = await in_thread(
        deliver, world, world.certs.peer, PEER_SENDER, [str(PATIENT)], payload
    )
    assert replies[-1][0] == 250
    [record] = await world.inbox(PATIENT)
    assert record.kind is MessageKind.APPOINTMENT


async def test_storage_unavailable_answers_451_and_stores_nothing(world: SmtpWorld) -> None:
    def attempt():
        client = mx_session(world, world.certs.peer)
        try:
            client.docmd(f"MAIL FROM:<{PEER_SENDER}>")
            assert client.docmd(f"RCPT TO:<{DOCTOR}>")[0] == 250
            return raw_data(client, note(PEER_SENDER, str(DOCTOR)) + b"\r\n.\r\n")
        finally:
            client.close()

    # The store goes away between RCPT and DATA's commit (a database restart, a full disk).
    original = world.store.deliver

    async def failing_deliver(delivery):
        await world.store.close()
        return await original(delivery)

    world.store.deliver = failing_deliver  # type: ignore[method-assign]
    code, text = await in_thread(attempt)
    assert (code, text[:5]) == (451, b"4.3.0")
    world.store._closed = False  # reopen to look inside
    assert await world.everything() == []


async def test_a_certificate_revoked_while_serving_is_refused_after_the_crl_refresh(
    tmp_path, certs
) -> None:
    from gateway_smtp.limits import SmtpLimits  # noqa: PLC0415
    from tests.gateway_smtp.conftest import make_world  # noqa: PLC0415

    world = await make_world(
        tmp_path, certs, SmtpLimits(auth_failure_delay=0), crl_refresh_seconds=0.01
    )
    try:
        peer = certs.ca.issue("mx.late.peer.test", server=False, file_stem="late")

        def mail():
            client = mx_session(world, peer)
            try:
                return client.docmd(f"MAIL FROM:<{PEER_SENDER}>")
            finally:
                client.close()

        assert (await in_thread(mail))[0] == 250
        certs.ca.revoke(peer)
        kept = tmp_path / "kept.crl.pem"
        for _ in range(500):  # bounded: the refresh runs every 10 ms
            if kept.read_bytes() == certs.ca.crl_path.read_bytes():
                break
            await asyncio.sleep(0.01)
        with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
            await in_thread(mail)
    finally:
        await world.fronts.stop(grace=1)
