"""Mailbox public keys, published through the key transparency log.

:class:`TransparentKeyDirectory` implements :class:`messaging.ports.KeyDirectory` on top of
a :class:`directory.transparency.TransparencyLog` (RFC 9162 §2.1 Merkle log, signed tree
heads): the log *is* the key store, so there is no second copy of the keys that could
disagree with what the log shows.

- A publication is a leaf (:class:`crypto.merkle.KeyLeaf`, status ``published``); a
  rotation is a new leaf for the same address, and the latest leaf wins; a revocation is a
  leaf with status ``revoked`` carrying the keys it ends. Leaves of an address are numbered
  from 0 (``sequence``), inside the append's transaction.
- :meth:`~TransparentKeyDirectory.lookup_with_proof` answers with a
  :class:`messaging.transparency.KeyProof` that a :class:`~messaging.transparency.KeyVerifier`
  checks: the leaf, its inclusion proof in the latest signed head and, when the client says
  which tree size it trusts, the consistency proof from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from crypto.keys import EncryptionPublicKey, SigningPublicKey
from crypto.merkle import KeyLeaf, KeyStatus, SignedTreeHead
from directory.transparency import LogEntry, TransparencyLog
from messaging.errors import NotFound
from messaging.ports import Clock
from messaging.transparency import ConsistencyProof, KeyProof
from messaging.types import Address

__all__ = ["LoggedKeys", "TransparentKeyDirectory"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LoggedKeys:
    """An address's current keys as the log holds them (a :class:`PublishedKeys`)."""

    address: Address
    encryption_key: bytes
    signing_key: bytes


def _leaf(entry: LogEntry) -> KeyLeaf:
    return KeyLeaf.from_bytes(entry.data)


class TransparentKeyDirectory:
    """A :class:`~messaging.ports.KeyDirectory` whose every answer can be proven."""

    def __init__(self, log: TransparencyLog, *, clock: Clock) -> None:
        self._log = log
        self._clock = clock

    @property
    def log(self) -> TransparencyLog:
        return self._log

    def _now_ms(self) -> int:
        return (self._clock.now() - _EPOCH) // timedelta(milliseconds=1)

    async def _proof_of(
        self, entry: LogEntry, head: SignedTreeHead, known_size: int | None
    ) -> KeyProof:
        # A client ahead of this head gets no consistency proof: its verifier then reports
        # the rollback, which is what happened from its point of view.
        if known_size is not None and not 0 <= known_size <= head.tree_size:
            known_size = None
        inclusion, consistency = await self._log.proofs(entry.index, head.tree_size, known_size)
        return KeyProof(_leaf(entry), inclusion, head, consistency)

    async def publish(
        self, address: Address, encryption_key: bytes, signing_key: bytes
    ) -> KeyProof:
        """Make these the current keys of ``address``: a first publication or a rotation.

        Publishing the current keys again appends nothing and returns their proof.
        """
        enc, sig = EncryptionPublicKey(encryption_key), SigningPublicKey(signing_key)
        current = await self._log.latest(str(address))
        if current is not None:
            leaf = _leaf(current)
            if leaf.status is KeyStatus.PUBLISHED and (leaf.encryption_key, leaf.signing_key) == (
                enc,
                sig,
            ):
                return await self._proof_of(current, await self._log.latest_head(), None)
        now_ms = self._now_ms()

        def build(previous: LogEntry | None) -> bytes:
            sequence = 0 if previous is None else _leaf(previous).sequence + 1
            return KeyLeaf(str(address), enc, sig, sequence, now_ms).to_bytes()

        result = await self._log.append(str(address), build)
        return await self._proof_of(result.entry, result.head, None)

    async def revoke(self, address: Address) -> KeyProof:
        """End the current keys of ``address``; :class:`NotFound` if it has none."""
        now_ms = self._now_ms()

        def build(previous: LogEntry | None) -> bytes:
            leaf = None if previous is None else _leaf(previous)
            if leaf is None or leaf.status is not KeyStatus.PUBLISHED:
                raise NotFound(f"{address} has no published keys to revoke")
            return KeyLeaf(
                str(address),
                leaf.encryption_key,
                leaf.signing_key,
                leaf.sequence + 1,
                now_ms,
                KeyStatus.REVOKED,
            ).to_bytes()

        result = await self._log.append(str(address), build)
        return await self._proof_of(result.entry, result.head, None)

    async def lookup(self, address: Address) -> LoggedKeys | None:
        """The current keys of ``address``; None when unknown or revoked."""
        entry = await self._log.latest(str(address))
        if entry is None:
            return None
        leaf = _leaf(entry)
        if leaf.status is not KeyStatus.PUBLISHED:
            return None
        return LoggedKeys(address, leaf.encryption_key.raw, leaf.signing_key.raw)

    async def signing_keys(self, address: Address) -> list[bytes]:
        """Every signing key ``address`` has published, oldest first, without repeats.

        Revoked keys stay listed: a message signed while they were current is still the
        sender's (the revocation leaf dates when they stopped being current).
        """
        seen: list[bytes] = []
        for entry in await self._log.history(str(address)):
            raw = _leaf(entry).signing_key.raw
            if raw not in seen:
                seen.append(raw)
        return seen

    async def history(self, address: Address) -> list[KeyLeaf]:
        """Every leaf about ``address``, oldest first: what its owner monitors."""
        return [_leaf(entry) for entry in await self._log.history(str(address))]

    async def lookup_with_proof(
        self, address: Address, *, known_size: int | None = None
    ) -> KeyProof | None:
        """The latest leaf of ``address`` with its proofs, or None when it has none.

        ``known_size`` is the size of the tree head the client trusts; the proof then carries
        a consistency proof from it. A revoked address gets the proof of its revocation
        leaf, so the client learns the revocation from the log too.
        """
        head = await self._log.latest_head()
        entry = await self._log.latest(str(address), before=head.tree_size)
        if entry is None:
            return None
        return await self._proof_of(entry, head, known_size)

    async def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        """For clients moving their trusted head forward (``GET /v1/directory/log/…``)."""
        return await self._log.consistency_proof(old_size, new_size)

    async def latest_head(self) -> SignedTreeHead:
        return await self._log.latest_head()
