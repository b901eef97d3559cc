"""Batch reads of messages for a protocol session (an IMAP FETCH over a range, RFC 3501 §6.4.5).

Mixed into :class:`~mailbox_store.sql.SqlMailboxStore`. :meth:`get_messages` returns the
records, the account's key slots and the bytes of the envelopes kept inline in the
database in one statement per few thousand UIDs, where opening them one by one cost three
round trips each (record and slot, inline blob, and the blob store's hop through the event
loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select

from mailbox_store.imap_sql import _RECORD_COLUMNS, _chunks, _Records, _uid_filter
from mailbox_store.tables import EnvelopeRow, InlineBlobRow, KeySlotRow, MessageRow
from messaging.types import Address, StoredMessage

if TYPE_CHECKING:
    from mailbox_store.imap_sql import SqlImapState

    _Base = SqlImapState
else:
    _Base = object

__all__ = ["SqlBatchReads"]


class SqlBatchReads(_Base):
    """:meth:`messaging.ports.MailboxStore.get_messages` on SQLite and PostgreSQL."""

    async def get_messages(
        self, address: Address, folder: str, uids: Sequence[int]
    ) -> list[StoredMessage]:
        found: list[StoredMessage] = []
        async with self._state_reading() as connection:
            box = await self._folder(connection, address, folder)
            records = _Records(box.name)
            wanted = sorted(set(uids))
            for chunk in _chunks(wanted):
                where, keep = _uid_filter(chunk)
                query = (
                    select(*_RECORD_COLUMNS, KeySlotRow.slot, InlineBlobRow.data)
                    .select_from(MessageRow)
                    .join(EnvelopeRow, EnvelopeRow.envelope_id == MessageRow.envelope_id)
                    .join(
                        KeySlotRow,
                        and_(
                            KeySlotRow.envelope_id == MessageRow.envelope_id,
                            KeySlotRow.account_id == box.account_id,
                        ),
                    )
                    .outerjoin(InlineBlobRow, InlineBlobRow.digest == EnvelopeRow.blob_digest)
                    .where(MessageRow.folder_id == box.id, where)
                    .order_by(MessageRow.uid)
                )
                for row in await connection.execute(query):
                    if keep is not None and row.uid not in keep:
                        continue
                    columns: Any = tuple(row)
                    found.append(
                        StoredMessage(records(columns[:-2]), columns[-2], inline=columns[-1])
                    )
        return found
