"""The delivery reports the relay writes to a sender (RFC 3464 in RFC 6522, RFC 3461 §6).

Built with :func:`messaging.dsn.build_dsn`. ``RET=FULL`` (RFC 3461 §4.3) returns the whole
original as a ``message/rfc822`` part in place of its headers, up to ``full_max`` bytes
(beyond that, and with ``RET=HDRS`` or none, the headers only, as §4.3 allows). The
report's Message-ID is derived from the queue id and the event, so a report written twice
(the relay killed between writing it and forgetting the message) is recognisably the same.
"""

from __future__ import annotations

import email.policy
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser

from messaging.dsn import DeliveryReport, RecipientStatus, build_dsn
from messaging.outbound import OutboundMessage, Ret
from messaging.types import Address

__all__ = ["report_bytes", "original_subject"]


def original_subject(plaintext: bytes) -> str:
    head = plaintext.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    headers = BytesParser(policy=email.policy.default).parsebytes(head, headersonly=True)
    subject = str(headers.get("Subject", ""))
    return " ".join("".join(c if c.isprintable() else " " for c in subject).split())[:200]


def report_bytes(
    message: OutboundMessage,
    recipient: Address,
    statuses: list[RecipientStatus],
    *,
    plaintext: bytes,
    reporting_mta: str,
    postmaster: Address,
    event: str,
    now: datetime,
    full_max: int = 10 * 1024 * 1024,
) -> bytes:
    report = DeliveryReport(
        sender=postmaster,
        recipient=recipient,
        reporting_mta=reporting_mta,
        recipients=tuple(statuses),
        original_message_id=message.message_id,
        original_subject=original_subject(plaintext),
        original_envelope_id=message.envid,
        arrival_date=message.created_at,
    )
    raw = build_dsn(
        report,
        message_id=f"<{message.queue_id}.{event}@{postmaster.domain}>",
        date=now,
    )
    if message.ret is not Ret.FULL or len(plaintext) > full_max or event != "failed":
        return raw
    return _with_full_original(raw, plaintext)


def _with_full_original(raw: bytes, plaintext: bytes) -> bytes:
    root = BytesParser(policy=email.policy.SMTP).parsebytes(raw)
    assert isinstance(root, EmailMessage)  # noqa: S101 - EmailMessage with this policy
    parts = root.get_payload()
    assert isinstance(parts, list)  # noqa: S101 - a multipart/report we just built
    original = BytesParser(policy=email.policy.SMTP).parsebytes(plaintext)
    returned = EmailMessage(policy=email.policy.SMTP)
    returned.set_content(original)
    del returned["MIME-Version"]
    parts[-1] = returned
    return root.as_bytes()
