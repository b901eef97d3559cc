"""A key directory that hands out only keys whose transparency proof checks.

Senders seal for the keys this returns, so a directory (or a database) that swapped a
recipient's key without logging it is caught here: the lookup fails with
:class:`~messaging.transparency.KeyVerificationError` instead of sealing for an attacker.
Verified answers are cached for ``ttl`` seconds (a proof costs a few queries; a busy sender
looks up the same recipients again and again); the verifier's trusted head only moves
forward, through consistency proofs.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from messaging.ports import KeyLog
from messaging.transparency import Failure, KeyVerificationError, KeyVerifier
from messaging.types import Address

__all__ = ["VerifiedKeyDirectory", "VerifiedKeys"]


@dataclass(frozen=True, slots=True)
class VerifiedKeys:
    address: Address
    encryption_key: bytes
    signing_key: bytes
    leaf_index: int


class VerifiedKeyDirectory:
    def __init__(
        self,
        log: KeyLog,
        verifier: KeyVerifier,
        *,
        ttl: float = 30.0,
        size: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._verifier = verifier
        self._ttl = ttl
        self._size = size
        self._monotonic = monotonic
        self._cache: OrderedDict[Address, tuple[float, VerifiedKeys]] = OrderedDict()

    @property
    def verifier(self) -> KeyVerifier:
        return self._verifier

    async def lookup(self, address: Address) -> VerifiedKeys | None:
        """The current keys of ``address``, verified; None when it has none (or revoked)."""
        now = self._monotonic()
        hit = self._cache.get(address)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        trusted = self._verifier.trusted_head
        proof = await self._log.lookup_with_proof(
            address, known_size=None if trusted is None else trusted.tree_size
        )
        if proof is None:
            return None
        keys = VerifiedKeys(
            address, proof.leaf.encryption_key.raw, proof.leaf.signing_key.raw, proof.leaf_index
        )
        try:
            self._verifier.verify(address, keys, proof)
        except KeyVerificationError as error:
            if error.reason is Failure.REVOKED:
                return None  # a revocation proven by the log: the address has no keys now
            raise
        self._cache[address] = (now, keys)
        self._cache.move_to_end(address)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return keys

    async def signing_keys(self, address: Address) -> list[bytes]:
        return await self._log.signing_keys(address)

    def forget(self, address: Address) -> None:
        self._cache.pop(address, None)
