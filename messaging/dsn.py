"""Delivery status notifications (bounces and delivery reports).

RFC 3464 (the ``message/delivery-status`` format) inside an RFC 6522 ``multipart/report;
report-type=delivery-status`` (RFC 6522 obsoletes RFC 3462), with RFC 3463 enhanced status
codes. A report Pli writes has three parts::

    multipart/report; report-type=delivery-status
    ├── text/plain                  what happened, in French or English
    ├── message/delivery-status     one per-message block, one block per recipient
    └── text/rfc822-headers         Message-ID and Subject of the original, nothing more

DOMAIN.md asks that a bounce tells its cause to a patient's correspondent: mailbox closed,
patient not found, invalid address, over 25 MB. :class:`BounceReason` names these causes,
gives each its RFC 3463 code, and travels in ``Diagnostic-Code: x-pli; <reason>`` so that a
Pli reader recovers the cause exactly while other readers still see a standard code.

Implementation notes: report fields are US-ASCII (RFC 3464 §2.1; the UTF-8 variant of
RFC 6533 is not written); no field may contain a line break (header injection); the status
class must agree with the action (RFC 3464 §2.3.4: ``failed`` is 5.x.x, ``delayed`` 4.x.x,
the others 2.x.x).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.utils import format_datetime, parsedate_to_datetime
from enum import StrEnum

from messaging._compose import (
    POLICY,
    Lang,
    check_lang,
    check_line,
    header_address,
    read_returned_headers,
)
from messaging._reports import (
    finish_report,
    one_field,
    read_report,
    report_part,
    report_root,
    typed_address,
    typed_value,
)
from messaging.errors import InvalidMessage
from messaging.types import Address

__all__ = [
    "BounceReason",
    "DeliveryReport",
    "DsnAction",
    "RecipientStatus",
    "REPORT_TYPE",
    "bounce",
    "build_dsn",
    "parse_dsn",
    "render_text",
]

REPORT_TYPE = "delivery-status"
_STATUS_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
_PLI_DIAGNOSTIC = "x-pli"


class DsnAction(StrEnum):
    """RFC 3464 §2.3.3."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"


_STATUS_CLASS = {
    DsnAction.FAILED: "5",
    DsnAction.DELAYED: "4",
    DsnAction.DELIVERED: "2",
    DsnAction.RELAYED: "2",
    DsnAction.EXPANDED: "2",
}


class BounceReason(StrEnum):
    """The causes a bounce must tell (DOMAIN.md, "Patients")."""

    MAILBOX_CLOSED = "mailbox-closed"
    PATIENT_NOT_FOUND = "patient-not-found"
    INVALID_ADDRESS = "invalid-address"
    TOO_LARGE = "too-large"

    @property
    def status(self) -> str:
        """The RFC 3463 code: X.2.1 mailbox disabled, X.1.1 bad mailbox, X.1.3 bad syntax,
        X.3.4 message too big for the system."""
        return _BOUNCES[self][0]

    def label(self, lang: Lang = "fr") -> str:
        return _BOUNCES[self][1 if check_lang(lang) == "fr" else 2]


_BOUNCES: dict[BounceReason, tuple[str, str, str]] = {
    BounceReason.MAILBOX_CLOSED: (
        "5.2.1",
        "la boîte aux lettres est fermée",
        "the mailbox is closed",
    ),
    BounceReason.PATIENT_NOT_FOUND: (
        "5.1.1",
        "aucun patient ne correspond à cette adresse",
        "no patient has this address",
    ),
    BounceReason.INVALID_ADDRESS: (
        "5.1.3",
        "l'adresse n'est pas valide",
        "the address is not valid",
    ),
    BounceReason.TOO_LARGE: (
        "5.3.4",
        "le message dépasse 25 Mo",
        "the message is larger than 25 MB",
    ),
}


def _field(value: str, name: str) -> str:
    check_line(value, field=name, code="dsn-invalid-field", limit=900)
    if not value.isascii():
        raise InvalidMessage(f"{name} must be US-ASCII (RFC 3464 §2.1)", "dsn-invalid-field")
    return value


def _date(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidMessage(f"{name} has no time zone", "dsn-invalid-field")
    return value.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One per-recipient block (RFC 3464 §2.3)."""

    final_recipient: Address
    action: DsnAction
    status: str
    diagnostic: str = ""
    """The whole ``Diagnostic-Code`` value, e.g. ``smtp; 550 5.1.1 unknown user``."""
    original_recipient: Address | None = None
    remote_mta: str = ""
    last_attempt: datetime | None = None

    def __post_init__(self) -> None:
        match = _STATUS_RE.match(self.status)
        if match is None:
            raise InvalidMessage(
                f"{self.status!r} is not an RFC 3463 status code", "dsn-invalid-status"
            )
        if match.group(1) != _STATUS_CLASS[self.action]:
            raise InvalidMessage(
                f"status {self.status} does not fit action {self.action}",
                "dsn-status-action-mismatch",
            )
        _field(self.diagnostic, "Diagnostic-Code")
        _field(self.remote_mta, "Remote-MTA")
        # Fields unfold to single spaces when read back (RFC 5322 §2.2.3): store them so.
        object.__setattr__(self, "diagnostic", " ".join(self.diagnostic.split()))
        object.__setattr__(self, "remote_mta", self.remote_mta.strip())
        object.__setattr__(self, "last_attempt", _date(self.last_attempt, "Last-Attempt-Date"))

    @property
    def reason(self) -> BounceReason | None:
        """The cause, when Pli wrote it (``Diagnostic-Code: x-pli; <reason>``)."""
        kind, _, value = self.diagnostic.partition(";")
        if kind.strip().lower() != _PLI_DIAGNOSTIC:
            return None
        try:
            return BounceReason(value.strip())
        except ValueError:
            return None


def bounce(
    recipient: Address,
    reason: BounceReason,
    *,
    last_attempt: datetime | None = None,
    original_recipient: Address | None = None,
) -> RecipientStatus:
    """The failed status of one recipient for one of the causes of DOMAIN.md."""
    return RecipientStatus(
        final_recipient=recipient,
        action=DsnAction.FAILED,
        status=reason.status,
        diagnostic=f"{_PLI_DIAGNOSTIC}; {reason.value}",
        original_recipient=original_recipient,
        last_attempt=last_attempt,
    )


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A delivery status notification, from ``sender`` (the reporting system's address) to
    ``recipient`` (the original message's sender)."""

    sender: Address
    recipient: Address
    reporting_mta: str
    recipients: tuple[RecipientStatus, ...]
    original_message_id: str = ""
    original_subject: str = ""
    original_envelope_id: str = ""
    arrival_date: datetime | None = None

    def __post_init__(self) -> None:
        if not self.recipients:
            raise InvalidMessage("a delivery report names a recipient", "dsn-no-recipient")
        if not self.reporting_mta.strip():
            raise InvalidMessage("Reporting-MTA is required", "dsn-missing-field")
        _field(self.reporting_mta, "Reporting-MTA")
        _field(self.original_envelope_id, "Original-Envelope-Id")
        check_line(self.original_message_id, field="Message-ID", code="dsn-invalid-field")
        check_line(self.original_subject, field="Subject", code="dsn-invalid-field")
        # Headers unfold to single spaces when read back; store the values that way.
        object.__setattr__(self, "original_subject", " ".join(self.original_subject.split()))
        object.__setattr__(self, "reporting_mta", self.reporting_mta.strip())
        object.__setattr__(self, "original_envelope_id", self.original_envelope_id.strip())
        object.__setattr__(self, "arrival_date", _date(self.arrival_date, "Arrival-Date"))


_ACTION_FR = {
    DsnAction.FAILED: "non remis",
    DsnAction.DELAYED: "remise retardée, nouvel essai en cours",
    DsnAction.DELIVERED: "remis",
    DsnAction.RELAYED: "transmis à un autre système, sans accusé de remise",
    DsnAction.EXPANDED: "remis et redistribué",
}
_ACTION_EN = {
    DsnAction.FAILED: "not delivered",
    DsnAction.DELAYED: "delayed, still trying",
    DsnAction.DELIVERED: "delivered",
    DsnAction.RELAYED: "relayed to another system without delivery report",
    DsnAction.EXPANDED: "delivered and expanded",
}


def _overall(report: DeliveryReport) -> DsnAction:
    actions = {r.action for r in report.recipients}
    for worst in (DsnAction.FAILED, DsnAction.DELAYED):
        if worst in actions:
            return worst
    return DsnAction.DELIVERED


def _subject(report: DeliveryReport, lang: Lang) -> str:
    words = {
        "fr": {DsnAction.FAILED: "Non remis", DsnAction.DELAYED: "Retardé"},
        "en": {DsnAction.FAILED: "Undelivered", DsnAction.DELAYED: "Delayed"},
    }[lang]
    head = words.get(_overall(report), "Remis" if lang == "fr" else "Delivered")
    if not report.original_subject:
        return head
    return (
        f"{head} : {report.original_subject}"
        if lang == "fr"
        else (f"{head}: {report.original_subject}")
    )


def render_text(report: DeliveryReport, lang: Lang = "fr") -> str:
    """The human-readable part (RFC 6522 §3, first part)."""
    fr = check_lang(lang) == "fr"
    subject = report.original_subject
    if fr:
        lines = [
            f"Ceci est un message automatique de {report.reporting_mta}.",
            "",
            f"Votre message « {subject} » :" if subject else "Votre message :",
        ]
    else:
        lines = [
            f"This is an automatic message from {report.reporting_mta}.",
            "",
            f'Your message "{subject}":' if subject else "Your message:",
        ]
    for r in report.recipients:
        what = (_ACTION_FR if fr else _ACTION_EN)[r.action]
        why = r.reason.label(lang) if r.reason is not None else ""
        detail = f" — {why}" if why else ""
        lines.append(
            f"  - {r.final_recipient} : {what}{detail} ({r.status})"
            if fr
            else (f"  - {r.final_recipient}: {what}{detail} ({r.status})")
        )
    return "\n".join(lines) + "\n"


def _block(fields: list[tuple[str, str]]) -> Message:
    block = Message(policy=POLICY)
    for name, value in fields:
        block[name] = value
    return block


def build_dsn(
    report: DeliveryReport,
    *,
    message_id: str | None = None,
    date: datetime,
    lang: Lang = "fr",
) -> bytes:
    """The ``multipart/report`` message of a delivery report (RFC 3464 §2, RFC 6522)."""
    lang = check_lang(lang)
    root = report_root(
        sender=report.sender,
        recipient=report.recipient,
        subject=_subject(report, lang),
        message_id=message_id,
        date=date,
        original_message_id=report.original_message_id,
        automatic=True,
    )
    per_message: list[tuple[str, str]] = []
    if report.original_envelope_id:
        per_message.append(("Original-Envelope-Id", report.original_envelope_id))
    per_message.append(("Reporting-MTA", f"dns; {report.reporting_mta}"))
    if report.arrival_date is not None:
        per_message.append(("Arrival-Date", format_datetime(report.arrival_date)))
    blocks: list[Message | str] = [_block(per_message)]
    for r in report.recipients:
        fields: list[tuple[str, str]] = []
        if r.original_recipient is not None:
            fields.append(("Original-Recipient", f"rfc822; {r.original_recipient}"))
        fields += [
            ("Final-Recipient", f"rfc822; {r.final_recipient}"),
            ("Action", r.action.value),
            ("Status", r.status),
        ]
        if r.remote_mta:
            fields.append(("Remote-MTA", f"dns; {r.remote_mta}"))
        if r.diagnostic:
            fields.append(("Diagnostic-Code", r.diagnostic))
        if r.last_attempt is not None:
            fields.append(("Last-Attempt-Date", format_datetime(r.last_attempt)))
        blocks.append(_block(fields))
    status = EmailMessage(policy=POLICY)
    status.set_type("message/delivery-status")
    status.set_payload(blocks)
    del status["MIME-Version"]
    return finish_report(
        root,
        report_type=REPORT_TYPE,
        text=render_text(report, lang),
        report=status,
        original_message_id=report.original_message_id,
        original_subject=report.original_subject,
    )


def _value(block: Message, name: str, *, required: bool = False) -> str:
    return one_field(block, name, prefix="dsn", required=required)


def _address(value: str, name: str) -> Address:
    return typed_address(value, name, prefix="dsn")


def _parse_date(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidMessage(f"{name} is not a date", "dsn-invalid-field") from exc
    # "-0000" means UTC with no claim about the local zone (RFC 5322 §3.3).
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _recipient(block: Message) -> RecipientStatus:
    action = _value(block, "Action", required=True).lower()
    try:
        dsn_action = DsnAction(action)
    except ValueError as exc:
        raise InvalidMessage(f"unknown Action {action!r}", "dsn-invalid-field") from exc
    original = _value(block, "Original-Recipient")
    status_words = _value(block, "Status", required=True).split()
    return RecipientStatus(
        final_recipient=_address(
            _value(block, "Final-Recipient", required=True), "Final-Recipient"
        ),
        action=dsn_action,
        # A status may be followed by a comment: "5.1.1 (bad mailbox)".
        status=status_words[0] if status_words else "",
        diagnostic=_value(block, "Diagnostic-Code"),
        original_recipient=_address(original, "Original-Recipient") if original else None,
        remote_mta=typed_value(_value(block, "Remote-MTA")),
        last_attempt=_parse_date(_value(block, "Last-Attempt-Date"), "Last-Attempt-Date"),
    )


def parse_dsn(raw: bytes) -> DeliveryReport:
    """The delivery report a ``multipart/report; report-type=delivery-status`` carries."""
    return read_report(raw, _parse, "delivery report")


def _parse(msg: EmailMessage) -> DeliveryReport:
    status = report_part(
        msg,
        report_type=REPORT_TYPE,
        part_type="message/delivery-status",
        not_report=InvalidMessage("not a delivery status notification", "dsn-not-report"),
        not_one=InvalidMessage(
            "a delivery report has one message/delivery-status part", "dsn-missing-status"
        ),
    )
    payload = status.get_payload()
    blocks = [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
    if not isinstance(payload, list) or len(blocks) != len(payload):
        raise InvalidMessage("unreadable message/delivery-status", "dsn-missing-status")
    if len(blocks) < 2:
        raise InvalidMessage("a delivery report names a recipient", "dsn-no-recipient")
    per_message = blocks[0]
    message_id, subject = read_returned_headers(msg)
    return DeliveryReport(
        sender=header_address(msg, "From", code="receipt-invalid-header"),
        recipient=header_address(msg, "To", code="receipt-invalid-header"),
        reporting_mta=typed_value(_value(per_message, "Reporting-MTA", required=True)),
        recipients=tuple(_recipient(b) for b in blocks[1:]),
        original_message_id=message_id,
        original_subject=subject,
        original_envelope_id=_value(per_message, "Original-Envelope-Id"),
        arrival_date=_parse_date(_value(per_message, "Arrival-Date"), "Arrival-Date"),
    )
