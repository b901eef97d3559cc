"""What protocol gateways need besides delivery: early recipient checks, refusal traces.

An SMTP server must refuse an unknown or closed mailbox at ``RCPT`` (RFC 5321 §3.3), long
before the message is sealed; the delivery service checks again when it commits, so a stale
answer here can at worst let a doomed message reach the store, which refuses it.

Every refusal a gateway gives is a functional trace line (DOMAIN.md, "Traces"): who asked
(the peer or the authenticated mailbox), what was refused, the reply and the rule's code —
never a subject or a body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from messaging.account_cache import AccountCache
from messaging.errors import MailboxClosed, PliError, UnknownMailbox
from messaging.ports import Clock, MailboxStore
from messaging.types import AccountRecord, Address, TraceEntry

__all__ = ["GatewaySupport"]

log = logging.getLogger("messaging.gateways")


class GatewaySupport:
    def __init__(self, store: MailboxStore, clock: Clock, *, cache_seconds: float = 5.0) -> None:
        self._store = store
        self._clock = clock
        self._accounts = AccountCache(store, ttl=cache_seconds)

    async def account(self, address: Address) -> AccountRecord | None:
        return await self._accounts.get(address)

    async def check_recipient(self, address: Address) -> AccountRecord:
        """The open local account of ``address``; ``UnknownMailbox`` or ``MailboxClosed``."""
        account = await self._accounts.get(address)
        if account is None:
            raise UnknownMailbox(f"{address} is not a known mailbox")
        if account.closed_at is not None:
            raise MailboxClosed(f"{address} is closed")
        return account

    async def trace(
        self, actor: str, action: str, subject: str, details: Mapping[str, str]
    ) -> None:
        """Record one accept or refusal; a trace that cannot be written is logged, not fatal.

        The reply was already decided: failing it because the trace could not be written
        would turn a clear refusal into a confusing ``451``.
        """
        entry = TraceEntry(
            actor=actor,
            action=action,
            subject=subject,
            at=self._clock.now(),
            details=dict(details),
        )
        try:
            await self._store.record_trace(entry)
        except PliError as error:
            log.warning(
                "trace not recorded",
                extra={"action": action, "error": type(error).__name__},
            )
