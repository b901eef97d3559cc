"""Shared MIME plumbing of the appointment, receipt and notification kinds (private).

RFC 5322 and RFC 2045-2049 for the envelope headers and parts; RFC 6522 (which obsoletes
RFC 3462) for ``text/rfc822-headers``, the third part of a ``multipart/report``; RFC 3834
for ``Auto-Submitted``. Every message written here carries the headers :mod:`messaging.mime`
writes (``Message-ID``, ``Date``, ``X-MSS-NIL``, ``X-Pli-Type``), so the kinds look the same
to every reader, whichever module built them.

Implementation notes:

- Human-readable parts are UTF-8 in quoted-printable: they stay 7-bit clean, so a relay
  without 8BITMIME never has to downgrade them (RFC 6152 is not assumed of every peer).
- Reading is tolerant (``policy.default``) because peers' mail has harmless defects; writing
  is checked against the strict policy by the tests.
- Every exception the standard parser may raise on hostile input is turned into
  :class:`~messaging.errors.InvalidMessage` here, once, with the code ``mime-malformed``.
"""

from __future__ import annotations

import email.policy
from collections.abc import Iterable
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime
from typing import Literal

from messaging.errors import InvalidMessage
from messaging.mime import KIND_HEADER, NIL_HEADER, PRODUCT_REFERENCE
from messaging.types import Address, MessageKind

__all__ = [
    "Lang",
    "LANGS",
    "POLICY",
    "check_lang",
    "check_line",
    "new_root",
    "text_part",
    "returned_headers_part",
    "read_returned_headers",
    "parse_lenient",
    "header_address",
    "format_when",
]

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")

POLICY = email.policy.SMTP.clone(max_line_length=78)
_LENIENT = email.policy.default


def check_lang(lang: str) -> Lang:
    """The language of a human-readable part; French unless English is asked for."""
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not one of {LANGS}")
    return lang


def check_line(value: str, *, field: str, code: str, limit: int = 998) -> str:
    """A value that goes into one header field: no line breaks (header injection), bounded.

    998 octets is the line limit of RFC 5322 §2.1.1; callers pass tighter limits.
    """
    if any(ch in value for ch in "\r\n\x00"):
        raise InvalidMessage(f"{field} may not contain line breaks", code)
    if len(value) > limit:
        raise InvalidMessage(f"{field} is longer than {limit} characters", code)
    return value


def new_root(
    *,
    sender: Address,
    sender_name: str,
    recipients: Iterable[Address],
    subject: str,
    message_id: str,
    date: datetime,
    kind: MessageKind,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> EmailMessage:
    """A message with the headers every Pli message carries (RFC 5322 §3.6)."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = HeaderAddress(sender_name, addr_spec=str(sender))
    msg["To"] = [HeaderAddress("", addr_spec=str(r)) for r in recipients]
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"
    msg[NIL_HEADER] = PRODUCT_REFERENCE
    msg[KIND_HEADER] = kind.value
    for name, value in extra_headers:
        msg[name] = value
    return msg


def text_part(
    text: str, *, subtype: str = "plain", params: dict[str, str] | None = None
) -> EmailMessage:
    """A UTF-8, quoted-printable text part without its own MIME-Version."""
    part = EmailMessage(policy=POLICY)
    part.set_content(
        text, subtype=subtype, charset="utf-8", cte="quoted-printable", params=params or {}
    )
    # MIME-Version belongs to the top-level header only (RFC 2045 §4).
    del part["MIME-Version"]
    return part


def returned_headers_part(message_id: str, subject: str) -> EmailMessage:
    """``text/rfc822-headers`` (RFC 6522 §4) naming the original message.

    Only the Message-ID and the Subject travel back: enough for the original sender to
    recognise their message, nothing of its body.
    """
    head = Message(policy=POLICY)
    if message_id:
        head["Message-ID"] = message_id
    if subject:
        head["Subject"] = subject
    block = head.as_bytes(policy=POLICY)
    part = EmailMessage(policy=POLICY)
    part.set_content(block, maintype="text", subtype="rfc822-headers", cte="7bit")
    del part["MIME-Version"]
    return part


def read_returned_headers(report: Message) -> tuple[str, str]:
    """The original Message-ID and Subject from the third part of a report, if any.

    Peers return either ``text/rfc822-headers`` or the whole ``message/rfc822``; both are
    read, and a report without either returns empty strings.
    """
    parts = report.get_payload()
    if not isinstance(parts, list):
        return "", ""
    for part in parts[2:]:
        if not isinstance(part, Message):
            continue
        ctype = part.get_content_type()
        head: Message | None = None
        if ctype == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                head = parse_lenient(payload)
        elif ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                head = inner[0]
        if head is not None:
            return _one_line(head.get("Message-ID", "")), _one_line(head.get("Subject", ""))
    return "", ""


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def parse_lenient(raw: bytes) -> EmailMessage:
    """Parse with the tolerant policy; anything the parser chokes on is ``mime-malformed``."""
    try:
        msg = BytesParser(policy=_LENIENT).parsebytes(raw)
    except Exception as exc:  # the stdlib parser is not documented to raise; be sure
        raise InvalidMessage(f"not a MIME message: {exc}", "mime-malformed") from exc
    if not isinstance(msg, EmailMessage):  # pragma: no cover - policy.default guarantees it
        raise InvalidMessage("not a MIME message", "mime-malformed")
    return msg


def header_address(msg: Message, name: str, *, code: str) -> Address:
    """The one address of a From/To header, or :class:`InvalidMessage` with ``code``."""
    try:
        header = msg.get(name)
        addresses = getattr(header, "addresses", None)
        if header is None or not addresses or len(addresses) != 1:
            raise InvalidMessage(f"{name} must name exactly one address", code)
        return Address.parse(str(addresses[0].addr_spec))
    except InvalidMessage:
        raise
    except Exception as exc:  # header parsing of hostile input raises assorted errors
        raise InvalidMessage(f"{name} is not a valid address", code) from exc


_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_DAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _day(value: datetime, lang: Lang) -> str:
    # Tables, not locale.setlocale: the process locale is global and rarely French on servers.
    if lang == "fr":
        first = "1er" if value.day == 1 else str(value.day)
        return f"{_DAYS_FR[value.weekday()]} {first} {_MONTHS_FR[value.month - 1]} {value.year}"
    return f"{_DAYS_EN[value.weekday()]} {value.day} {_MONTHS_EN[value.month - 1]} {value.year}"


def format_when(start: datetime, end: datetime | None, tzid: str, lang: Lang) -> str:
    """``mardi 1er décembre 2026, de 09:30 à 10:00 (Europe/Paris)`` and its English twin."""
    if end is None:
        when = (
            f"{_day(start, lang)}, {start:%H:%M}"
            if lang == "en"
            else (f"{_day(start, lang)} à {start:%H:%M}")
        )
    elif end.date() == start.date():
        when = (
            f"{_day(start, lang)}, de {start:%H:%M} à {end:%H:%M}"
            if lang == "fr"
            else f"{_day(start, lang)}, {start:%H:%M} to {end:%H:%M}"
        )
    else:
        when = (
            f"du {_day(start, lang)} {start:%H:%M} au {_day(end, lang)} {end:%H:%M}"
            if lang == "fr"
            else f"from {_day(start, lang)} {start:%H:%M} to {_day(end, lang)} {end:%H:%M}"
        )
    return f"{when} ({tzid})"
