"""SMTP replies with enhanced status codes, and the mapping of ``messaging`` errors to them.

RFC 5321 §4.2 (reply codes), RFC 3463 and RFC 2034 (enhanced status codes: once
``ENHANCEDSTATUSCODES`` is advertised, every 2xx/4xx/5xx reply but the greeting and the EHLO
answer carries one), RFC 6531 (SMTPUTF8 codes), RFC 3207 (``530 5.7.0`` before STARTTLS),
RFC 4954 (AUTH codes).

A reply never repeats message content: reasons name the rule, an address at most.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from messaging.errors import (
    AuthenticationFailed,
    InvalidAddress,
    InvalidMessage,
    MailboxClosed,
    NotFound,
    RuleViolation,
    Unavailable,
    UnknownMailbox,
)

__all__ = ["Reply", "reply_for_error", "with_enhanced_code", "R"]

_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")
_CODE = re.compile(r"^(\d{3})([ -])(.*)$", re.DOTALL)

# The enhanced code added to aiosmtpd's own replies, which carry none (RFC 3463 §3).
_DEFAULT_ENHANCED = {
    "211": "2.0.0",
    "214": "2.0.0",
    "221": "2.0.0",
    "250": "2.0.0",
    "251": "2.1.5",
    "252": "2.5.0",
    "421": "4.3.0",
    "451": "4.3.0",
    "452": "4.5.3",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "538": "5.7.11",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}
# No enhanced code on these (RFC 2034 §3: not on 220/354, nor on AUTH challenges).
_BARE = frozenset({"220", "235", "334", "354"})


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: a code, an enhanced status code and a text without content."""

    code: int
    enhanced: str
    text: str
    reason: str = ""
    """A stable name of the check (trace and tests); never shown with message content."""

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def accepted(self) -> bool:
        return self.code < 400


class R:
    """The replies Pli's SMTP fronts give, by name."""

    OK = Reply(250, "2.0.0", "OK", "ok")
    SENDER_OK = Reply(250, "2.1.0", "Sender OK", "sender-ok")
    RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK", "recipient-ok")
    TLS_REQUIRED = Reply(530, "5.7.0", "Must issue a STARTTLS command first", "tls-required")
    CERT_REQUIRED = Reply(
        530, "5.7.0", "A trust-space client certificate is required", "peer-certificate"
    )
    AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required", "auth-required")
    AUTH_OK = Reply(235, "2.7.0", "Authentication successful", "auth-ok")
    AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid", "auth-failed")
    AUTH_TOO_MANY = Reply(421, "4.7.0", "Too many authentication failures", "auth-too-many")
    NOT_ALLOWED_DOMAIN = Reply(
        550, "5.7.1", "Sender domain is not in the trust space", "domain-not-allowed"
    )
    LOCAL_SENDER_FROM_PEER = Reply(
        550,
        "5.7.1",
        "Mail from this domain is submitted here, not relayed by a peer",
        "local-sender-from-peer",
    )
    RELAY_DENIED = Reply(550, "5.7.1", "Recipient domain is not in the trust space", "relay-denied")
    NO_RELAY_HERE = Reply(550, "5.7.1", "Relaying not permitted here", "relay-denied")
    SENDER_NOT_OWNED = Reply(
        553, "5.7.1", "Sender address not owned by the authenticated user", "sender-not-owned"
    )
    FROM_NOT_OWNED = Reply(
        550, "5.7.1", "From: header not owned by the authenticated user", "from-not-owned"
    )
    UNKNOWN_MAILBOX = Reply(550, "5.1.1", "No such mailbox", "unknown-mailbox")
    BAD_ADDRESS = Reply(553, "5.1.3", "Malformed address", "bad-address")
    MAILBOX_CLOSED = Reply(550, "5.2.1", "Mailbox is closed", "mailbox-closed")
    TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients", "too-many-recipients")
    DUPLICATE_RECIPIENT = Reply(
        250, "2.1.5", "Recipient already listed, counted once", "duplicate-recipient"
    )
    TOO_LARGE = Reply(552, "5.3.4", "Message size exceeds fixed maximum", "too-large")
    LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long (RFC 5321 §4.5.3.1.6)", "line-too-long")
    BARE_NEWLINE = Reply(
        550, "5.5.2", "Bare CR or LF in message data (RFC 5321 §2.3.8)", "bare-newline"
    )
    NOT_UTF8 = Reply(554, "5.6.0", "Header is not valid UTF-8", "invalid-utf8")
    EIGHTBIT_HEADER = Reply(
        554, "5.6.7", "Non-ASCII header without SMTPUTF8 (RFC 6531 §3.2)", "utf8-without-smtputf8"
    )
    EIGHTBIT_ADDRESS = Reply(
        553, "5.6.7", "Non-ASCII address requires SMTPUTF8 (RFC 6531)", "utf8-without-smtputf8"
    )
    NUL_BYTE = Reply(554, "5.6.0", "NUL in message data (RFC 5322 §2.1)", "nul")
    NOT_UTF8_BODY = Reply(554, "5.6.0", "Text part is not valid UTF-8", "invalid-utf8")
    BAD_MIME = Reply(554, "5.6.0", "Malformed message", "mime-malformed")
    BAD_HEADER = Reply(554, "5.6.0", "Malformed header", "header-malformed")
    NO_FROM = Reply(554, "5.6.0", "Message has no single From: header", "from-missing")
    REFUSED_BY_RULE = Reply(550, "5.7.1", "Refused by the trust-space rules", "rule")
    STORAGE_UNAVAILABLE = Reply(
        451, "4.3.0", "Storage temporarily unavailable, try again later", "unavailable"
    )
    TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection", "too-many-errors")
    TOO_MANY_COMMANDS = Reply(
        421, "4.7.0", "Too many commands in this session", "too-many-commands"
    )
    TOO_MANY_CONNECTIONS = Reply(
        421, "4.7.0", "Too many connections from your address", "too-many-connections"
    )
    TLS_FAILED = Reply(454, "4.7.0", "TLS not available due to temporary reason", "tls-handshake")
    LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing", "internal")


def reply_for_error(error: Exception) -> Reply:
    """The reply for an error raised by the delivery or account services."""
    if isinstance(error, Unavailable):
        return R.STORAGE_UNAVAILABLE
    if isinstance(error, UnknownMailbox):
        return R.UNKNOWN_MAILBOX
    if isinstance(error, MailboxClosed):
        return R.MAILBOX_CLOSED
    if isinstance(error, InvalidAddress):
        return R.BAD_ADDRESS
    if isinstance(error, AuthenticationFailed):
        return R.AUTH_FAILED
    if isinstance(error, InvalidMessage):
        if error.code == "too-large" or "exceeds" in error.reason:
            return R.TOO_LARGE
        return Reply(554, "5.6.0", f"Message refused ({error.code})", error.code)
    if isinstance(error, RuleViolation):
        if error.code in {"recipient-closed", "sender-closed"}:
            return Reply(550, "5.2.1", "Mailbox is closed", error.code)
        if error.code == "too-many-recipients":
            return Reply(452, "4.5.3", "Too many recipients", error.code)
        # Rule reasons are written for people and carry no message content.
        return Reply(550, "5.7.1", _one_line(error.reason) or "Refused", error.code)
    if isinstance(error, NotFound):
        return R.UNKNOWN_MAILBOX
    return R.LOCAL_ERROR


def with_enhanced_code(status: str) -> str:
    """``status`` with an enhanced code added when it is a reply that lacks one."""
    if _HAS_ENHANCED.match(status):
        return status
    match = _CODE.match(status)
    if match is None:
        return status
    code, sep, text = match.groups()
    if code in _BARE:
        return status
    enhanced = _DEFAULT_ENHANCED.get(code) or f"{code[0]}.0.0"
    return f"{code}{sep}{enhanced} {text}"


def _one_line(text: str) -> str:
    # Replies are single lines: a line break in a reason would forge a second reply.
    return " ".join(text.split())[:200]
