"""What the MX and submission handlers share: EHLO extensions, address checks, trace lines,
header edits done on bytes, and the national integration MDN of APP mailboxes.

RFC 5321 §4.4 (``Received`` and ``Return-Path`` trace fields), RFC 6531 (UTF-8 addresses only
with SMTPUTF8), RFC 8098 (MDN) with DOMAIN.md's national integration receipt.

Header edits (:func:`prepend_headers`, :func:`replace_header`) work on the message bytes
instead of re-serialising a parsed message: what the sender wrote reaches the recipient byte
for byte, except the fields we add or replace.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

import crypto
from gateway_smtp.hygiene import header_section
from gateway_smtp.replies import R, Reply, reply_for_error
from messaging import DeliveryService, MessageKind, Submitted
from messaging.errors import InvalidAddress, PliError
from messaging.gateways import GatewaySupport
from messaging.mdn import build_mdn, integration_receipt, should_send_automatic_mdn
from messaging.types import Address, MailboxKind

__all__ = [
    "NULL_SENDER",
    "advertise",
    "parse_path",
    "prepend_headers",
    "replace_header",
    "header_values",
    "answer_integration_mdn",
]

log = logging.getLogger("gateway_smtp")

NULL_SENDER = "<>"
_EXTENSIONS = ("250-PIPELINING", "250-ENHANCEDSTATUSCODES")


def advertise(responses: list[str], *, auth: bool, dsn: bool = False) -> list[str]:
    """EHLO lines: aiosmtpd's, plus PIPELINING and ENHANCEDSTATUSCODES (and DSN); AUTH only
    when used."""
    lines = [r for r in responses if auth or not r.startswith("250-AUTH")]
    extra = [*_EXTENSIONS, "250-DSN"] if dsn else list(_EXTENSIONS)
    # The last line is "250 HELP": the extensions go before it.
    return [*lines[:-1], *extra, lines[-1]]


def parse_path(address: str, *, smtputf8: bool) -> Address | Reply:
    """An envelope address, or the refusal: malformed, or UTF-8 without SMTPUTF8."""
    if not address.isascii():
        try:
            address.encode("utf-8")
        except UnicodeEncodeError:  # surrogate escapes: the client sent invalid UTF-8
            return R.BAD_ADDRESS
        if not smtputf8:
            return R.EIGHTBIT_ADDRESS
    try:
        return Address.parse(address)
    except InvalidAddress:
        return R.BAD_ADDRESS


def header_values(data: bytes, name: str) -> list[str]:
    """Unfolded values of header ``name`` (UTF-8, invalid bytes replaced)."""
    headers, _body = header_section(data)
    wanted = name.lower().encode()
    values: list[str] = []
    current: bytes | None = None
    for line in headers.split(b"\r\n"):
        if current is not None and line[:1] in (b" ", b"\t"):
            current += line
            continue
        if current is not None:
            values.append(current.decode("utf-8", "replace").strip())
            current = None
        field, colon, value = line.partition(b":")
        if colon and field.strip().lower() == wanted:
            current = value
    if current is not None:
        values.append(current.decode("utf-8", "replace").strip())
    return values


def prepend_headers(data: bytes, fields: Iterable[tuple[str, str]]) -> bytes:
    """``data`` with ``fields`` added at the top (trace fields go first, RFC 5321 §4.4)."""
    head = b"".join(f"{name}: {_one_line(value)}\r\n".encode() for name, value in fields)
    return head + data


def replace_header(data: bytes, name: str, value: str) -> bytes:
    """``data`` with every ``name`` field removed and one ``name: value`` added on top."""
    headers, body = header_section(data)
    wanted = name.lower().encode()
    kept: list[bytes] = []
    skipping = False
    for line in headers.split(b"\r\n"):
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        field, colon, _rest = line.partition(b":")
        skipping = bool(colon) and field.strip().lower() == wanted
        if not skipping and line:
            kept.append(line)
    rebuilt = b"".join(line + b"\r\n" for line in kept)
    tail = b"\r\n" + body if body or data.find(b"\r\n\r\n") >= 0 else b""
    return prepend_headers(rebuilt + tail, [(name, value)])


def formatted_from(label: str, address: Address) -> str:
    """``From:`` with the trust-space label as display name (RFC 2047-encoded if needed)."""
    return email.utils.formataddr((label, str(address)), charset="utf-8")


def _one_line(value: str) -> str:
    # A header value with a line break would forge fields of its own (header injection).
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def received_field(
    *, helo: str, peer_host: str, hostname: str, protocol: str, session_id: str, when: datetime
) -> str:
    return (
        f"from {_one_line(helo) or 'unknown'} ([{peer_host}]) by {hostname} (Pli) "
        f"with {protocol} id {session_id}; {email.utils.format_datetime(when)}"
    )


async def refuse(
    support: GatewaySupport,
    reply: Reply,
    *,
    actor: str,
    subject: str,
    stage: str,
    front: str,
    session_id: str,
) -> str:
    """Trace a refusal (never content) and return the reply line."""
    log.info(
        "smtp refused",
        extra={"front": front, "stage": stage, "code": reply.code, "reason": reply.reason},
    )
    await support.trace(
        actor,
        f"smtp-{front}-refuse",
        subject,
        {
            "stage": stage,
            "reply": f"{reply.code} {reply.enhanced}",
            "reason": reply.reason,
            "session": session_id,
        },
    )
    return str(reply)


async def handle_exception(error: Exception) -> str:
    """aiosmtpd's last resort: a temporary failure, never the exception's text."""
    log.error(
        "unexpected error in an SMTP session",
        exc_info=(type(error), error, error.__traceback__),
    )
    return str(R.LOCAL_ERROR)


def error_reply(error: Exception) -> Reply:
    if isinstance(error, PliError):
        return reply_for_error(error)
    log.exception("unexpected error in an SMTP session")
    return R.LOCAL_ERROR


async def answer_integration_mdn(
    delivery: DeliveryService,
    support: GatewaySupport,
    *,
    submitted: Submitted,
    recipients: Sequence[Address],
    message: bytes,
    now: datetime,
) -> int:
    """Send the national ``processed`` MDN from each APP recipient of a document.

    Only when the message asks for one and RFC 8098 §2.1 allows an automatic answer
    (``Disposition-Notification-To`` is the ``Return-Path``). The receipt is a new message
    from the APP mailbox, sealed under the operator key like any gateway message, and goes
    through the delivery service: local, or queued for the peer when relaying is configured.
    A failure here never undoes the delivery already acknowledged; it is logged.
    """
    if submitted.kind is not MessageKind.DOCUMENT:
        return 0
    headers = [
        (name, value)
        for name in ("Disposition-Notification-To", "Return-Path", "Content-Type")
        for value in header_values(message, name)
    ]
    if not should_send_automatic_mdn(headers):
        return 0
    notify_values = header_values(message, "Disposition-Notification-To")
    addresses = [a for _n, a in email.utils.getaddresses(notify_values) if a]
    message_ids = header_values(message, "Message-ID")
    subjects = header_values(message, "Subject")
    sent = 0
    for recipient in recipients:
        account = await support.account(recipient)
        if account is None or account.kind is not MailboxKind.APP:
            continue
        try:
            notify = Address.parse(addresses[0])
            mdn = integration_receipt(
                system=recipient,
                notify=notify,
                original_message_id=message_ids[0] if message_ids else "",
                original_subject=subjects[0] if subjects else "",
            )
            raw = build_mdn(mdn, date=now)
            await delivery.receive(
                recipient,
                [notify],
                raw,
                gateway=crypto.GatewayInfo(peer="", tls=""),
                kind=MessageKind.RECEIPT,
            )
            sent += 1
        except (PliError, IndexError, ValueError) as error:
            log.warning(
                "integration MDN not sent",
                extra={"system": str(recipient), "error": type(error).__name__},
            )
    return sent
