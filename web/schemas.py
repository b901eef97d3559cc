"""Response bodies of the REST API: pydantic ``…Out`` models built from domain values.

Routes never return a domain dataclass or a database row: each model here says which
fields leave the server, and ``from_…`` builds it. Keys, hashes and signatures are
base64url without padding (RFC 4648 §5), as everywhere in Pli.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from crypto.encoding import b64url_encode
from messaging.directory import (
    Code,
    MailboxEntry,
    Organisation,
    PostalAddress,
    Practitioner,
    Role,
    SearchHit,
)
from messaging.types import MailboxKind

__all__ = [
    "CodeOut",
    "PractitionerOut",
    "PostalAddressOut",
    "OrganisationOut",
    "RoleOut",
    "SearchHitOut",
    "SearchPageOut",
    "KeysOut",
    "ConsistencyProofOut",
    "KeyProofOut",
    "MailboxOut",
    "TreeHeadOut",
    "b64url",
]


b64url = b64url_encode
"""base64url without padding (RFC 4648 §5), as every Pli format spells it."""


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CodeOut(_Out):
    """A code of the national nomenclatures with its label (both empty when absent)."""

    code: str
    label: str

    @classmethod
    def from_code(cls, code: Code) -> CodeOut:
        return cls(code=code.code, label=code.label)


class PractitionerOut(_Out):
    national_id: str = Field(description="idNatPS: 8 + RPPS, or 0 + ADELI")
    rpps: str | None
    adeli: str | None
    civility: str
    family_name: str
    given_name: str
    category: CodeOut
    profession: CodeOut
    specialty: CodeOut

    @classmethod
    def from_practitioner(cls, p: Practitioner) -> PractitionerOut:
        return cls(
            national_id=p.national_id,
            rpps=p.rpps,
            adeli=p.adeli,
            civility=p.civility,
            family_name=p.family_name,
            given_name=p.given_name,
            category=CodeOut.from_code(p.category),
            profession=CodeOut.from_code(p.profession),
            specialty=CodeOut.from_code(p.specialty),
        )


class PostalAddressOut(_Out):
    complement_location: str
    complement_distribution: str
    street_number: str
    street_number_suffix: str
    street_type: str
    street_name: str
    locality: str
    routing_line: str
    postcode: str
    city: str
    department: str
    country: str

    @classmethod
    def from_address(cls, a: PostalAddress) -> PostalAddressOut:
        return cls(
            complement_location=a.complement_location,
            complement_distribution=a.complement_distribution,
            street_number=a.street_number,
            street_number_suffix=a.street_number_suffix,
            street_type=a.street_type,
            street_name=a.street_name,
            locality=a.locality,
            routing_line=a.routing_line,
            postcode=a.postcode,
            city=a.city,
            department=a.department,
            country=a.country,
        )


class OrganisationOut(_Out):
    national_id: str = Field(description="Identification Structure: type digit + identifier")
    id_type: str
    finess: str | None
    name: str
    trade_name: str
    address: PostalAddressOut

    @classmethod
    def from_organisation(cls, o: Organisation) -> OrganisationOut:
        return cls(
            national_id=o.national_id,
            id_type=o.id_type,
            finess=o.finess,
            name=o.name,
            trade_name=o.trade_name,
            address=PostalAddressOut.from_address(o.address),
        )


class RoleOut(_Out):
    """One line of the national extraction: the mailbox held by a practitioner at a structure."""

    practitioner: PractitionerOut | None
    organisation: OrganisationOut | None
    service: str
    dematerialised: bool

    @classmethod
    def from_role(cls, role: Role) -> RoleOut:
        return cls(
            practitioner=None
            if role.practitioner is None
            else PractitionerOut.from_practitioner(role.practitioner),
            organisation=None
            if role.organisation is None
            else OrganisationOut.from_organisation(role.organisation),
            service=role.service,
            dematerialised=role.dematerialised,
        )


class SearchHitOut(_Out):
    address: str
    kind: MailboxKind
    display_name: str
    tier: int = Field(
        description="1: a word starts the family name; 2: the given name or the "
        "organisation; 3: matched elsewhere only"
    )
    role: RoleOut

    @classmethod
    def from_hit(cls, hit: SearchHit) -> SearchHitOut:
        return cls(
            address=str(hit.address),
            kind=hit.role.kind,
            display_name=hit.role.display_name,
            tier=hit.tier,
            role=RoleOut.from_role(hit.role),
        )


class SearchPageOut(_Out):
    items: list[SearchHitOut]
    total: int = Field(description="How many lines match, counted up to a limit (1000)")
    total_exact: bool = Field(description="False when at least that many match: refine")
    limit: int = Field(description="The page size used (requests above the cap are capped)")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")
    next: str | None = Field(description="The URL of the next page, also in the Link header")


class KeysOut(_Out):
    """A mailbox's current public keys (X25519, Ed25519), base64url."""

    encryption_key: str
    signing_key: str


class ConsistencyProofOut(_Out):
    """RFC 9162 §2.1.4 proof that the tree of ``old_size`` leaves is a prefix of the other."""

    old_size: int
    new_size: int
    path: list[str]


class KeyProofOut(_Out):
    """``messaging.transparency.KeyProof.to_json()``: parse it with ``KeyProof.from_json``."""

    leaf: str = Field(description="The key leaf's canonical bytes, base64url")
    leaf_index: int
    tree_size: int
    inclusion: list[str] = Field(description="RFC 9162 §2.1.3 audit path, base64url hashes")
    head: str = Field(description="The signed tree head's bytes, base64url")
    consistency: ConsistencyProofOut | None = Field(
        description="From the `known_size` the client trusts to `head`, when asked"
    )

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> KeyProofOut:
        return cls.model_validate(dict(data))


class MailboxOut(_Out):
    address: str
    kind: MailboxKind
    service: str
    description: str
    responsible: str | None = Field(
        description="Only for authenticated professionals; null otherwise"
    )
    preferred_rank: int | None
    roles: list[RoleOut]
    keys: KeysOut | None = Field(
        description="Current keys; null when none are published, or they were revoked"
    )
    proof: KeyProofOut | None = Field(
        description="Transparency proof of the address's latest key leaf (null: none)"
    )

    @classmethod
    def from_entry(
        cls,
        entry: MailboxEntry,
        *,
        show_responsible: bool,
        keys: KeysOut | None,
        proof: KeyProofOut | None,
    ) -> MailboxOut:
        return cls(
            address=str(entry.address),
            kind=entry.kind,
            service=entry.service,
            description=entry.description,
            responsible=entry.responsible if show_responsible else None,
            preferred_rank=entry.preferred_rank,
            roles=[RoleOut.from_role(role) for role in entry.roles],
            keys=keys,
            proof=proof,
        )


class TreeHeadOut(_Out):
    """A signed tree head of the key log (see ``crypto.merkle.SignedTreeHead``)."""

    log_id: str
    tree_size: int
    root_hash: str
    timestamp_ms: int
    signature: str
    head: str = Field(description="The whole head's bytes, base64url: SignedTreeHead.from_bytes")
