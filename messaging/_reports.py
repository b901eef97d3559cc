"""What delivery reports (:mod:`messaging.dsn`) and MDNs (:mod:`messaging.mdn`) share (private).

Both are an RFC 6522 ``multipart/report``: a human-readable part, the machine-readable report
(``message/delivery-status``, RFC 3464; ``message/disposition-notification``, RFC 8098) and the
returned headers of the original message. Their report fields are ``Name: value`` lines, some of
them typed (``rfc822; a@b``, ``dns; mx.example``). Refusal codes carry the module's prefix
(``dsn-``, ``mdn-``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage, Message
from typing import TypeVar

from messaging._compose import new_root, parse_lenient, returned_headers_part, text_part
from messaging.errors import InvalidAddress, InvalidMessage
from messaging.mime import new_message_id
from messaging.types import Address, MessageKind

_R = TypeVar("_R")


def report_root(
    *,
    sender: Address,
    recipient: Address,
    subject: str,
    message_id: str | None,
    date: datetime,
    original_message_id: str,
    automatic: bool,
) -> EmailMessage:
    """The root of a report, answering ``original_message_id`` when it is known."""
    extra: list[tuple[str, str]] = []
    if automatic:
        extra.append(("Auto-Submitted", "auto-replied"))  # RFC 3834 §5: never answer it
    if original_message_id:
        extra += [("In-Reply-To", original_message_id)]
        extra += [("References", original_message_id)]
    return new_root(
        sender=sender,
        sender_name="",
        recipients=[recipient],
        subject=subject,
        message_id=message_id or new_message_id(sender.domain),
        date=date,
        kind=MessageKind.RECEIPT,
        extra_headers=extra,
    )


def finish_report(
    root: EmailMessage,
    *,
    report_type: str,
    text: str,
    report: EmailMessage,
    original_message_id: str,
    original_subject: str,
) -> bytes:
    """``root`` made the ``multipart/report`` of ``text``, ``report`` and the returned headers."""
    root.set_type("multipart/report")
    root.set_param("report-type", report_type)
    root.attach(text_part(text))
    root.attach(report)
    root.attach(returned_headers_part(original_message_id, original_subject))
    return root.as_bytes()


def read_report(raw: bytes, parse: Callable[[EmailMessage], _R], what: str) -> _R:
    """``parse`` of ``raw``; anything but :class:`InvalidMessage` is ``mime-malformed``."""
    msg = parse_lenient(raw)
    try:
        return parse(msg)
    except InvalidMessage:
        raise
    except Exception as exc:  # hostile structure the checks did not foresee
        raise InvalidMessage(f"unreadable {what}: {exc}", "mime-malformed") from exc


def report_part(
    msg: EmailMessage,
    *,
    report_type: str,
    part_type: str,
    not_report: InvalidMessage,
    not_one: InvalidMessage,
) -> Message:
    """The one ``part_type`` part of a ``multipart/report`` of ``report_type``.

    Raises ``not_report`` when ``msg`` is not such a report, ``not_one`` when it has no such
    part or several."""
    if (
        msg.get_content_type() != "multipart/report"
        or str(msg.get_param("report-type", "")).lower() != report_type
    ):
        raise not_report
    parts = msg.get_payload()
    found = [
        p
        for p in (parts if isinstance(parts, list) else [])
        if isinstance(p, Message) and p.get_content_type() == part_type
    ]
    if len(found) != 1:
        raise not_one
    return found[0]


def one_field(block: Message, name: str, *, prefix: str, required: bool = False) -> str:
    """The unfolded value of field ``name`` of ``block``; at most one, "" when absent."""
    values = block.get_all(name) or []
    if len(values) > 1:
        raise InvalidMessage(f"{name} appears more than once", f"{prefix}-invalid-field")
    if not values:
        if required:
            raise InvalidMessage(f"{name} is required", f"{prefix}-missing-field")
        return ""
    return " ".join(str(values[0]).split())


def typed_value(value: str) -> str:
    """The value of a ``type; value`` field (``rfc822; a@b``, ``dns; mx.example``)."""
    _, sep, rest = value.partition(";")
    return rest.strip() if sep else value.strip()


def typed_address(value: str, name: str, *, prefix: str) -> Address:
    """The address of a ``rfc822; a@b`` field ``name``."""
    try:
        return Address.parse(typed_value(value))
    except InvalidAddress as exc:
        raise InvalidMessage(f"{name}: {exc}", f"{prefix}-invalid-field") from exc
