"""Small stand-ins for the directory and the key log, implementing the messaging ports.

``FakeDirectory`` follows the directory port's search contract closely enough for the web
tests (prefix words, case and accents ignored, all words must match, liste rouge and
retired mailboxes never shown, tiers, ``COUNT_LIMIT``, ``InvalidQuery`` without words).
``FakeKeyLog`` is a real RFC 9162 log in memory (``crypto.merkle.MerkleTree``) with signed
heads, so its proofs verify with ``messaging.transparency.KeyVerifier``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from crypto.keys import EncryptionPublicKey, SigningKey, SigningPublicKey
from crypto.merkle import KeyLeaf, KeyStatus, MerkleTree, SignedTreeHead, sign_tree_head
from messaging.directory import (
    Application,
    ImportProgress,
    ImportReport,
    InvalidQuery,
    MailboxEntry,
    Organisation,
    Patient,
    Practitioner,
    Role,
    SearchHit,
    SearchPage,
    SearchQuery,
)
from messaging.errors import AccountExists, NotFound, UnknownMailbox
from messaging.ins import Ins
from messaging.ports import Clock
from messaging.transparency import ConsistencyProof, InclusionProof, KeyProof
from messaging.types import Address, MailboxKind

_NON_WORD = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower())
    stripped = "".join(c for c in folded if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", stripped).strip()


def _document(role: Role) -> dict[str, str]:
    p, o = role.practitioner, role.organisation
    return {
        "name": normalise(p.family_name) if p else "",
        "given_name": normalise(p.given_name) if p else "",
        "profession": normalise(p.profession.label) if p else "",
        "specialty": normalise(p.specialty.label) if p else "",
        "organisation": normalise(f"{o.name} {o.trade_name} {role.service}") if o else "",
        "city": normalise(o.address.city) if o else "",
        "postcode": normalise(o.address.postcode) if o else "",
        "street": normalise(f"{o.address.street_type} {o.address.street_name}") if o else "",
    }


_FIELDS = ("name", "given_name", "profession", "specialty", "organisation", "city", "postcode")


class FakeDirectory:
    """The directory port over a dict of mailboxes (with their roles)."""

    def __init__(self) -> None:
        self.mailboxes: dict[Address, MailboxEntry] = {}
        self.practitioners: dict[str, Practitioner] = {}
        self.organisations: dict[str, Organisation] = {}
        self.patients: dict[Address, Patient] = {}
        self.searches: list[SearchQuery] = []

    def add(self, entry: MailboxEntry) -> None:
        self.mailboxes[entry.address] = entry
        for role in entry.roles:
            if role.practitioner is not None:
                self.practitioners[role.practitioner.national_id] = role.practitioner
            if role.organisation is not None:
                self.organisations[role.organisation.national_id] = role.organisation

    # -- what the web uses --------------------------------------------------------------

    async def get_mailbox(self, address: Address) -> MailboxEntry | None:
        return self.mailboxes.get(address)

    async def get_practitioner(self, national_id: str) -> Practitioner | None:
        return self.practitioners.get(national_id)

    async def get_organisation(self, national_id: str) -> Organisation | None:
        return self.organisations.get(national_id)

    async def search(self, query: SearchQuery) -> SearchPage:
        self.searches.append(query)
        terms: list[tuple[str | None, str]] = [(None, w) for w in normalise(query.text).split()]
        for attribute in (*_FIELDS, "street"):
            terms += [(attribute, w) for w in normalise(getattr(query, attribute)).split()]
        mailbox = query.mailbox.strip().lower()
        if not terms and not mailbox:
            raise InvalidQuery("a search needs at least one word (or part of an address)")
        if len(terms) > 12:
            raise InvalidQuery("a search takes at most 12 words")
        offset = query.offset
        hits: list[SearchHit] = []
        for entry in self.mailboxes.values():
            if entry.liste_rouge or entry.retired:
                continue
            for role in entry.roles:
                if mailbox and mailbox not in str(role.mailbox):
                    continue
                if query.kind is not None and role.kind is not query.kind:
                    continue
                document = _document(role)
                tier = self._tier(document, terms)
                if tier is not None:
                    hits.append(SearchHit(role, tier))
        hits.sort(key=lambda hit: hit.tier)
        page = tuple(hits[offset : offset + query.limit])
        return SearchPage.cut(page, len(hits), offset)

    @staticmethod
    def _tier(document: dict[str, str], terms: list[tuple[str | None, str]]) -> int | None:
        tier = 3
        for field, word in terms:
            fields = (*_FIELDS, "street") if field is None else (field,)
            matched = [f for f in fields if any(w.startswith(word) for w in document[f].split())]
            if not matched:
                return None
            if field is None and "name" in matched:
                tier = min(tier, 1)
            elif field is None and ({"given_name", "organisation"} & set(matched)):
                tier = min(tier, 2)
        return tier if any(f is None for f, _ in terms) else 1

    # -- the rest of the port, as the web never calls it -------------------------------

    async def import_extraction(
        self,
        lines: Iterable[bytes],
        *,
        progress: Callable[[ImportProgress], None] | None = None,
    ) -> ImportReport:
        raise NotImplementedError

    def export_extraction(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def add_mailbox(self, entry: MailboxEntry) -> None:
        if entry.address in self.mailboxes:
            raise AccountExists(str(entry.address))
        self.add(entry)

    async def update_mailbox(self, entry: MailboxEntry) -> MailboxEntry:
        stored = self.mailboxes.get(entry.address)
        if stored is None:
            raise UnknownMailbox(str(entry.address))
        self.mailboxes[entry.address] = replace(entry, roles=stored.roles)
        return self.mailboxes[entry.address]

    async def add_patient(self, patient: Patient) -> None:
        self.patients[patient.address] = patient
        self.add(MailboxEntry(patient.address, MailboxKind.PAT))

    async def get_patient(self, address: Address) -> Patient | None:
        return self.patients.get(address)

    async def find_patient(self, ins: Ins) -> Patient | None:
        return next((p for p in self.patients.values() if p.identity.ins == ins), None)

    async def update_patient(self, patient: Patient) -> None:
        raise NotImplementedError

    async def add_application(self, application: Application) -> None:
        raise NotImplementedError

    async def get_application(self, address: Address) -> Application | None:  # noqa: ARG002
        return None

    async def update_application(self, application: Application) -> None:
        raise NotImplementedError

    async def list_applications(
        self,
        *,
        referenced_only: bool = True,  # noqa: ARG002
    ) -> list[Application]:
        return []

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class FakeKeys:
    address: Address
    encryption_key: bytes
    signing_key: bytes


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FakeKeyLog:
    """A key transparency log in memory: every publication and revocation is a leaf."""

    def __init__(self, key: SigningKey, log_id: str, clock: Clock) -> None:
        self._key = key
        self._log_id = log_id
        self._clock = clock
        self._tree = MerkleTree()
        self._leaves: list[KeyLeaf] = []

    def _now_ms(self) -> int:
        return (self._clock.now() - _EPOCH) // timedelta(milliseconds=1)

    def _latest_index(self, address: Address) -> int | None:
        for index in range(len(self._leaves) - 1, -1, -1):
            if self._leaves[index].address == str(address):
                return index
        return None

    def _append(self, leaf: KeyLeaf) -> None:
        self._leaves.append(leaf)
        self._tree.append(leaf.to_bytes())

    def publish(self, address: Address, encryption_key: bytes, signing_key: bytes) -> None:
        index = self._latest_index(address)
        sequence = 0 if index is None else self._leaves[index].sequence + 1
        self._append(
            KeyLeaf(
                str(address),
                EncryptionPublicKey(encryption_key),
                SigningPublicKey(signing_key),
                sequence,
                self._now_ms(),
            )
        )

    def revoke(self, address: Address) -> None:
        index = self._latest_index(address)
        assert index is not None
        leaf = self._leaves[index]
        self._append(replace(leaf, sequence=leaf.sequence + 1, status=KeyStatus.REVOKED))

    async def latest_head(self) -> SignedTreeHead:
        return sign_tree_head(
            self._key,
            log_id=self._log_id,
            tree_size=self._tree.size,
            root_hash=self._tree.root(),
            timestamp_ms=self._now_ms(),
        )

    async def lookup_with_proof(
        self, address: Address, *, known_size: int | None = None
    ) -> KeyProof | None:
        index = self._latest_index(address)
        if index is None:
            return None
        head = await self.latest_head()
        size = head.tree_size
        inclusion = InclusionProof(index, size, tuple(self._tree.inclusion_proof(index, size)))
        consistency = None
        if known_size is not None and 0 <= known_size < size:
            consistency = await self.consistency_proof(known_size, size)
        return KeyProof(self._leaves[index], inclusion, head, consistency)

    async def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        if not 0 <= old_size <= new_size <= self._tree.size:
            raise NotFound(f"no consistency proof from {old_size} to {new_size} leaves")
        path = tuple(self._tree.consistency_proof(old_size, new_size))
        return ConsistencyProof(old_size, new_size, path)

    async def lookup(self, address: Address) -> FakeKeys | None:
        index = self._latest_index(address)
        if index is None or self._leaves[index].status is not KeyStatus.PUBLISHED:
            return None
        leaf = self._leaves[index]
        return FakeKeys(address, leaf.encryption_key.raw, leaf.signing_key.raw)

    async def signing_keys(self, address: Address) -> list[bytes]:
        return list(
            dict.fromkeys(
                leaf.signing_key.raw for leaf in self._leaves if leaf.address == str(address)
            )
        )
