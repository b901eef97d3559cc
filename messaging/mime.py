"""Building and reading the RFC 5322 / MIME messages that travel inside envelopes.

RFC 5322 (Internet Message Format), RFC 2045-2049 (MIME), RFC 2047 / RFC 2231 (non-ASCII
header words and parameters), RFC 6532 (UTF-8 headers). Every message Pli writes carries a
``Message-ID``, a ``Date``, UTF-8 text parts and the ``X-MSS-NIL`` product reference that the
trust space requires (DOMAIN.md, "Message format"). ``X-Pli-Type`` names the typed message
so that any reader can recover the type without the routing header.
"""

from __future__ import annotations

import email.policy
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime

from messaging.content import detect_type
from messaging.errors import InvalidMessage
from messaging.types import Address, MessageKind

__all__ = [
    "Attachment",
    "Draft",
    "ReadMessage",
    "build_message",
    "parse_message",
    "new_message_id",
    "KIND_HEADER",
    "NIL_HEADER",
]

KIND_HEADER = "X-Pli-Type"
NIL_HEADER = "X-MSS-NIL"
PRODUCT_REFERENCE = "Pli/0.1"

_POLICY = email.policy.SMTP.clone(max_line_length=78)
_STRICT = email.policy.default.clone(raise_on_defect=True)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    data: bytes
    declared_type: str | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """What a sender writes: the plain parts of a typed message."""

    sender: Address
    recipients: tuple[Address, ...]
    subject: str
    body: str
    kind: MessageKind = MessageKind.NOTE
    sender_name: str = ""
    attachments: tuple[Attachment, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ReadMessage:
    """The parts of an opened message that readers show."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    date: str
    kind: str
    body: str
    attachments: tuple[Attachment, ...]


def new_message_id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def build_message(draft: Draft, *, message_id: str, date: datetime) -> bytes:
    """The RFC 5322 bytes of a draft; attachments are typed by their content."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = HeaderAddress(draft.sender_name, addr_spec=str(draft.sender))
    msg["To"] = [HeaderAddress("", addr_spec=str(r)) for r in draft.recipients]
    msg["Subject"] = draft.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if draft.in_reply_to:
        msg["In-Reply-To"] = draft.in_reply_to
    if draft.references:
        msg["References"] = " ".join(draft.references)
    msg["MIME-Version"] = "1.0"
    msg[NIL_HEADER] = PRODUCT_REFERENCE
    msg[KIND_HEADER] = draft.kind.value
    for name, value in draft.extra_headers:
        msg[name] = value
    msg.set_content(draft.body, subtype="plain", charset="utf-8")
    for attachment in draft.attachments:
        actual = detect_type(attachment.data)
        if attachment.declared_type and attachment.declared_type != actual:
            raise InvalidMessage(
                f"attachment {attachment.filename!r} is declared {attachment.declared_type} "
                f"but its content is {actual}"
            )
        maintype, _, subtype = actual.partition("/")
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return msg.as_bytes()


def parse_message(raw: bytes) -> ReadMessage:
    """Read the parts readers show; tolerant of real-world defects, never crashes on them."""
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    if not isinstance(msg, EmailMessage):  # pragma: no cover - policy.default guarantees it
        raise InvalidMessage("not a MIME message")
    body_part = msg.get_body(preferencelist=("plain", "html"))
    body = ""
    if isinstance(body_part, EmailMessage):
        content = body_part.get_content()
        body = content if isinstance(content, str) else content.decode("utf-8", "replace")
        # The wire form uses CRLF (RFC 5322 §2.1); readers want the text's own lines.
        body = body.replace("\r\n", "\n")
    attachments: list[Attachment] = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        attachments.append(
            Attachment(part.get_filename() or "attachment", data, part.get_content_type())
        )
    return ReadMessage(
        message_id=str(msg.get("Message-ID", "")),
        sender=str(msg.get("From", "")),
        recipients=tuple(str(v) for v in msg.get_all("To", [])),
        subject=str(msg.get("Subject", "")),
        date=str(msg.get("Date", "")),
        kind=str(msg.get(KIND_HEADER, MessageKind.NOTE.value)),
        body=body,
        attachments=tuple(attachments),
    )
