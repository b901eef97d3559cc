"""The SQL implementation of :class:`messaging.webmail.WebmailStore`.

Pending sign-ins, sessions and preferences, in the store's database (tables in
:mod:`mailbox_store.webmail_tables`, migration ``store_0007_webmail``). One short
transaction per call; expired rows are deleted as they are met and by :meth:`purge`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailbox_store import engine as engines
from mailbox_store.invariants import address_key
from mailbox_store.webmail_tables import (
    WebmailPendingRow,
    WebmailPreferencesRow,
    WebmailSessionRow,
)
from messaging.types import Address
from messaging.webmail import PendingLogin, Preferences, WebSession

__all__ = ["SqlWebmailStore"]


class SqlWebmailStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**engines.WRITE)

    @classmethod
    def open(cls, url: str) -> SqlWebmailStore:
        """On a database the mailbox store already migrated (``SqlMailboxStore.open``)."""
        return cls(engines.create_engine(url, pool_size=2))

    async def close(self) -> None:
        await self._engine.dispose()

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        async with engines.translate_errors(), self._engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        async with engines.translate_errors(), self._writer.begin() as connection:
            yield connection

    # -- pending sign-ins -----------------------------------------------------------------

    async def add_pending(self, pending: PendingLogin) -> None:
        async with self._writing() as c:
            await c.execute(
                delete(WebmailPendingRow).where(WebmailPendingRow.expires_at <= pending.created_at)
            )
            await c.execute(
                WebmailPendingRow.__table__.insert().values(  # type: ignore[attr-defined]
                    ticket_hash=pending.ticket_hash,
                    address=address_key(pending.address),
                    credential_id=pending.credential_id,
                    code_hash=pending.code_hash,
                    attempts=pending.attempts,
                    created_at=pending.created_at,
                    expires_at=pending.expires_at,
                )
            )

    async def get_pending(self, ticket_hash: bytes) -> PendingLogin | None:
        async with self._reading() as c:
            row = (
                await c.execute(
                    select(WebmailPendingRow.__table__).where(
                        WebmailPendingRow.ticket_hash == ticket_hash
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        return PendingLogin(
            ticket_hash=row.ticket_hash,
            address=Address.parse(row.address),
            credential_id=row.credential_id,
            code_hash=row.code_hash,
            attempts=row.attempts,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    async def count_attempt(self, ticket_hash: bytes) -> None:
        async with self._writing() as c:
            await c.execute(
                update(WebmailPendingRow)
                .where(WebmailPendingRow.ticket_hash == ticket_hash)
                .values(attempts=WebmailPendingRow.attempts + 1)
            )

    async def delete_pending(self, ticket_hash: bytes) -> None:
        async with self._writing() as c:
            await c.execute(
                delete(WebmailPendingRow).where(WebmailPendingRow.ticket_hash == ticket_hash)
            )

    # -- sessions -------------------------------------------------------------------------

    async def add_session(self, session: WebSession) -> None:
        async with self._writing() as c:
            await c.execute(
                delete(WebmailSessionRow).where(WebmailSessionRow.expires_at <= session.created_at)
            )
            await c.execute(
                WebmailSessionRow.__table__.insert().values(  # type: ignore[attr-defined]
                    token_hash=session.token_hash,
                    address=address_key(session.address),
                    credential_id=session.credential_id,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                    last_seen_at=session.last_seen_at,
                )
            )

    async def get_session(self, token_hash: bytes) -> WebSession | None:
        async with self._reading() as c:
            row = (
                await c.execute(
                    select(WebmailSessionRow.__table__).where(
                        WebmailSessionRow.token_hash == token_hash
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        return WebSession(
            token_hash=row.token_hash,
            address=Address.parse(row.address),
            credential_id=row.credential_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_seen_at=row.last_seen_at,
        )

    async def touch_session(self, token_hash: bytes, at: datetime) -> None:
        async with self._writing() as c:
            await c.execute(
                update(WebmailSessionRow)
                .where(WebmailSessionRow.token_hash == token_hash)
                .values(last_seen_at=at)
            )

    async def delete_session(self, token_hash: bytes) -> None:
        async with self._writing() as c:
            await c.execute(
                delete(WebmailSessionRow).where(WebmailSessionRow.token_hash == token_hash)
            )

    async def delete_sessions(self, address: Address) -> None:
        async with self._writing() as c:
            await c.execute(
                delete(WebmailSessionRow).where(WebmailSessionRow.address == address_key(address))
            )

    # -- preferences ----------------------------------------------------------------------

    async def get_preferences(self, address: Address) -> Preferences | None:
        async with self._reading() as c:
            row = (
                await c.execute(
                    select(
                        WebmailPreferencesRow.notify_email,
                        WebmailPreferencesRow.language,
                        WebmailPreferencesRow.notify_phone,
                    ).where(WebmailPreferencesRow.address == address_key(address))
                )
            ).one_or_none()
        if row is None:
            return None
        return Preferences(address, row.notify_email, row.language, row.notify_phone)

    async def set_preferences(self, preferences: Preferences) -> None:
        key = address_key(preferences.address)
        async with self._writing() as c:
            await c.execute(
                delete(WebmailPreferencesRow).where(WebmailPreferencesRow.address == key)
            )
            await c.execute(
                WebmailPreferencesRow.__table__.insert().values(  # type: ignore[attr-defined]
                    address=key,
                    notify_email=preferences.notify_email,
                    language=preferences.language,
                    notify_phone=preferences.notify_phone,
                )
            )
