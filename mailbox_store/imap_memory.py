"""IMAP mailbox state in memory: the reference for :mod:`mailbox_store.imap_sql`.

Mixed into :class:`~mailbox_store.memory.InMemoryMailboxStore`; the same contract tests
(``tests/mailbox_store/test_imap_state*.py``) run against both, so what this module does is
what the IMAP half of :class:`messaging.ports.MailboxStore` means (RFC 3501/9051 folders
and flags, RFC 4315 UIDPLUS, RFC 6851 MOVE, RFC 7162 CONDSTORE/QRESYNC).

As in the rest of the in-memory store, a method checks everything before its first
mutation and never awaits in between, so no other coroutine sees half a change; changed
folders are then published on the store's :class:`~mailbox_store.changes.ChangeHub`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from mailbox_store.changes import ANY, ChangeHub, Subscription
from mailbox_store.invariants import (
    address_key,
    apply_flags,
    canonical_folder_name,
    check_folder_name,
    is_deleted,
    is_inferior,
    is_seen,
    next_uidvalidity,
    storable_flags,
)
from messaging.errors import AlreadyExists, NotFound, RuleViolation
from messaging.types import (
    Address,
    Changes,
    FlagMode,
    FlagUpdate,
    FolderRecord,
    FolderRole,
    MessageRecord,
)

if TYPE_CHECKING:
    from mailbox_store.memory import _Account, _Folder, _Message
    from messaging.ports import Clock

__all__ = ["MemoryImapState"]


class MemoryImapState:
    """The IMAP state methods of :class:`~mailbox_store.memory.InMemoryMailboxStore`."""

    # Provided by InMemoryMailboxStore.
    _clock: Clock
    _changes: ChangeHub

    if TYPE_CHECKING:

        def _account(self, address: Address) -> _Account | None: ...

        def _folder(self, address: Address, folder: str) -> tuple[_Account, _Folder]: ...

        def _record(self, folder: _Folder, message: _Message) -> MessageRecord: ...

        @staticmethod
        def _new_folder(name: str, uidvalidity: int) -> _Folder: ...

        @staticmethod
        def _new_message(
            uid: int,
            modseq: int,
            flags: frozenset[str],
            internal_date: datetime,
            envelope_id: str,
        ) -> _Message: ...

    def _placement_folder(self, account: _Account, target: FolderRole | str) -> _Folder | None:
        """The folder a placement goes to: the one with that role, or that name (APPEND)."""
        if isinstance(target, FolderRole):
            return next((f for f in account.folders.values() if f.role == target), None)
        return account.folders.get(canonical_folder_name(target))

    def _known(self, address: Address) -> _Account:
        found = self._account(address)
        if found is None:
            raise NotFound(f"no mailbox {address}")
        return found

    def watch(self, address: Address) -> Subscription:
        self._account(address)  # raises Unavailable once the store is closed
        return self._changes.subscribe(address_key(address))

    # -- folders ------------------------------------------------------------------------

    async def folder_status(self, address: Address, folder: str) -> FolderRecord:
        account, box = self._folder(address, folder)
        return FolderRecord(
            name=box.name,
            role=box.role,
            uidvalidity=box.uidvalidity,
            uidnext=box.uidnext,
            highestmodseq=box.highestmodseq,
            messages=len(box.messages),
            unseen=sum(1 for m in box.messages.values() if not is_seen(m.flags)),
            subscribed=box.name in account.subscriptions,
        )

    def _add_folder(self, account: _Account, name: str) -> _Folder:
        floor = max(account.uidvalidity_floor, *(f.uidvalidity for f in account.folders.values()))
        box = self._new_folder(name, next_uidvalidity(self._clock.now(), floor))
        account.uidvalidity_floor = box.uidvalidity
        account.folders[name] = box
        return box

    async def create_folder(self, address: Address, name: str) -> FolderRecord:
        check_folder_name(name)
        name = canonical_folder_name(name)
        account = self._known(address)
        if name in account.folders:
            raise AlreadyExists(f"{address} already has a folder {name!r}")
        self._add_folder(account, name)
        self._changes.publish(address_key(address), ANY)
        return await self.folder_status(address, name)

    async def rename_folder(self, address: Address, old: str, new: str) -> None:
        check_folder_name(new)
        old, new = canonical_folder_name(old), canonical_folder_name(new)
        if new == old or is_inferior(new, old):
            raise RuleViolation("folder-hierarchy", f"cannot rename {old!r} to {new!r}")
        account, source = self._folder(address, old)
        if old == "INBOX":
            if new in account.folders:
                raise AlreadyExists(f"{address} already has a folder {new!r}")
            target = self._add_folder(account, new)
            self._relocate(source, target, sorted(source.messages))
        else:
            moving = {
                name: new + name[len(old) :]
                for name in account.folders
                if name == old or is_inferior(name, old)
            }
            for after in moving.values():
                check_folder_name(after)
                if after in account.folders:
                    raise AlreadyExists(f"{address} already has a folder {after!r}")
            # Rebuild the dict so that listing keeps creation order.
            renamed = {moving.get(name, name): box for name, box in account.folders.items()}
            for name, box in renamed.items():
                box.name = name
            account.folders = renamed
            subscribed = {name for name in moving if name in account.subscriptions}
            account.subscriptions -= subscribed
            account.subscriptions |= {moving[name] for name in subscribed}
        self._changes.publish(address_key(address), ANY)

    async def delete_folder(self, address: Address, name: str) -> None:
        account, box = self._folder(address, name)
        if box.role is not None:
            raise RuleViolation("folder-role", f"{box.name!r} is the {box.role} folder: it stays")
        del account.folders[box.name]
        self._drop_orphan_slots(account, {m.envelope_id for m in box.messages.values()})
        self._changes.publish(address_key(address), ANY)

    @staticmethod
    def _drop_orphan_slots(account: _Account, envelopes: set[str]) -> None:
        held = {
            m.envelope_id
            for box in account.folders.values()
            for m in box.messages.values()
            if m.envelope_id in envelopes
        }
        for envelope_id in envelopes - held:
            account.slots.pop(envelope_id, None)

    async def set_subscribed(self, address: Address, name: str, subscribed: bool) -> None:
        name = canonical_folder_name(name)
        if subscribed:
            account, box = self._folder(address, name)
            account.subscriptions.add(box.name)
        else:
            self._known(address).subscriptions.discard(name)

    async def list_subscriptions(self, address: Address) -> list[str]:
        found = self._account(address)
        return [] if found is None else sorted(found.subscriptions)

    # -- messages -----------------------------------------------------------------------

    async def fetch_records(
        self, address: Address, folder: str, uids: Sequence[int]
    ) -> list[MessageRecord]:
        _, box = self._folder(address, folder)
        return [
            self._record(box, box.messages[uid]) for uid in sorted(set(uids)) if uid in box.messages
        ]

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
        wanted = storable_flags(flags)
        mode = FlagMode(mode)
        _, box = self._folder(address, folder)
        chosen = [box.messages[uid] for uid in sorted(set(uids)) if uid in box.messages]
        failed = [
            m.uid for m in chosen if unchanged_since is not None and m.modseq > unchanged_since
        ]
        kept = [m for m in chosen if m.uid not in set(failed)]
        after = {m.uid: apply_flags(m.flags, mode.value, wanted) for m in kept}
        changed = [m for m in kept if after[m.uid] != m.flags]
        if changed:
            box.highestmodseq += 1
            for message in changed:
                message.flags = after[message.uid]
                message.modseq = box.highestmodseq
            self._changes.publish(address_key(address), box.name)
        return FlagUpdate(updated=[self._record(box, m) for m in kept], failed=failed)

    async def expunge(
        self, address: Address, folder: str, uids: Sequence[int] | None = None
    ) -> list[int]:
        account, box = self._folder(address, folder)
        among = box.messages.keys() if uids is None else set(uids) & box.messages.keys()
        gone = sorted(uid for uid in among if is_deleted(box.messages[uid].flags))
        if not gone:
            return []
        box.highestmodseq += 1
        envelopes = set()
        for uid in gone:
            envelopes.add(box.messages.pop(uid).envelope_id)
            box.tombstones[uid] = box.highestmodseq
        self._drop_orphan_slots(account, envelopes)
        self._changes.publish(address_key(address), box.name)
        return gone

    def _relocate(self, source: _Folder, target: _Folder, uids: list[int]) -> list[tuple[int, int]]:
        source.highestmodseq += 1
        target.highestmodseq += 1
        pairs = []
        for uid in uids:
            message = source.messages.pop(uid)
            source.tombstones[uid] = source.highestmodseq
            new = target.uidnext
            target.uidnext += 1
            message.uid, message.modseq = new, target.highestmodseq
            target.messages[new] = message
            pairs.append((uid, new))
        return pairs

    async def copy_messages(
        self, address: Address, source: str, uids: Sequence[int], target: str
    ) -> list[tuple[int, int]]:
        _, src = self._folder(address, source)
        _, dst = self._folder(address, target)
        chosen = sorted(set(uids) & src.messages.keys())
        if not chosen:
            return []
        dst.highestmodseq += 1
        pairs = []
        for uid in chosen:
            original = src.messages[uid]
            new = dst.uidnext
            dst.uidnext += 1
            dst.messages[new] = self._new_message(
                new, dst.highestmodseq, original.flags, original.internal_date, original.envelope_id
            )
            pairs.append((uid, new))
        self._changes.publish(address_key(address), dst.name)
        return pairs

    async def move_messages(
        self, address: Address, source: str, uids: Sequence[int], target: str
    ) -> list[tuple[int, int]]:
        _, src = self._folder(address, source)
        _, dst = self._folder(address, target)
        chosen = sorted(set(uids) & src.messages.keys())
        if not chosen:
            return []
        pairs = self._relocate(src, dst, chosen)
        self._changes.publish(address_key(address), src.name)
        self._changes.publish(address_key(address), dst.name)
        return pairs

    async def changes_since(self, address: Address, folder: str, modseq: int) -> Changes:
        _, box = self._folder(address, folder)
        return Changes(
            records=[
                self._record(box, box.messages[uid])
                for uid in sorted(box.messages)
                if box.messages[uid].modseq > modseq
            ],
            vanished=sorted(uid for uid, at in box.tombstones.items() if at > modseq),
            highestmodseq=box.highestmodseq,
            uidvalidity=box.uidvalidity,
        )
