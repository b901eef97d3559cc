"""Message disposition notifications: read receipts and integration receipts.

RFC 8098 (``message/disposition-notification``) inside an RFC 6522 ``multipart/report;
report-type=disposition-notification`` (RFC 6522 obsoletes RFC 3462)::

    multipart/report; report-type=disposition-notification
    ├── text/plain                          what happened, in French or English
    ├── message/disposition-notification    Reporting-UA, Final-Recipient,
    │                                       Original-Message-ID, Disposition
    └── text/rfc822-headers                 Message-ID and Subject of the original

Two uses in the trust space (DOMAIN.md):

- **Read receipts.** When a professional asks for one (``Disposition-Notification-To``), the
  patient's opening of the message sends ``automatic-action/MDN-sent-automatically;
  displayed``: the patient cannot refuse it, hence "automatic".
- **Integration receipts** from systems that file documents (the national MDN):
  ``Disposition: automatic-action/MDN-sent-automatically; processed`` on success, or
  ``…; processed/Error: <code>^<label>`` with a code of :class:`IntegrationError`; on error
  the subject starts ``[KO Intégration système !][<code>]``.

:func:`should_send_automatic_mdn` is RFC 8098 §2.1's rule as a pure function: no automatic
MDN when ``Disposition-Notification-To`` differs from ``Return-Path`` (otherwise anybody
could have receipts sent to a third party), and never an MDN about a report (RFC 8098 §3,
no loops).

Implementation notes: report fields are US-ASCII (RFC 8098 §3.1; the UTF-8 variant of
RFC 6533 is not written), one unfolded line each, and no field may contain a line break
(header injection). The default error labels are ASCII for the same reason; labels read
from other systems may carry RFC 2047 encoded words, which are decoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import getaddresses
from enum import IntEnum, StrEnum
from typing import TypeVar

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
)
from messaging.errors import InvalidAddress, InvalidMessage
from messaging.mime import PRODUCT_REFERENCE
from messaging.types import Address

__all__ = [
    "ActionMode",
    "DispositionNotification",
    "DispositionType",
    "IntegrationError",
    "KO_SUBJECT_PREFIX",
    "REPORT_TYPE",
    "SendingMode",
    "build_mdn",
    "integration_receipt",
    "parse_mdn",
    "read_receipt",
    "render_text",
    "should_send_automatic_mdn",
    "subject_for",
]

REPORT_TYPE = "disposition-notification"
KO_SUBJECT_PREFIX = "[KO Intégration système !]"


class ActionMode(StrEnum):
    """RFC 8098 §3.2.6.1."""

    MANUAL = "manual-action"
    AUTOMATIC = "automatic-action"


class SendingMode(StrEnum):
    """RFC 8098 §3.2.6.1."""

    MANUAL = "MDN-sent-manually"
    AUTOMATIC = "MDN-sent-automatically"


class DispositionType(StrEnum):
    """RFC 8098 §3.2.6.2."""

    DISPLAYED = "displayed"
    DELETED = "deleted"
    DISPATCHED = "dispatched"
    PROCESSED = "processed"


class IntegrationError(IntEnum):
    """Error codes of the national integration MDN (DOMAIN.md)."""

    WRONG_DOCUMENT_VERSION = 900
    AUTHOR_NOT_ALLOWED = 901
    UNKNOWN_PATIENT = 902
    INS_ABSENT = 903
    INS_MISMATCH = 904
    INS_INCOMPLETE = 905
    OTHER = 906

    def label(self, lang: Lang = "fr") -> str:
        """The label written after ``^``; French (ASCII) by default."""
        return _LABELS[self][0 if check_lang(lang) == "fr" else 1]


_LABELS: dict[IntegrationError, tuple[str, str]] = {
    IntegrationError.WRONG_DOCUMENT_VERSION: (
        "Version de document incorrecte",
        "Wrong document version",
    ),
    IntegrationError.AUTHOR_NOT_ALLOWED: ("Auteur non autorise", "Author not allowed"),
    IntegrationError.UNKNOWN_PATIENT: ("Patient inconnu", "Unknown patient"),
    IntegrationError.INS_ABSENT: ("INS absent", "INS absent"),
    IntegrationError.INS_MISMATCH: ("INS non concordant", "INS does not match"),
    IntegrationError.INS_INCOMPLETE: ("INS incomplet", "INS incomplete"),
    IntegrationError.OTHER: ("Autre erreur", "Other error"),
}
_CODES = {int(code) for code in IntegrationError}


@dataclass(frozen=True, slots=True)
class DispositionNotification:
    """An MDN from ``sender`` (the recipient's mailbox or system) to ``recipient`` (the
    address the original asked receipts for)."""

    sender: Address
    recipient: Address
    final_recipient: Address
    original_message_id: str
    disposition: DispositionType = DispositionType.PROCESSED
    action_mode: ActionMode = ActionMode.AUTOMATIC
    sending_mode: SendingMode = SendingMode.AUTOMATIC
    error: IntegrationError | None = None
    error_label: str = ""
    """Empty means the standard label of ``error``."""
    reporting_ua: str = ""
    original_recipient: Address | None = None
    original_subject: str = ""

    def __post_init__(self) -> None:
        check_line(self.original_message_id, field="Original-Message-ID", code="mdn-invalid-field")
        check_line(self.reporting_ua, field="Reporting-UA", code="mdn-invalid-field", limit=200)
        check_line(self.error_label, field="error label", code="mdn-invalid-field", limit=200)
        check_line(self.original_subject, field="Subject", code="mdn-invalid-field")
        if self.error is None and self.error_label:
            raise InvalidMessage("an error label without an error code", "mdn-invalid-field")
        if "^" in self.error_label:
            raise InvalidMessage("an error label cannot contain '^'", "mdn-invalid-field")
        # Headers unfold to single spaces when read back: store values that way.
        label = " ".join(self.error_label.split())
        if self.error is not None and not label:
            label = self.error.label()
        object.__setattr__(self, "error_label", label)
        object.__setattr__(self, "original_subject", " ".join(self.original_subject.split()))
        object.__setattr__(self, "reporting_ua", " ".join(self.reporting_ua.split()))

    @property
    def disposition_field(self) -> str:
        """The ``Disposition`` value, national error form included."""
        value = f"{self.action_mode}/{self.sending_mode}; {self.disposition}"
        if self.error is not None:
            value += f"/Error: {int(self.error)}^{self.error_label}"
        return value


def read_receipt(
    *,
    reader: Address,
    notify: Address,
    original_message_id: str,
    original_subject: str = "",
) -> DispositionNotification:
    """The receipt sent when a patient opens a message that asked for one (DOMAIN.md)."""
    return DispositionNotification(
        sender=reader,
        recipient=notify,
        final_recipient=reader,
        original_message_id=original_message_id,
        disposition=DispositionType.DISPLAYED,
        reporting_ua=f"{reader.domain}; {PRODUCT_REFERENCE}",
        original_subject=original_subject,
    )


def integration_receipt(
    *,
    system: Address,
    notify: Address,
    original_message_id: str,
    error: IntegrationError | None = None,
    error_label: str = "",
    original_subject: str = "",
) -> DispositionNotification:
    """The national integration MDN: ``processed``, or ``processed/Error: code^label``."""
    return DispositionNotification(
        sender=system,
        recipient=notify,
        final_recipient=system,
        original_message_id=original_message_id,
        disposition=DispositionType.PROCESSED,
        error=error,
        error_label=error_label,
        reporting_ua=f"{system.domain}; {PRODUCT_REFERENCE}",
        original_subject=original_subject,
    )


_SUBJECT_WORDS: dict[Lang, dict[DispositionType, str]] = {
    "fr": {
        DispositionType.DISPLAYED: "Accusé de lecture",
        DispositionType.PROCESSED: "Accusé de traitement",
        DispositionType.DELETED: "Supprimé sans lecture",
        DispositionType.DISPATCHED: "Transmis",
    },
    "en": {
        DispositionType.DISPLAYED: "Read",
        DispositionType.PROCESSED: "Processed",
        DispositionType.DELETED: "Deleted without being read",
        DispositionType.DISPATCHED: "Dispatched",
    },
}


def subject_for(mdn: DispositionNotification, lang: Lang = "fr") -> str:
    """The subject; the national prefix on error in every language (systems match on it)."""
    lang = check_lang(lang)
    if mdn.error is not None:
        head = f"{KO_SUBJECT_PREFIX}[{int(mdn.error)}]"
        return f"{head} {mdn.original_subject}" if mdn.original_subject else head
    word = _SUBJECT_WORDS[lang][mdn.disposition]
    if not mdn.original_subject:
        return word
    return f"{word} : {mdn.original_subject}" if lang == "fr" else f"{word}: {mdn.original_subject}"


def render_text(mdn: DispositionNotification, lang: Lang = "fr") -> str:
    """The human-readable part (RFC 8098 §3.1, first part)."""
    fr = check_lang(lang) == "fr"
    subject = mdn.original_subject
    if fr:
        about = f"Le message « {subject} »" if subject else "Le message"
        about += f" adressé à {mdn.final_recipient}"
        done = {
            DispositionType.DISPLAYED: "a été ouvert par son destinataire.",
            DispositionType.PROCESSED: "a été traité par le système destinataire.",
            DispositionType.DELETED: "a été supprimé sans avoir été lu.",
            DispositionType.DISPATCHED: "a été transmis sans avoir été affiché.",
        }[mdn.disposition]
        if mdn.error is not None:
            done = (
                "n'a pas pu être intégré par le système destinataire : "
                f"erreur {int(mdn.error)}, {mdn.error.label('fr')}."
            )
        tail = "Ceci est un accusé de réception automatique."
    else:
        about = f'The message "{subject}"' if subject else "The message"
        about += f" sent to {mdn.final_recipient}"
        done = {
            DispositionType.DISPLAYED: "was opened by its recipient.",
            DispositionType.PROCESSED: "was processed by the recipient's system.",
            DispositionType.DELETED: "was deleted without being read.",
            DispositionType.DISPATCHED: "was dispatched without being displayed.",
        }[mdn.disposition]
        if mdn.error is not None:
            done = (
                "could not be integrated by the recipient's system: "
                f"error {int(mdn.error)}, {mdn.error.label('en')}."
            )
        tail = "This is an automatic receipt."
    lines = [f"{about} {done}"]
    if mdn.action_mode is ActionMode.AUTOMATIC:
        lines += ["", tail]
    return "\n".join(lines) + "\n"


def build_mdn(
    mdn: DispositionNotification,
    *,
    message_id: str | None = None,
    date: datetime,
    lang: Lang = "fr",
) -> bytes:
    """The ``multipart/report`` message of an MDN (RFC 8098 §3, RFC 6522)."""
    lang = check_lang(lang)
    root = report_root(
        sender=mdn.sender,
        recipient=mdn.recipient,
        subject=subject_for(mdn, lang),
        message_id=message_id,
        date=date,
        original_message_id=mdn.original_message_id,
        automatic=mdn.action_mode is ActionMode.AUTOMATIC,
    )
    lines: list[tuple[str, str]] = []
    if mdn.reporting_ua:
        lines.append(("Reporting-UA", mdn.reporting_ua))
    if mdn.original_recipient is not None:
        lines.append(("Original-Recipient", f"rfc822; {mdn.original_recipient}"))
    lines.append(("Final-Recipient", f"rfc822; {mdn.final_recipient}"))
    if mdn.original_message_id:
        lines.append(("Original-Message-ID", mdn.original_message_id))
    lines.append(("Disposition", mdn.disposition_field))
    for name, value in lines:
        if not value.isascii():
            raise InvalidMessage(f"{name} must be US-ASCII (RFC 8098 §3.1)", "mdn-invalid-field")
    report = EmailMessage(policy=POLICY)
    report.set_type("message/disposition-notification")
    # Written unfolded, one field per line: integrating systems match "Disposition:" lines
    # with simple patterns, and every value was checked to be one line under 998 octets.
    report.set_payload("".join(f"{name}: {value}\r\n" for name, value in lines))
    del report["MIME-Version"]
    return finish_report(
        root,
        report_type=REPORT_TYPE,
        text=render_text(mdn, lang),
        report=report,
        original_message_id=mdn.original_message_id,
        original_subject=mdn.original_subject,
    )


_DISPOSITION_RE = re.compile(
    r"^(?P<action>[A-Za-z-]+)\s*/\s*(?P<sending>[A-Za-z-]+)\s*;\s*(?P<type>[A-Za-z-]+)"
    r"\s*(?:/\s*(?P<modifier>.*))?$"
)
_ERROR_MODIFIER_RE = re.compile(
    r"^error\s*(?::\s*(?P<code>\d{3})\s*(?:\^\s*(?P<label>.*))?)?$", re.IGNORECASE
)
_ERROR_FIELD_RE = re.compile(r"^(?P<code>\d{3})\s*\^\s*(?P<label>.*)$")


def _one(block: Message, name: str, *, required: bool = False) -> str:
    return one_field(block, name, prefix="mdn", required=required)


_E = TypeVar("_E", bound=StrEnum)


def _enum_value(kind: type[_E], text: str, what: str) -> _E:
    for member in kind:
        if member.value.lower() == text.lower():
            return member
    raise InvalidMessage(f"unknown {what} {text!r}", "mdn-invalid-disposition")


def _error(code_text: str, label: str) -> tuple[IntegrationError, str]:
    code = int(code_text)
    if code not in _CODES:
        raise InvalidMessage(f"unknown integration error code {code}", "mdn-unknown-error-code")
    return IntegrationError(code), label.strip()


def _address(value: str, name: str) -> Address:
    return typed_address(value, name, prefix="mdn")


def parse_mdn(raw: bytes) -> DispositionNotification:
    """The notification a ``multipart/report; report-type=disposition-notification`` carries.

    Reads the national form (``processed/Error: 902^Patient inconnu``) and the RFC 3798
    form (``processed/error`` with a separate ``Error:`` field).
    """
    return read_report(raw, _parse, "disposition notification")


def _parse(msg: EmailMessage) -> DispositionNotification:
    report = report_part(
        msg,
        report_type=REPORT_TYPE,
        part_type="message/disposition-notification",
        not_report=InvalidMessage("not a disposition notification", "mdn-not-report"),
        not_one=InvalidMessage(
            "an MDN has one message/disposition-notification part", "mdn-missing-report"
        ),
    )
    inner = report.get_payload()
    if not isinstance(inner, list) or len(inner) != 1 or not isinstance(inner[0], Message):
        raise InvalidMessage("unreadable message/disposition-notification", "mdn-missing-report")
    fields = inner[0]
    match = _DISPOSITION_RE.match(_one(fields, "Disposition", required=True))
    if match is None:
        raise InvalidMessage(
            "Disposition does not follow RFC 8098 §3.2.6", "mdn-invalid-disposition"
        )
    error: IntegrationError | None = None
    label = ""
    modifier = (match.group("modifier") or "").strip()
    found = _ERROR_MODIFIER_RE.match(modifier)
    if found is not None:
        if found.group("code"):
            error, label = _error(
                found.group("code"), (found.group("label") or "").replace("^", " ")
            )
        else:
            separate = _one(fields, "Error")
            detail = _ERROR_FIELD_RE.match(separate)
            if detail is not None:
                error, label = _error(detail.group("code"), detail.group("label").replace("^", " "))
            else:
                error, label = IntegrationError.OTHER, separate.replace("^", " ")
    original_recipient = _one(fields, "Original-Recipient")
    message_id, subject = read_returned_headers(msg)
    return DispositionNotification(
        sender=header_address(msg, "From", code="receipt-invalid-header"),
        recipient=header_address(msg, "To", code="receipt-invalid-header"),
        final_recipient=_address(_one(fields, "Final-Recipient", required=True), "Final-Recipient"),
        original_message_id=_one(fields, "Original-Message-ID") or message_id,
        disposition=_enum_value(DispositionType, match.group("type"), "disposition type"),
        action_mode=_enum_value(ActionMode, match.group("action"), "action mode"),
        sending_mode=_enum_value(SendingMode, match.group("sending"), "sending mode"),
        error=error,
        error_label=label[:200],
        reporting_ua=_one(fields, "Reporting-UA"),
        original_recipient=(
            _address(original_recipient, "Original-Recipient") if original_recipient else None
        ),
        original_subject=subject,
    )


HeaderSource = Message | Iterable[tuple[str, str]]


def _headers(source: HeaderSource) -> list[tuple[str, str]]:
    if isinstance(source, Message):
        return [(name, str(value)) for name, value in source.items()]
    return [(name, str(value)) for name, value in source]


def should_send_automatic_mdn(message_headers: HeaderSource) -> bool:
    """Whether an MDN may be sent without asking anybody (RFC 8098 §2.1, §3).

    True only when the message asks for a receipt (``Disposition-Notification-To``), names
    exactly one address there, that address is the ``Return-Path`` (one, non-null), and the
    message is not itself a report. Anything unreadable means no.
    """
    headers = _headers(message_headers)

    def values(name: str) -> list[str]:
        return [v for n, v in headers if n.lower() == name.lower()]

    notify = values("Disposition-Notification-To")
    return_path = values("Return-Path")
    if len(notify) != 1 or len(return_path) != 1:
        return False
    if any("multipart/report" in v.lower() for v in values("Content-Type")):
        return False  # never a receipt about a receipt or a bounce (RFC 8098 §3)
    try:
        notify_addresses = [a for _, a in getaddresses(notify) if a]
        path_addresses = [a for _, a in getaddresses(return_path) if a]
        if len(notify_addresses) != 1 or len(path_addresses) != 1:
            return False
        return Address.parse(notify_addresses[0]) == Address.parse(path_addresses[0])
    except (InvalidAddress, ValueError):
        return False
