"""Sending content-free notices: the :class:`NoticeSender` port and its implementations.

A notice (:mod:`messaging.kinds.notification`) goes to a patient's personal e-mail address
or phone, outside the trust space. The delivery service depends only on the port;
``pli/wiring.py`` picks the implementation:

- :class:`SmtpNoticeSender` hands the e-mail form to an SMTP smarthost (RFC 5321) with
  STARTTLS (RFC 3207) or implicit TLS (RFC 8314), and AUTH (RFC 4954) only over TLS.
  ``smtplib`` is blocking, so every exchange runs in a worker thread and the event loop
  never waits on the network.
- :class:`RoutingNoticeSender` sends each notice through the sender of its channel: the
  smarthost, and the SMS gateway (:class:`messaging.sms.KannelSmsSender`).
- :class:`InMemoryNoticeSender` keeps what it was given, for the tests of other packages.

Failures raise :class:`NoticeNotSent`; ``permanent`` says whether retrying can help (the
smarthost answered 5xx) or not. Its text never contains the destination or a credential.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from typing import Protocol

from messaging.clock import SystemClock
from messaging.errors import PliError
from messaging.kinds.notification import Channel, Notice, build_notice_email
from messaging.mime import new_message_id
from messaging.ports import Clock
from messaging.types import Address

__all__ = [
    "InMemoryNoticeSender",
    "NoticeNotSent",
    "NoticeSender",
    "RoutingNoticeSender",
    "SmtpNoticeSender",
]


class NoticeNotSent(PliError):
    """A notice could not be handed over; ``permanent`` when retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class NoticeSender(Protocol):
    """Hands one notice to whatever carries it to the patient."""

    async def send(self, notice: Notice) -> None: ...


class InMemoryNoticeSender:
    """Keeps every notice it is given, in order."""

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    async def send(self, notice: Notice) -> None:
        self.sent.append(notice)


class RoutingNoticeSender:
    """Sends each notice through the sender of its channel."""

    def __init__(self, *, email: NoticeSender | None, sms: NoticeSender | None = None) -> None:
        self._senders: dict[Channel, NoticeSender] = {}
        if email is not None:
            self._senders[Channel.EMAIL] = email
        if sms is not None:
            self._senders[Channel.SMS] = sms

    async def send(self, notice: Notice) -> None:
        sender = self._senders.get(notice.channel)
        if sender is None:
            raise NoticeNotSent(f"no sender for {notice.channel} notices", permanent=True)
        await sender.send(notice)


class SmtpNoticeSender:
    """Sends e-mail notices through an SMTP smarthost."""

    def __init__(
        self,
        host: str,
        port: int,
        from_address: Address | str,
        starttls: bool,
        *,
        implicit_tls: bool = False,
        from_name: str = "Pli",
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        local_hostname: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if starttls and implicit_tls:
            raise ValueError("choose STARTTLS or implicit TLS, not both")
        if (username is None) != (password is None):
            raise ValueError("give both a username and a password, or neither")
        if username is not None and not (starttls or implicit_tls):
            # RFC 4954 §4 and common sense: credentials never cross the network in clear.
            raise ValueError("SMTP credentials need STARTTLS or implicit TLS")
        self._host = host
        self._port = port
        self._from = (
            from_address if isinstance(from_address, Address) else (Address.parse(from_address))
        )
        self._from_name = from_name
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self._username = username
        self._password = password
        self._context = ssl_context
        self._timeout = timeout
        self._local_hostname = local_hostname
        self._clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:  # never shows the password
        return (
            f"SmtpNoticeSender(host={self._host!r}, port={self._port}, "
            f"from_address={str(self._from)!r}, starttls={self._starttls})"
        )

    async def send(self, notice: Notice) -> None:
        if notice.channel is not Channel.EMAIL:
            raise NoticeNotSent("an SMTP smarthost sends e-mail notices only", permanent=True)
        raw = build_notice_email(
            notice,
            from_address=self._from,
            from_name=self._from_name,
            message_id=new_message_id(self._from.domain),
            date=self._clock.now(),
        )
        await asyncio.to_thread(self._deliver, raw, notice.destination)

    def _context_or_default(self) -> ssl.SSLContext:
        return self._context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self._implicit_tls:
            return smtplib.SMTP_SSL(
                self._host,
                self._port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
                context=self._context_or_default(),
            )
        return smtplib.SMTP(
            self._host, self._port, local_hostname=self._local_hostname, timeout=self._timeout
        )

    def _deliver(self, raw: bytes, destination: str) -> None:
        """One SMTP transaction; blocking, run in a worker thread.

        Errors are re-raised ``from None``: smtplib's exceptions carry the patient's personal
        address, which has no business in logs and tracebacks.
        """
        try:
            with self._connect() as client:
                client.ehlo()
                if self._starttls:
                    client.starttls(context=self._context_or_default())
                    client.ehlo()  # RFC 3207 §4.2: forget what was learnt before TLS
                if self._username is not None and self._password is not None:
                    client.login(self._username, self._password)
                client.sendmail(str(self._from), [destination], raw)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = bool(codes) and all(code >= 500 for code in codes)
            raise NoticeNotSent(
                f"the smarthost refused the recipient ({', '.join(map(str, codes))})",
                permanent=permanent,
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise NoticeNotSent(
                f"the smarthost answered {exc.smtp_code}", permanent=exc.smtp_code >= 500
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused, TLS failure, timeout, no STARTTLS offered: maybe later.
            raise NoticeNotSent(
                f"the smarthost could not be used: {type(exc).__name__}", permanent=False
            ) from None
