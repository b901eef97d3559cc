"""IMAP mailbox state in memory (RFC 3501, RFC 7162)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from messaging.types import Address, Changes, FlagMode, FlagUpdate, FolderRecord, MessageRecord

__all__ = ["MemoryImapState"]


class MemoryImapState:
    """IMAP mailbox state of the store (interface published; implementation follows)."""

    async def folder_status(self, address: Address, folder: str) -> FolderRecord:
        raise NotImplementedError

    async def create_folder(self, address: Address, name: str) -> FolderRecord:
        raise NotImplementedError

    async def rename_folder(self, address: Address, old: str, new: str) -> None:
        raise NotImplementedError

    async def delete_folder(self, address: Address, name: str) -> None:
        raise NotImplementedError

    async def set_subscribed(self, address: Address, name: str, subscribed: bool) -> None:
        raise NotImplementedError

    async def list_subscriptions(self, address: Address) -> list[str]:
        raise NotImplementedError

    async def fetch_records(
        self, address: Address, folder: str, uids: Sequence[int]
    ) -> list[MessageRecord]:
        raise NotImplementedError

    async def update_flags(
        self,
        address: Address,
        folder: str,
        uids: Sequence[int],
        mode: FlagMode,
        flags: frozenset[str],
        *,
        unchanged_since: int | None = None,
    ) -> FlagUpdate:
        raise NotImplementedError

    async def expunge(
        self, address: Address, folder: str, uids: Sequence[int] | None = None
    ) -> list[int]:
        raise NotImplementedError

    async def copy_messages(
        self, address: Address, source: str, uids: Sequence[int], target: str
    ) -> list[tuple[int, int]]:
        raise NotImplementedError

    async def move_messages(
        self, address: Address, source: str, uids: Sequence[int], target: str
    ) -> list[tuple[int, int]]:
        raise NotImplementedError

    async def changes_since(self, address: Address, folder: str, modseq: int) -> Changes:
        raise NotImplementedError

    def watch(self, address: Address) -> AsyncIterator[str]:
        raise NotImplementedError
