"""aiosmtpd's SMTP session, narrowed where it cannot enforce Pli's rules by configuration.

RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 2034 (ENHANCEDSTATUSCODES), RFC 2920
(PIPELINING), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 1870 (SIZE), RFC 8314 (implicit
TLS on 465).

The seams, each as small as aiosmtpd allows, and why:

- ``smtp_DATA`` is replaced: aiosmtpd splits data on CRLF and keeps bare LF and bare CR
  inside lines, so ``\\n.\\n`` smuggling would pass; its line limit is the stream reader's,
  reported as a reply without enhanced code. Ours reads the same way (``readuntil(CRLF)``,
  never more than one line in memory beyond the message) and refuses, after the final
  ``.``, any message with a bare CR/LF, an over-long line or too many octets.
- ``push`` adds the enhanced status code aiosmtpd's own replies lack (RFC 2034), counts
  error replies and closes the session past ``max_errors``.
- ``connection_made`` / ``connection_lost`` count sessions per peer address, and mark a
  session that arrived over implicit TLS (port 465) as encrypted: aiosmtpd only knows TLS
  it negotiated itself through STARTTLS.
- Commands are counted by wrapping the ``smtp_*`` methods aiosmtpd dispatches to.
- ``smtp_AUTH`` answers ``530 5.7.0`` before TLS (RFC 3207 §4; aiosmtpd says 538).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from gateway_smtp.dsn_params import (
    DsnParamError,
    parse_mail_params,
    parse_rcpt_params,
    take_params,
)
from gateway_smtp.limits import ConnectionCounter, SmtpLimits
from gateway_smtp.peers import PeerIdentity
from gateway_smtp.replies import R, with_enhanced_code
from messaging.accounts import UnlockedAccount
from messaging.outbound import Ret
from messaging.types import Address

__all__ = ["PliSMTP", "PliEnvelope", "PliSession"]


class PliSession(Session):
    """aiosmtpd's session plus what Pli learns about the client."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.peer_identity: PeerIdentity | None = None
        """The MX peer's verified certificate."""
        self.unlocked: UnlockedAccount | None = None
        """The submission client's account and keys, after AUTH."""
        self.auth_failures = 0


class PliEnvelope(Envelope):
    """aiosmtpd's envelope plus the parsed recipients."""

    def __init__(self) -> None:
        super().__init__()
        self.recipients: list[Address] = []
        # RFC 3461 parameters, when the front offers DSN.
        self.ret: Ret | None = None
        self.envid = ""
        self.notify: dict[Address, frozenset[str]] = {}
        self.orcpt: dict[Address, str] = {}

    @property
    def data(self) -> bytes:
        content = self.original_content
        return content if isinstance(content, bytes) else b""


log = logging.getLogger("gateway_smtp.session")

_IMPLICIT_TLS = object()


class PliSMTP(SMTP):
    """One SMTP session of an MX or submission front."""

    def __init__(
        self,
        handler: Any,  # noqa: ANN401 - aiosmtpd's handler protocol is duck-typed
        *,
        limits: SmtpLimits,
        connections: ConnectionCounter,
        hostname: str,
        loop: asyncio.AbstractEventLoop,
        dsn: bool = False,
        **kwargs: Any,  # noqa: ANN401 - aiosmtpd's keyword arguments
    ) -> None:
        # The stream reader's limit is the longest line kept in memory (plus a transparency
        # dot, RFC 5321 §4.5.2); longer ones are discarded as they arrive.
        self.line_length_limit = limits.max_line_length + 1
        super().__init__(
            handler,
            data_size_limit=limits.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="Pli ESMTP",
            timeout=limits.timeout,
            loop=loop,
            **kwargs,
        )
        self.limits = limits
        self.dsn = dsn
        """Whether this front offers the DSN extension (RFC 3461): submission does."""
        self.session_id = secrets.token_hex(6)
        self._connections = connections
        self._peer_host: str | None = None
        self._refused = False
        self._errors = 0
        self._commands = 0
        self._in_ehlo = False
        self._closing = False
        self.committing = False
        """True while the handler seals and commits a message (shutdown waits for it)."""
        self._smtp_methods = {
            name: self._counted(method) for name, method in self._smtp_methods.items()
        }

    def _create_session(self) -> PliSession:
        return PliSession(self.loop)

    def _create_envelope(self) -> PliEnvelope:
        return PliEnvelope()

    # A method, not a property: aiosmtpd's __init__ reads every property (inspect.getmembers).
    def pli_session(self) -> PliSession:
        assert isinstance(self.session, PliSession)  # noqa: S101 - _create_session's
        return self.session

    # -- connection accounting --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None and self._original_transport is None
        if first:
            peer = transport.get_extra_info("peername")
            host = str(peer[0]) if peer else "?"
            if not self._connections.acquire(host):
                # Refused before any session state exists: one reply, then close.
                log.warning("too many connections", extra={"peer": host})
                transport.write(f"{R.TOO_MANY_CONNECTIONS}\r\n".encode())  # type: ignore[attr-defined]
                transport.close()
                self._refused = True
                return
            self._peer_host = host
        super().connection_made(transport)
        if first and transport.get_extra_info("ssl_object") is not None:
            # Implicit TLS (RFC 8314): the session is encrypted from its first byte.
            self._tls_protocol = _IMPLICIT_TLS  # type: ignore[assignment] # a marker only

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._peer_host is not None:
            self._connections.release(self._peer_host)
            self._peer_host = None
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        result: bool | None = super().eof_received()
        return result

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)

    @property
    def encrypted(self) -> bool:
        return self._tls_protocol is not None

    @property
    def peer_host(self) -> str:
        return self._peer_host or "?"

    def ssl_object(self) -> Any:  # noqa: ANN401 - ssl.SSLObject, or None
        if self.transport is None:
            return None
        return self.transport.get_extra_info("ssl_object")

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # A peer whose certificate OpenSSL refused (unknown authority, expired, revoked):
            # aiosmtpd closes the session; the refusal is logged and traced here.
            cause = error.__cause__
            reason = str(
                getattr(cause, "verify_message", None)
                or getattr(cause, "reason", None)
                or type(cause).__name__
            )
            log.warning("TLS handshake refused", extra={"peer": self.peer_host, "reason": reason})
            hook = getattr(self.event_handler, "tls_refused", None)
            if hook is not None:
                await hook(self, reason)
            return str(R.TLS_FAILED)
        status: str = await super().handle_exception(error)
        return status

    # -- replies ----------------------------------------------------------------------------

    async def push(self, status: str | bytes) -> None:
        if isinstance(status, bytes):
            await super().push(status)
            return
        if not self._in_ehlo:
            status = with_enhanced_code(status)
        await super().push(status)
        # 421 ends the session anyway; 452 "too many recipients" is flow control, not abuse.
        if status[:1] in ("4", "5") and status[:3] not in ("421", "452"):
            self._errors += 1
            if self._errors >= self.limits.max_errors and not self._closing:
                await self._close_with(str(R.TOO_MANY_ERRORS))

    async def _close_with(self, status: str) -> None:
        self._closing = True
        log.warning("closing session", extra={"peer": self.peer_host, "reply": status[:3]})
        await super().push(status)
        if self.transport is not None:
            self.transport.close()

    def _counted(
        self, method: Callable[[Any], Awaitable[None]]
    ) -> Callable[[Any], Awaitable[None]]:
        async def counted(arg: Any) -> None:  # noqa: ANN401 - aiosmtpd passes str or None
            self._commands += 1
            if self._commands > self.limits.max_commands:
                await self._close_with(str(R.TOO_MANY_COMMANDS))
                return
            await method(arg)

        return counted

    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    # -- DSN parameters (RFC 3461), taken out before aiosmtpd refuses them as unknown -------

    async def smtp_MAIL(self, arg: str | None) -> None:
        if not self.dsn:
            await super().smtp_MAIL(arg)
            return
        try:
            arg, taken = take_params(arg, frozenset({"RET", "ENVID"}))
            ret, envid = parse_mail_params(taken)
        except DsnParamError as error:
            await self.push(f"501 5.5.4 {error}")
            return
        envelope = self.envelope
        nested = envelope is not None and envelope.mail_from is not None
        await super().smtp_MAIL(arg)
        envelope = self.envelope
        if isinstance(envelope, PliEnvelope) and not nested and envelope.mail_from:
            envelope.ret, envelope.envid = ret, envid

    async def smtp_RCPT(self, arg: str | None) -> None:
        envelope = self.envelope
        if not self.dsn or not isinstance(envelope, PliEnvelope):
            await super().smtp_RCPT(arg)
            return
        try:
            arg, taken = take_params(arg, frozenset({"NOTIFY", "ORCPT"}))
            notify, orcpt = parse_rcpt_params(taken)
        except DsnParamError as error:
            await self.push(f"501 5.5.4 {error}")
            return
        before = len(envelope.recipients)
        await super().smtp_RCPT(arg)
        if len(envelope.recipients) > before:
            added = envelope.recipients[-1]
            if notify:
                envelope.notify[added] = notify
            if orcpt:
                envelope.orcpt[added] = orcpt

    async def smtp_AUTH(self, arg: str) -> None:
        if not self.encrypted:
            await self.push(str(R.TLS_REQUIRED))
            return
        await super().smtp_AUTH(arg)

    # -- DATA -------------------------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None  # noqa: S101 - aiosmtpd's invariant
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        refusal, data = await self._read_data()
        if refusal is not None:
            self.envelope = self._create_envelope()
            await self.on_refused_data(refusal)
            await self.push(refusal)
            return
        self.envelope.content = data
        self.envelope.original_content = data
        self.committing = True
        try:
            status = await self._call_handler_hook("DATA")
        finally:
            self.committing = False
        self.envelope = self._create_envelope()
        await self.push("250 2.0.0 OK" if not isinstance(status, str) else status)

    async def on_refused_data(self, refusal: str) -> None:
        """Hook for the handler to trace a refusal decided while reading DATA."""
        hook = getattr(self.event_handler, "data_refused", None)
        if hook is not None:
            await hook(self, self.session, self.envelope, refusal)

    async def _read_data(self) -> tuple[str | None, bytes]:
        """The message up to ``CRLF.CRLF``, unstuffed, or the refusal and what was read.

        The end of data is the byte sequence CRLF "." CRLF (RFC 5321 §4.1.1.4), found by the
        stream reader's own search — whatever a line holds, so a bare LF before a dot never
        ends a message here — and every check runs over the whole message at C speed: a
        200 KB body costs a few scans, not 2,700 awaits of a line reader. Two private
        attributes of :class:`asyncio.StreamReader` are used, as aiosmtpd itself does: the
        buffer, to put back the CRLF that ended the DATA command (the terminator's first
        two bytes when the message is empty), and the limit, raised to the message size
        for the read and restored after, so command lines keep their short limit.
        """
        limit = self.limits.max_message_size
        reader: Any = self._reader  # typeshed does not list the private attributes
        reader._buffer[0:0] = b"\r\n"  # noqa: SLF001 - see the docstring
        saved = reader._limit  # noqa: SLF001
        reader._limit = limit + 64  # noqa: SLF001 - room for the stuffing of a few lines
        refusal: str | None = None
        try:
            while True:
                try:
                    raw: bytes = await reader.readuntil(b"\r\n.\r\n")
                except asyncio.LimitOverrunError as overrun:
                    # Too large: drop what arrived (keeping the terminator's possible start),
                    # keep reading to the end, then refuse.
                    dropped = await reader.readexactly(overrun.consumed)
                    refusal = refusal or (self._problem(dropped) or str(R.TOO_LARGE))
                    continue
                if refusal is not None:
                    return refusal, b""
                break
        finally:
            reader._limit = saved  # noqa: SLF001
        body = raw[2:-3]  # without the CRLF put back above and the final ".CRLF"
        problem = self._problem(body)
        if problem is not None:
            return problem, b""
        # Transparency (RFC 5321 §4.5.2): one leading dot removed from every line.
        data = (b"\r\n" + body).replace(b"\r\n.", b"\r\n")[2:]
        if len(data) > limit:
            return str(R.TOO_LARGE), b""
        return None, data

    def _problem(self, data: bytes) -> str | None:
        """Bare CR or LF, NUL, or an over-long line in (dot-stuffed) data; else None."""
        crlf = data.count(b"\r\n")
        if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
            return str(R.BARE_NEWLINE)
        if b"\x00" in data:
            # Some servers drop NULs: "\r\n\x00.\r\n" would end DATA for them.
            return str(R.NUL_BYTE)
        # Lines are CRLF-separated now; the longest may hold a transparency dot.
        if len(max(data.split(b"\r\n"), key=len)) >= self.limits.max_line_length:
            return str(R.LINE_TOO_LONG)
        return None
