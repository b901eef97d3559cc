"""Smuggling and bad input on the MX and on submission: each gets its code, the store is
unchanged, and the session stays in step with the client."""

from __future__ import annotations

import smtplib
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway_smtp.hygiene import check_message
from gateway_smtp.limits import SmtpLimits
from messaging import Address, MailboxKind
from messaging.types import AccountRecord
from tests.gateway_smtp.conftest import (
    DOCTOR,
    PATIENT,
    Certificates,
    SmtpWorld,
    in_thread,
    make_world,
    mx_session,
    note,
    raw_data,
    submission_session,
)

PEER_SENDER = "dr.house@hopital.peer.test"
SMUGGLED = b"MAIL FROM:<admin@peer.test>\r\nRCPT TO:<" + str(DOCTOR).encode() + b">\r\nDATA\r\n"
# SEC Consult's SMTP smuggling end-of-data variants (2023), and NUL-based ones.
PATTERNS = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r.\n",
    b"\r.\r\n",
    b"\r\n.\n",
    b"\n.\r",
    b"\r\n.\r",
    b"\r\n\x00.\r\n",
]


def transaction(world: SmtpWorld, payload: bytes, *, smtputf8: bool = False, after=None):
    """MAIL, RCPT, DATA with ``payload`` (sent raw), then NOOP: the replies to DATA and NOOP."""
    client = mx_session(world, world.certs.peer)
    try:
        option = " SMTPUTF8" if smtputf8 else ""
        assert client.docmd(f"MAIL FROM:<{PEER_SENDER}>{option}")[0] == 250
        assert client.docmd(f"RCPT TO:<{DOCTOR}>")[0] == 250
        data = raw_data(client, payload)
        return data, client.docmd("NOOP")
    finally:
        client.close()


@pytest.mark.parametrize("pattern", PATTERNS, ids=[repr(p) for p in PATTERNS])
async def test_smuggling_patterns_are_refused_whole(world: SmtpWorld, pattern: bytes) -> None:
    payload = (
        note(PEER_SENDER, DOCTOR, body="first")
        + pattern
        + SMUGGLED
        + note("admin@peer.test", DOCTOR, body="smuggled")
        + b"\r\n.\r\n"
    )
    data, noop = await in_thread(transaction, world, payload)
    assert data[0] in (550, 554)
    assert data[1].startswith((b"5.5.2 Bare CR or LF", b"5.6.0 NUL"))
    # The session is still in step: the "smuggled" commands were data, never commands.
    assert noop == (250, b"2.0.0 OK")
    assert await world.everything() == []
    [trace] = await world.store.list_trace()
    assert trace.action == "smtp-mx-refuse" and trace.details["stage"] == "data"


async def test_an_oversize_message_is_refused_at_mail_and_at_data(world: SmtpWorld) -> None:
    limit = world.limits.max_message_size

    def attempt():
        client = mx_session(world, world.certs.peer)
        try:
            declared = client.docmd(f"MAIL FROM:<{PEER_SENDER}> SIZE={limit + 1}")
            client.docmd(f"MAIL FROM:<{PEER_SENDER}>")
            client.docmd(f"RCPT TO:<{DOCTOR}>")
            body = ("x" * 998 + "\r\n") * (limit // 1000 + 10)
            sent = raw_data(client, note(PEER_SENDER, DOCTOR, body=body) + b".\r\n")
            return declared, sent
        finally:
            client.close()

    declared, sent = await in_thread(attempt)
    assert declared[0] == 552 and declared[1].startswith(b"5.3.4")
    assert sent == (552, b"5.3.4 Message size exceeds fixed maximum")
    assert await world.everything() == []


async def test_a_ten_megabyte_line_is_refused(world: SmtpWorld) -> None:
    payload = note(PEER_SENDER, DOCTOR, body="a" * (10 * 1024 * 1024) + "\r\n.\r\n")
    data, noop = await in_thread(transaction, world, payload)
    assert data == (500, b"5.5.2 Line too long (RFC 5321 \xc2\xa74.5.3.1.6)")
    assert noop[0] == 250
    assert await world.everything() == []


async def test_a_long_line_whose_tail_looks_like_the_end_does_not_end_data(
    world: SmtpWorld,
) -> None:
    # 1,000 octets of text, then ".\r\n": the tail of the over-long line is not the end.
    line = b"b" * (world.limits.max_line_length + 1) + b".\r\n"
    payload = note(PEER_SENDER, DOCTOR, body="") + line + b"more\r\n.\r\n"
    data, noop = await in_thread(transaction, world, payload)
    assert data[0] == 500
    assert noop[0] == 250
    assert await world.everything() == []


async def test_a_thousand_recipients_get_452_past_the_limit(world: SmtpWorld) -> None:
    limit = world.limits.max_recipients
    created = datetime(2026, 11, 22, tzinfo=UTC)
    for i in range(limit):
        await world.store.create_account(
            AccountRecord(
                address=Address.parse(f"n{i}@medecin.pli.test"),
                kind=MailboxKind.PER,
                display_name=f"n{i}",
                encryption_key=bytes([1]) * 32,
                signing_key=bytes([2]) * 32,
                created_at=created,
            ),
            [],
        )

    def attempt():
        client = mx_session(world, world.certs.peer)
        try:
            client.docmd(f"MAIL FROM:<{PEER_SENDER}>")
            # PIPELINING: every RCPT goes out at once, then the replies are read.
            client.send(
                b"".join(f"RCPT TO:<n{i}@medecin.pli.test>\r\n".encode() for i in range(1000))
            )
            replies = [client.getreply() for _ in range(1000)]
            return replies, client.docmd("RSET")
        finally:
            client.close()

    replies, rset = await in_thread(attempt)
    assert replies[:limit] == [(250, b"2.1.5 Recipient OK")] * limit
    assert replies[limit:] == [(452, b"4.5.3 Too many recipients")] * (1000 - limit)
    assert rset == (250, b"2.0.0 OK")
    assert await world.everything() == []


async def test_the_recipient_limit_answers_452(tmp_path: Path, certs: Certificates) -> None:
    limits = SmtpLimits(max_recipients=3, max_message_size=64 * 1024, auth_failure_delay=0)
    world = await make_world(tmp_path, certs, limits)
    try:
        from tests.gateway_smtp.conftest import LAB_APP, NURSE  # noqa: PLC0415

        def attempt():
            client = mx_session(world, world.certs.peer)
            try:
                client.docmd(f"MAIL FROM:<{PEER_SENDER}>")
                return [client.docmd(f"RCPT TO:<{r}>") for r in (DOCTOR, NURSE, PATIENT, LAB_APP)]
            finally:
                client.close()

        replies = await in_thread(attempt)
        assert [r[0] for r in replies] == [250, 250, 250, 452]
        assert replies[3][1] == b"4.5.3 Too many recipients"
    finally:
        await world.fronts.stop(grace=1)


@pytest.mark.parametrize("smtputf8", [False, True])
async def test_invalid_utf8_in_a_header_is_refused_with_and_without_smtputf8(
    world: SmtpWorld, smtputf8: bool
) -> None:
    payload = note(PEER_SENDER, DOCTOR).replace(b"Subject: Avis", b"Subject: Avis \xff\xfe") + (
        b"\r\n.\r\n"
    )
    data, _ = await in_thread(lambda: transaction(world, payload, smtputf8=smtputf8))
    assert data == (554, b"5.6.0 Header is not valid UTF-8")
    assert await world.everything() == []


async def test_utf8_headers_need_smtputf8(world: SmtpWorld) -> None:
    payload = note(PEER_SENDER, DOCTOR).replace(b"Subject: Avis", "Subject: Réponse".encode())
    payload += b"\r\n.\r\n"
    without, _ = await in_thread(lambda: transaction(world, payload, smtputf8=False))
    assert without == (554, b"5.6.7 Non-ASCII header without SMTPUTF8 (RFC 6531 \xc2\xa73.2)")
    assert await world.everything() == []
    with_it, _ = await in_thread(lambda: transaction(world, payload, smtputf8=True))
    assert with_it[0] == 250
    assert len(await world.inbox(DOCTOR)) == 1


async def test_invalid_utf8_in_a_utf8_text_part_is_refused(world: SmtpWorld) -> None:
    # Latin-1 bytes in a part declared UTF-8.
    payload = note(PEER_SENDER, DOCTOR, body="cafe\r\n").replace(b"cafe", b"caf\xe9")
    payload += b"\r\n.\r\n"
    data, _ = await in_thread(transaction, world, payload)
    assert data == (554, b"5.6.0 Text part is not valid UTF-8")
    assert await world.everything() == []


MALFORMED = {
    "unclosed multipart": (
        b"From: a@peer.test\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
        b"--XYZ\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    ),
    "multipart without boundary": (
        b"From: a@peer.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nhi\r\n"
    ),
    "boundary never found": (
        b"From: a@peer.test\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\nno parts at all\r\n'
    ),
    "header without colon": b"From: a@peer.test\r\nthis is not a header\r\n\r\nbody\r\n",
    "continuation first": b" folded\r\nFrom: a@peer.test\r\n\r\nbody\r\n",
    "two From": b"From: a@peer.test\r\nFrom: b@peer.test\r\n\r\nbody\r\n",
    "no From": b"Subject: x\r\n\r\nbody\r\n",
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_messages_are_refused(world: SmtpWorld, name: str) -> None:
    data, noop = await in_thread(transaction, world, MALFORMED[name] + b".\r\n")
    assert data[0] == 554 and data[1].startswith(b"5.6.0")
    assert noop[0] == 250
    assert await world.everything() == []


def test_check_message_accepts_what_mail_clients_write() -> None:
    nested = (
        b"From: a@peer.test\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="A"\r\n\r\n'
        b'--A\r\nContent-Type: multipart/alternative; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbonjour \xc3\xa0 tous\r\n"
        b"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>bonjour</p>\r\n--B--\r\n"
        b"--A\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n--A--\r\n"
    )
    assert check_message(nested, smtputf8=False) is None


async def test_too_many_errors_close_the_session(world: SmtpWorld) -> None:
    def attempt():
        client = mx_session(world, world.certs.peer)
        replies = []
        try:
            for _ in range(world.limits.max_errors + 5):
                replies.append(client.docmd("RCPT TO:<x@medecin.pli.test>"))
        except smtplib.SMTPServerDisconnected:
            replies.append((-1, b"disconnected"))
        finally:
            client.close()
        return replies

    replies = await in_thread(attempt)
    assert replies[0][0] == 503
    assert (421, b"4.7.0 Too many errors, closing connection") in replies
    assert replies[-1] == (-1, b"disconnected")


async def test_too_many_commands_close_the_session(tmp_path: Path, certs: Certificates) -> None:
    world = await make_world(tmp_path, certs, SmtpLimits(max_commands=10))
    try:

        def attempt():
            client = smtplib.SMTP("127.0.0.1", world.port("mx"), timeout=30)
            try:
                return [client.docmd("NOOP") for _ in range(11)]
            finally:
                client.close()

        replies = await in_thread(attempt)
        assert replies[9] == (250, b"2.0.0 OK")
        assert replies[10] == (421, b"4.7.0 Too many commands in this session")
    finally:
        await world.fronts.stop(grace=1)


async def test_connections_per_peer_are_limited(world: SmtpWorld) -> None:
    def attempt():
        held = [
            socket.create_connection(("127.0.0.1", world.port("submission")), timeout=30)
            for _ in range(world.limits.max_connections_per_peer)
        ]
        try:
            for sock in held:
                assert sock.recv(1024).startswith(b"220 ")
            extra = socket.create_connection(("127.0.0.1", world.port("submission")), timeout=30)
            with extra:
                refused = extra.recv(1024)
            # One front's count does not take another's: the MX still answers.
            with socket.create_connection(("127.0.0.1", world.port("mx")), timeout=30) as mx:
                greeting = mx.recv(1024)
            return refused, greeting
        finally:
            for sock in held:
                sock.close()

    refused, greeting = await in_thread(attempt)
    assert refused == b"421 4.7.0 Too many connections from your address\r\n"
    assert greeting.startswith(b"220 mx.pli.test Pli ESMTP")


async def test_ehlo_advertises_the_extensions(world: SmtpWorld) -> None:
    def attempt():
        client = submission_session(world)
        try:
            return client.esmtp_features
        finally:
            client.close()

    features = await in_thread(attempt)
    for name in ("size", "8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes", "auth"):
        assert name in features
    assert features["size"] == str(world.limits.max_message_size)
    assert features["auth"].split() == ["LOGIN", "PLAIN"]


async def test_bad_input_on_submission_changes_nothing(world: SmtpWorld) -> None:
    def attempt():
        client = submission_session(world)
        try:
            client.login(str(DOCTOR), world.app_passwords[DOCTOR])
            client.docmd(f"MAIL FROM:<{DOCTOR}>")
            client.docmd(f"RCPT TO:<{PATIENT}>")
            return raw_data(
                client, note(DOCTOR, PATIENT, body="x\n.\nMAIL FROM:<y>\r\n") + b".\r\n"
            )
        finally:
            client.close()

    assert await in_thread(attempt) == (
        550,
        b"5.5.2 Bare CR or LF in message data (RFC 5321 \xc2\xa72.3.8)",
    )
    assert await world.everything() == []


async def test_an_unexpected_error_is_a_temporary_failure_without_its_text() -> None:
    from gateway_smtp.common import handle_exception  # noqa: PLC0415

    reply = await handle_exception(RuntimeError("/srv/pli/secret detail"))
    assert reply == "451 4.3.0 Local error in processing"


def test_auth_failures_are_counted_in_bounded_memory() -> None:
    from gateway_smtp.limits import AuthFailures  # noqa: PLC0415

    failures = AuthFailures()
    for i in range(25_000):
        failures.record(f"10.0.{i // 256}.{i % 256}")
    assert failures.record("10.0.0.0") >= 1
    assert failures.total == 25_001
    assert len(failures.by_peer) <= 10_000


async def test_framing_edge_cases_of_the_data_reader(world: SmtpWorld) -> None:
    # Empty data, and data that is one empty line: both end at the first CRLF.CRLF.
    for payload in (b".\r\n", b"\r\n.\r\n"):
        data, noop = await in_thread(transaction, world, payload)
        assert data == (554, b"5.6.0 Message has no single From: header")
        assert noop == (250, b"2.0.0 OK")
    assert await world.everything() == []
    # Transparency: a leading dot is removed from each line, once; lines of 998 octets pass.
    longest = "y" * 998
    body = f"..first\r\n...second\r\n.\r\n{longest}\r\n.{longest[1:]}\r\nend\r\n"
    payload = note(PEER_SENDER, DOCTOR, body="").replace(b"Subject: Avis", b"Subject: dots")
    payload = payload.replace(
        b"\r\n\r\n", b"\r\n\r\n" + body.replace("\r\n.\r\n", "\r\n..\r\n").encode(), 1
    )
    data, _ = await in_thread(transaction, world, payload + b".\r\n")
    assert data[0] == 250
    [record] = await world.inbox(DOCTOR)
    raw = (await world.opened(DOCTOR, record.uid)).raw
    assert (
        f"\r\n\r\n.first\r\n..second\r\n.\r\n{longest}\r\n{longest[1:]}\r\nend\r\n".encode() in raw
    )


def test_header_edits_cannot_inject_fields() -> None:
    from gateway_smtp.common import formatted_from, prepend_headers, replace_header  # noqa: PLC0415

    label = formatted_from("Dr_X\r\nBcc: evil@x.test", Address.parse("a@b.test"))
    folded = b"From: someone\r\n <a@b.test>\r\nSubject: s\r\n\r\nbody\r\n"
    edited = replace_header(folded, "From", label)
    assert edited == b'From: "Dr_X Bcc: evil@x.test" <a@b.test>\r\nSubject: s\r\n\r\nbody\r\n'
    assert prepend_headers(b"X: y\r\n\r\n", [("Received", "a\r\nBcc: b")]).startswith(
        b"Received: a Bcc: b\r\nX: y"
    )
