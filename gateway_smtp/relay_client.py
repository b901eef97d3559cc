"""One relay attempt: an SMTP client transaction with a peer's MX over mutual TLS.

RFC 5321 (the transaction), RFC 3207 (STARTTLS, *required*: a peer that does not offer it,
or whose certificate does not chain to the trust anchor, gets nothing), RFC 3461 (the DSN
extension: ``RET`` and ``ENVID`` on MAIL, ``NOTIFY`` and ``ORCPT`` on RCPT, sent only when
the peer offers ``DSN``), RFC 1870 (``SIZE``), RFC 6152 (``BODY=8BITMIME``), RFC 3463
(enhanced status codes, read from the peer's reply or derived from its basic code).

Python's :mod:`smtplib` runs in a worker thread: one thread per connection, bounded by the
relay's per-domain concurrency. The outcome is per recipient: a ``2xx`` after DATA
delivered it, a ``5xx`` (at MAIL, RCPT or DATA) refused it for good, anything else (a ``4xx``,
a lost connection, a TLS failure) leaves it queued for a later attempt.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass

from gateway_smtp.relay_routes import Hop
from messaging.outbound import OutboundRecipient, Ret

__all__ = ["Reply", "Envelope", "send_once", "xtext"]

_ENHANCED_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Reply:
    """A peer's answer for one recipient (or our own, for a connection that failed)."""

    code: int
    status: str
    text: str

    @property
    def delivered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    @property
    def diagnostic(self) -> str:
        # Kept to one printable line: it goes into a report field (no header injection).
        text = " ".join("".join(c if c.isprintable() else " " for c in self.text).split())
        return f"smtp; {self.code} {text}"[:900] if self.code else f"x-pli; {text}"[:900]

    @classmethod
    def of(cls, code: int, message: bytes | str) -> Reply:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        match = _ENHANCED_RE.match(text)
        if match is not None and match.group(1) == str(code)[0]:
            status = match.group(0)
        else:
            status = {2: "2.0.0", 4: "4.0.0", 5: "5.0.0"}.get(code // 100, "4.0.0")
        return cls(code, status, text)

    @classmethod
    def local(cls, status: str, text: str) -> Reply:
        """A failure found on our side (no reply code): temporary unless ``status`` is 5.x.x."""
        return cls(0, status, text)


@dataclass(frozen=True, slots=True)
class Envelope:
    mail_from: str
    """The reverse path, ``""`` for the null path."""
    recipients: tuple[OutboundRecipient, ...]
    envid: str = ""
    ret: Ret | None = None


def xtext(value: str) -> str:
    """RFC 3461 §4: ``+`` and ``=`` and anything outside ``!``..``~`` as ``+HH``."""
    return "".join(
        c if 0x21 <= ord(c) <= 0x7E and c not in "+=" else f"+{ord(c):02X}" for c in value
    )


def _rcpt_options(recipient: OutboundRecipient, dsn: bool) -> list[str]:
    if not dsn:
        return []
    options = []
    if recipient.notify:
        order = ["NEVER", "SUCCESS", "FAILURE", "DELAY"]
        options.append("NOTIFY=" + ",".join(v for v in order if v in recipient.notify))
    if recipient.orcpt:
        kind, sep, address = recipient.orcpt.partition(";")
        if sep:
            options.append(f"ORCPT={kind};{xtext(address)}")
    return options


def send_once(
    hop: Hop,
    envelope: Envelope,
    data: bytes,
    *,
    context: ssl.SSLContext,
    helo: str,
    timeout: float,
) -> tuple[dict[str, Reply], bool]:
    """Try ``hop`` once; (a reply per recipient address, whether the peer offered DSN).

    Blocking: call it from a worker thread. Never raises for a peer's behaviour: a
    connection, TLS or protocol failure is a temporary :class:`Reply` for every recipient.
    """
    addresses = [str(r.address) for r in envelope.recipients]
    replies: dict[str, Reply] = {}
    dsn = False

    def everyone(reply: Reply) -> dict[str, Reply]:
        return {a: replies.get(a, reply) for a in addresses}

    try:
        with smtplib.SMTP(hop.host, hop.port, local_hostname=helo, timeout=timeout) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                return everyone(Reply.local("4.7.10", f"{hop} does not offer STARTTLS")), dsn
            code, message = smtp.starttls(context=context)
            if code != 220:
                return everyone(Reply.of(code, message)), dsn
            smtp.ehlo()
            dsn = smtp.has_extn("dsn")
            options: list[str] = []
            if smtp.has_extn("size"):
                options.append(f"SIZE={len(data)}")
            if smtp.has_extn("8bitmime") and not data.isascii():
                options.append("BODY=8BITMIME")
            if dsn and envelope.ret is not None:
                options.append(f"RET={envelope.ret.value}")
            if dsn and envelope.envid:
                options.append(f"ENVID={xtext(envelope.envid)}")
            code, message = smtp.mail(envelope.mail_from, options)
            if code != 250:
                return everyone(Reply.of(code, message)), dsn
            accepted: list[str] = []
            for recipient in envelope.recipients:
                address = str(recipient.address)
                code, message = smtp.rcpt(address, _rcpt_options(recipient, dsn))
                if code in (250, 251):
                    accepted.append(address)
                else:
                    replies[address] = Reply.of(code, message)
            if not accepted:
                smtp.rset()
                return everyone(Reply.local("4.0.0", "no recipient accepted")), dsn
            try:
                final = Reply.of(*smtp.data(data))
            except smtplib.SMTPDataError as error:
                final = Reply.of(error.smtp_code, error.smtp_error)
            for address in accepted:
                replies[address] = final
            return everyone(final), dsn
    except ssl.SSLError as error:
        return everyone(Reply.local("4.7.5", f"TLS with {hop} failed: {error.reason}")), dsn
    except smtplib.SMTPServerDisconnected:
        return everyone(Reply.local("4.4.2", f"{hop} closed the connection")), dsn
    except smtplib.SMTPResponseException as error:
        return everyone(Reply.of(error.smtp_code, error.smtp_error)), dsn
    except (OSError, smtplib.SMTPException) as error:
        return everyone(Reply.local("4.4.1", f"no answer from {hop}: {error}")), dsn
