"""``receipt``: delivery status notifications and disposition notifications.

Both are RFC 6522 ``multipart/report`` messages (RFC 6522 obsoletes RFC 3462): with
``report-type=delivery-status`` they carry an RFC 3464 DSN (:mod:`messaging.dsn`), with
``report-type=disposition-notification`` an RFC 8098 MDN (:mod:`messaging.mdn`), the
national integration receipt with its codes 900-906 included. Any mail client shows them;
this module recognises them and reads either into its typed value.
"""

from __future__ import annotations

from email.message import Message

from messaging import dsn, mdn
from messaging._compose import parse_lenient
from messaging.dsn import DeliveryReport, build_dsn, parse_dsn
from messaging.errors import InvalidMessage
from messaging.kinds.base import KindSpec
from messaging.mdn import (
    DispositionNotification,
    build_mdn,
    parse_mdn,
    should_send_automatic_mdn,
)
from messaging.types import MessageKind

__all__ = [
    "SPEC",
    "Receipt",
    "build_dsn",
    "build_mdn",
    "parse_dsn",
    "parse_mdn",
    "parse_receipt",
    "recognises",
    "should_send_automatic_mdn",
]

Receipt = DeliveryReport | DispositionNotification
_REPORT_TYPES = (dsn.REPORT_TYPE, mdn.REPORT_TYPE)


def _report_type(msg: Message) -> str | None:
    if msg.get_content_type() != "multipart/report":
        return None
    value = str(msg.get_param("report-type", "")).lower()
    return value if value in _REPORT_TYPES else None


def recognises(msg: Message) -> bool:
    """A ``multipart/report`` of a delivery status or a disposition (RFC 6522 §3)."""
    try:
        return _report_type(msg) is not None
    except Exception:  # classification must never crash on a hostile message
        return False


def parse_receipt(raw: bytes) -> Receipt:
    """The typed receipt a report carries, whichever of the two it is."""
    report_type = _report_type(parse_lenient(raw))
    if report_type == dsn.REPORT_TYPE:
        return parse_dsn(raw)
    if report_type == mdn.REPORT_TYPE:
        return parse_mdn(raw)
    raise InvalidMessage("not a delivery or disposition report", "receipt-not-report")


SPEC = KindSpec(
    kind=MessageKind.RECEIPT,
    schema_version=1,
    description_fr="Accusé de réception",
    description_en="Receipt",
    recognises=recognises,
)
