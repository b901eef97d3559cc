"""The IMAP listeners: STARTTLS on the imap port, implicit TLS on the imaps port.

RFC 9051 §6.2.1 and RFC 8314 (implicit TLS on 993 preferred; STARTTLS on 143 with
LOGINDISABLED until TLS is active). Each connection is an :class:`ImapSession`; the
server keeps the set of live sessions so that :meth:`ImapServer.close` can say ``BYE`` to
each before the store closes. A failing session never takes another one down: each runs in
its own task and its errors end only its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from gateway_imap.auth import Authenticator, LoginThrottle, ThrottleSettings, Unlocker
from gateway_imap.session import ImapSession, SessionSettings
from messaging.mailbox_session import MailboxAccess

__all__ = ["ImapSettings", "ImapServer"]

log = logging.getLogger("pli.imap")

_STREAM_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class ImapSettings:
    host: str = "127.0.0.1"
    port: int = 2143
    """STARTTLS port (0: any free port)."""
    imaps_port: int | None = 2993
    """Implicit TLS port (0: any free port; None: no implicit-TLS listener)."""
    session: SessionSettings = field(default_factory=SessionSettings)
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    max_connections: int = 1000


class ImapServer:
    def __init__(
        self,
        *,
        access: MailboxAccess,
        accounts: Unlocker,
        tls_context: ssl.SSLContext,
        settings: ImapSettings,
    ) -> None:
        self._access = access
        self._tls = tls_context
        self._settings = settings
        self.authenticator = Authenticator(
            accounts=accounts, access=access, throttle=LoginThrottle(settings.throttle)
        )
        self._servers: list[asyncio.Server] = []
        self._sessions: set[ImapSession] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0
        self.imaps_port: int | None = None

    async def start(self) -> None:
        limit = max(_STREAM_LIMIT, self._settings.session.limits.max_line + 2)
        plain = await asyncio.start_server(
            lambda r, w: self._accept(r, w, tls_active=False),
            self._settings.host,
            self._settings.port,
            limit=limit,
        )
        self._servers.append(plain)
        self.port = plain.sockets[0].getsockname()[1]
        if self._settings.imaps_port is not None:
            secure = await asyncio.start_server(
                lambda r, w: self._accept(r, w, tls_active=True),
                self._settings.host,
                self._settings.imaps_port,
                ssl=self._tls,
                limit=limit,
                ssl_handshake_timeout=30.0,
            )
            self._servers.append(secure)
            self.imaps_port = secure.sockets[0].getsockname()[1]

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, tls_active: bool
    ) -> None:
        if len(self._sessions) >= self._settings.max_connections:
            with contextlib.suppress(Exception):
                writer.write(b"* BYE too many connections\r\n")
                await writer.drain()
                writer.close()
            return
        session = ImapSession(
            reader,
            writer,
            authenticator=self.authenticator,
            settings=self._settings.session,
            tls_context=self._tls,
            tls_active=tls_active,
            append_limit=self._access.append_limit,
        )
        self._sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        except Exception:
            log.exception("IMAP session ended on an error")
        finally:
            self._sessions.discard(session)
            if task is not None:
                self._tasks.discard(task)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    async def close(self, grace: float = 5.0) -> None:
        """Stop listening, say BYE to every session, wait for them (bounded)."""
        for server in self._servers:
            server.close()
        for session in tuple(self._sessions):
            await session.shutdown()
        tasks = tuple(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), grace)
