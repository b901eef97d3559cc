"""``consent-request``, ``consent-response``, ``consent-revocation``: the consent messages.

No national consent message exists (DOMAIN.md, "Agenda and consent"), so Pli defines its
own. A professional asks to read a patient's documents (``consent-request``: a scope — the
whole record, some document categories or one document —, a purpose and a duration); the
patient grants or refuses (``consent-response``) and may later withdraw a grant
(``consent-revocation``). :mod:`messaging.consent` folds these messages into the patient's
consent registry.

Each message is RFC 5322 / MIME (RFC 2045-2049): ``multipart/mixed`` holding a
human-readable ``text/plain`` part (French by default, English on request, tagged with
``Content-Language``, RFC 3282) and one structured part
``application/vnd.pli.consent-<kind>+json; version=1``, so a clinician's plain mail client
shows a readable text and any Pli reader recovers the typed message.

Implementation notes (invariants):

- **The JSON part is canonical**: keys sorted, no whitespace, UTF-8 (no ``\\u`` escapes),
  integers only, no control characters (Unicode Cc) or lone surrogates in any text. With
  those limits the encoding is the RFC 8785 (JCS) one, written identically by Python's
  ``json`` and by a JavaScript canonicaliser, and the only escapes it ever contains are
  ``\\"`` and ``\\\\``. Hashes and signatures are taken over :func:`canonical_json` of the
  *parsed* values, never over the bytes as received, so a transfer encoding or a different
  spelling of the same JSON cannot change them; duplicate keys, floats, unknown fields and
  non-canonical addresses are refused, so two readers can never see different values.
- **Responses and revocations are signed by the patient** (Ed25519, the patient's mailbox
  signing key) over ``context || canonical JSON of every field but "signature"``. The
  envelope signature is not enough: a message that arrived through a gateway is signed by
  the operator key, not by the patient, and an envelope is deleted with its mailbox while
  the consent must stay provable for as long as the registry relies on it. The signature
  makes the patient's decision verifiable by anyone holding the patient's published key,
  independently of the server that carried it. The context strings
  (``pli-consent-response-v1``, ``pli-consent-revocation-v1``) keep a signature made for one
  kind from being replayed as another.
- **A response names the request it answers** by id *and* by hash
  (BLAKE2b-256 of ``pli-consent-request-v1\\x00 || canonical JSON``, base64url): the patient
  consents to exactly the scope, purpose and duration they were shown, and a request edited
  after the answer no longer matches it. A revocation names the grant by request id and by
  the hash of the signed response.
- Times are RFC 3339 UTC at one-second precision (``YYYY-MM-DDTHH:MM:SSZ``); values built
  in Python are normalised to that precision.

Refusals are :class:`~messaging.errors.InvalidMessage` with a stable code:
``consent-structure`` (no or several structured parts), ``consent-version`` (a schema
version other than 1), ``consent-too-large``, ``consent-schema`` (bad JSON or a field out of
its schema), ``consent-sender-mismatch`` (``From`` is not the author the JSON names),
``consent-unsigned`` (a response or revocation without signature), ``consent-forged`` (a
signature that the patient's keys do not verify).
"""

from __future__ import annotations

import base64
import email.errors
import email.policy
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime
from enum import StrEnum
from typing import Literal

from crypto import SigningKey, SigningPublicKey, verify_signature
from crypto.encoding import b64url_encode
from messaging.errors import InvalidAddress, InvalidMessage
from messaging.kinds import parts
from messaging.kinds.base import KindSpec
from messaging.mime import KIND_HEADER, NIL_HEADER, PRODUCT_REFERENCE
from messaging.types import Address, MessageKind

__all__ = [
    "CONTEXT_REQUEST",
    "CONTEXT_RESPONSE",
    "CONTEXT_REVOCATION",
    "MAX_CATEGORIES",
    "MAX_DURATION_DAYS",
    "MAX_JSON_BYTES",
    "MAX_PURPOSE",
    "MEDIA_REQUEST",
    "MEDIA_RESPONSE",
    "MEDIA_REVOCATION",
    "SCHEMA_VERSION",
    "SPEC_REQUEST",
    "SPEC_RESPONSE",
    "SPEC_REVOCATION",
    "ConsentRequest",
    "ConsentResponse",
    "ConsentRevocation",
    "Decision",
    "Lang",
    "Scope",
    "ScopeKind",
    "answer",
    "build_request",
    "build_response",
    "build_revocation",
    "canonical_json",
    "parse_request",
    "parse_response",
    "parse_revocation",
    "revoke",
]

Lang = Literal["fr", "en"]

SCHEMA_VERSION = 1
MEDIA_REQUEST = "application/vnd.pli.consent-request+json"
MEDIA_RESPONSE = "application/vnd.pli.consent-response+json"
MEDIA_REVOCATION = "application/vnd.pli.consent-revocation+json"

CONTEXT_REQUEST = b"pli-consent-request-v1\x00"
CONTEXT_RESPONSE = b"pli-consent-response-v1\x00"
CONTEXT_REVOCATION = b"pli-consent-revocation-v1\x00"

MAX_JSON_BYTES = 64 * 1024
MAX_PURPOSE = 500
MAX_CATEGORIES = 50
MAX_DURATION_DAYS = 3650
"""Ten years: a consent longer than the record's own retention would make no sense."""

_POLICY = email.policy.SMTP.clone(max_line_length=78)
_FORBIDDEN_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
# Category codes are LOINC codes as X-MSS-CODECDA carries them, or other coded values.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)
_B64URL = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)
_SIGNATURE_BYTES = 64

_REQUEST_KEYS = frozenset(
    {"type", "version", "request_id", "professional", "patient", "scope", "purpose"}
    | {"duration_days", "requested_at"}
)
_RESPONSE_KEYS = frozenset(
    {"type", "version", "response_id", "request_id", "request_hash", "patient"}
    | {"professional", "decision", "answered_at"}
)
_REVOCATION_KEYS = frozenset(
    {"type", "version", "revocation_id", "request_id", "response_hash", "patient"}
    | {"professional", "revoked_at"}
)


def _schema_error(reason: str) -> InvalidMessage:
    return InvalidMessage(reason, "consent-schema")


# --- canonical encodings -----------------------------------------------------------------


def canonical_json(value: Mapping[str, object]) -> bytes:
    """The one encoding of a consent object: sorted keys, no whitespace, UTF-8.

    Only the subset the schemas use is accepted (objects, arrays, strings without control
    characters, integers within JavaScript's safe range, booleans); anything else raises
    ``consent-schema`` rather than producing an encoding another implementation might
    spell differently.
    """
    _check_canonical_value(value)
    return parts.canonical_json(value)


def _check_canonical_value(value: object) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > 2**53 - 1:
            raise _schema_error("integers must stay within JavaScript's safe range")
        return
    if isinstance(value, str):
        if _FORBIDDEN_TEXT.search(value):
            raise _schema_error("text may not contain control characters or lone surrogates")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_canonical_value(item)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _schema_error("object keys must be strings")
            _check_canonical_value(key)
            _check_canonical_value(item)
        return
    raise _schema_error(f"a {type(value).__name__} has no canonical encoding here")


def _unb64(text: str, what: str, code: str = "consent-schema") -> bytes:
    """Strict base64url without padding: one text per byte string."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidMessage(f"{what} is not base64url", code)
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        raise InvalidMessage(f"{what} is not canonical base64url", code)
    return data


def _digest(context: bytes, body: Mapping[str, object]) -> str:
    return b64url_encode(hashlib.blake2b(context + canonical_json(body), digest_size=32).digest())


def _check_digest(value: object, what: str) -> str:
    if not isinstance(value, str) or len(_unb64(value, what)) != 32:
        raise _schema_error(f"{what} must be a base64url BLAKE2b-256 digest")
    return value


def _utc_second(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise _schema_error(f"{what} must be timezone-aware")
    return at.astimezone(UTC).replace(microsecond=0)


def _format_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: object, what: str) -> datetime:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise _schema_error(f"{what} must be a UTC time YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _schema_error(f"{what} is not a valid time") from None


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise _schema_error(f"{what} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    return value


def _check_address(value: object, what: str) -> Address:
    if not isinstance(value, str):
        raise _schema_error(f"{what} must be an address")
    try:
        address = Address.parse(value)
    except InvalidAddress:
        raise _schema_error(f"{what} is not a valid address") from None
    if str(address) != value:
        # One spelling per address, or two JSON texts would name the same consent.
        raise _schema_error(f"{what} must be written in its normal form {address}")
    return address


def _new_id() -> str:
    return uuid.uuid4().hex


# --- values --------------------------------------------------------------------------------


class ScopeKind(StrEnum):
    """What a consent request asks to read."""

    RECORD = "record"
    """The whole record, documents added during the grant included."""
    CATEGORIES = "categories"
    """Documents of the listed categories (LOINC codes, as in ``X-MSS-CODECDA``)."""
    DOCUMENT = "document"
    """One document, named by its envelope id."""


class Decision(StrEnum):
    """The patient's answer."""

    GRANT = "grant"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Scope:
    """The documents a request covers. Build with :meth:`record`, :meth:`of_categories` or
    :meth:`of_document`; an inconsistent combination raises ``consent-schema``."""

    kind: ScopeKind
    categories: frozenset[str] = frozenset()
    document: str | None = None

    def __post_init__(self) -> None:
        if self.kind is ScopeKind.CATEGORIES:
            if not 1 <= len(self.categories) <= MAX_CATEGORIES or self.document is not None:
                raise _schema_error(f"a categories scope lists 1 to {MAX_CATEGORIES} categories")
            for code in self.categories:
                if not _CODE.fullmatch(code):
                    raise _schema_error(f"{code!r} is not a category code")
        elif self.kind is ScopeKind.DOCUMENT:
            if self.categories or self.document is None:
                raise _schema_error("a document scope names exactly one document")
            _check_id(self.document, "the document id")
        elif self.categories or self.document is not None:
            raise _schema_error("a record scope names no category and no document")

    @classmethod
    def record(cls) -> Scope:
        return cls(ScopeKind.RECORD)

    @classmethod
    def of_categories(cls, *codes: str) -> Scope:
        if len(set(codes)) != len(codes):
            raise _schema_error("a category is listed twice")
        return cls(ScopeKind.CATEGORIES, categories=frozenset(codes))

    @classmethod
    def of_document(cls, document_id: str) -> Scope:
        return cls(ScopeKind.DOCUMENT, document=document_id)

    def to_json(self) -> dict[str, object]:
        if self.kind is ScopeKind.CATEGORIES:
            return {"kind": self.kind.value, "categories": sorted(self.categories)}
        if self.kind is ScopeKind.DOCUMENT:
            return {"kind": self.kind.value, "document": self.document}
        return {"kind": self.kind.value}

    @classmethod
    def from_json(cls, value: object) -> Scope:
        if not isinstance(value, dict):
            raise _schema_error("scope must be an object")
        kind_text = value.get("kind")
        try:
            kind = ScopeKind(str(kind_text))
        except ValueError:
            raise _schema_error(f"unknown scope kind {kind_text!r}") from None
        if kind is ScopeKind.CATEGORIES:
            _exact_keys(value, {"kind", "categories"}, "scope")
            codes = value["categories"]
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise _schema_error("categories must be a list of codes")
            return cls.of_categories(*codes)
        if kind is ScopeKind.DOCUMENT:
            _exact_keys(value, {"kind", "document"}, "scope")
            return cls.of_document(_check_id(value["document"], "the document id"))
        _exact_keys(value, {"kind"}, "scope")
        return cls.record()


def _exact_keys(value: Mapping[str, object], keys: set[str], what: str) -> None:
    missing = keys - value.keys()
    unknown = value.keys() - keys
    if missing:
        raise _schema_error(f"{what} lacks {', '.join(sorted(missing))}")
    if unknown:
        raise _schema_error(f"{what} has unknown fields {', '.join(sorted(unknown))}")


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """A professional's request to read some of a patient's documents."""

    request_id: str
    professional: Address
    patient: Address
    scope: Scope
    purpose: str
    duration_days: int
    requested_at: datetime

    def __post_init__(self) -> None:
        _check_id(self.request_id, "request_id")
        if not 1 <= len(self.purpose) <= MAX_PURPOSE:
            raise _schema_error(f"the purpose is 1 to {MAX_PURPOSE} characters")
        if _FORBIDDEN_TEXT.search(self.purpose):
            raise _schema_error("the purpose is one line without control characters")
        if not 1 <= self.duration_days <= MAX_DURATION_DAYS:
            raise _schema_error(f"the duration is 1 to {MAX_DURATION_DAYS} days")
        if self.professional == self.patient:
            raise _schema_error("a patient does not ask their own consent")
        object.__setattr__(self, "requested_at", _utc_second(self.requested_at, "requested_at"))

    @classmethod
    def new(
        cls,
        *,
        professional: Address,
        patient: Address,
        scope: Scope,
        purpose: str,
        duration_days: int,
        at: datetime,
    ) -> ConsentRequest:
        """A request with a fresh random id."""
        return cls(_new_id(), professional, patient, scope, purpose, duration_days, at)

    @property
    def duration(self) -> timedelta:
        return timedelta(days=self.duration_days)

    def to_json(self) -> dict[str, object]:
        return {
            "type": MessageKind.CONSENT_REQUEST.value,
            "version": SCHEMA_VERSION,
            "request_id": self.request_id,
            "professional": str(self.professional),
            "patient": str(self.patient),
            "scope": self.scope.to_json(),
            "purpose": self.purpose,
            "duration_days": self.duration_days,
            "requested_at": _format_time(self.requested_at),
        }

    def digest(self) -> str:
        """The hash a response names: base64url BLAKE2b-256 of the canonical JSON."""
        return _digest(CONTEXT_REQUEST, self.to_json())

    @classmethod
    def from_json(cls, value: Mapping[str, object]) -> ConsentRequest:
        _exact_keys(value, set(_REQUEST_KEYS), "a consent request")
        _check_header(value, MessageKind.CONSENT_REQUEST)
        duration = value["duration_days"]
        purpose = value["purpose"]
        if not isinstance(duration, int) or isinstance(duration, bool):
            raise _schema_error("duration_days must be an integer")
        if not isinstance(purpose, str):
            raise _schema_error("purpose must be text")
        return cls(
            request_id=_check_id(value["request_id"], "request_id"),
            professional=_check_address(value["professional"], "professional"),
            patient=_check_address(value["patient"], "patient"),
            scope=Scope.from_json(value["scope"]),
            purpose=purpose,
            duration_days=duration,
            requested_at=_parse_time(value["requested_at"], "requested_at"),
        )


def _check_header(value: Mapping[str, object], kind: MessageKind) -> None:
    if value["type"] != kind.value:
        raise _schema_error(f"the structured part is not a {kind.value}")
    version = value["version"]
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise InvalidMessage(f"{kind.value} version {version!r} is not known", "consent-version")


def _check_signature_field(value: Mapping[str, object]) -> bytes:
    signature = value.get("signature")
    if signature is None or signature == "":
        raise InvalidMessage("the answer is not signed by the patient", "consent-unsigned")
    if not isinstance(signature, str):
        raise InvalidMessage("the signature is not base64url text", "consent-forged")
    raw = _unb64(signature, "the signature", "consent-forged")
    if len(raw) != _SIGNATURE_BYTES:
        raise InvalidMessage("the signature is not an Ed25519 signature", "consent-forged")
    return raw


def _with_signature(body: dict[str, object], signature: bytes) -> dict[str, object]:
    """``body`` with its ``signature`` field, when signed."""
    if signature:
        body["signature"] = b64url_encode(signature)
    return body


def _verify(
    context: bytes, body: Mapping[str, object], signature: bytes, keys: Iterable[SigningPublicKey]
) -> None:
    if not signature:
        raise InvalidMessage("the answer is not signed by the patient", "consent-unsigned")
    message = context + canonical_json(body)
    if not any(verify_signature(key, message, signature) for key in keys):
        raise InvalidMessage(
            "the signature is not the patient's: the answer is refused", "consent-forged"
        )


@dataclass(frozen=True, slots=True)
class ConsentResponse:
    """The patient's signed answer to one request. ``signature`` is empty until signed."""

    response_id: str
    request_id: str
    request_hash: str
    patient: Address
    professional: Address
    decision: Decision
    answered_at: datetime
    signature: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        _check_id(self.response_id, "response_id")
        _check_id(self.request_id, "request_id")
        _check_digest(self.request_hash, "request_hash")
        object.__setattr__(self, "decision", Decision(self.decision))
        object.__setattr__(self, "answered_at", _utc_second(self.answered_at, "answered_at"))

    def signed_body(self) -> dict[str, object]:
        """Every field but the signature: what the patient signs."""
        return {
            "type": MessageKind.CONSENT_RESPONSE.value,
            "version": SCHEMA_VERSION,
            "response_id": self.response_id,
            "request_id": self.request_id,
            "request_hash": self.request_hash,
            "patient": str(self.patient),
            "professional": str(self.professional),
            "decision": self.decision.value,
            "answered_at": _format_time(self.answered_at),
        }

    def to_json(self) -> dict[str, object]:
        return _with_signature(self.signed_body(), self.signature)

    def digest(self) -> str:
        """The hash a revocation names, over the signed response (signature included)."""
        return _digest(CONTEXT_RESPONSE, self.to_json())

    def verify(self, patient_keys: Iterable[SigningPublicKey]) -> None:
        """Raise ``consent-unsigned`` or ``consent-forged`` unless one of the patient's keys
        (current or past: keys rotate) signed this response."""
        _verify(CONTEXT_RESPONSE, self.signed_body(), self.signature, patient_keys)

    @classmethod
    def from_json(cls, value: Mapping[str, object]) -> ConsentResponse:
        signature = _check_signature_field(value)
        _exact_keys(value, {*_RESPONSE_KEYS, "signature"}, "a consent response")
        _check_header(value, MessageKind.CONSENT_RESPONSE)
        try:
            decision = Decision(str(value["decision"]))
        except ValueError:
            raise _schema_error("decision is grant or refuse") from None
        request_hash = value["request_hash"]
        if not isinstance(request_hash, str):
            raise _schema_error("request_hash must be text")
        return cls(
            response_id=_check_id(value["response_id"], "response_id"),
            request_id=_check_id(value["request_id"], "request_id"),
            request_hash=request_hash,
            patient=_check_address(value["patient"], "patient"),
            professional=_check_address(value["professional"], "professional"),
            decision=decision,
            answered_at=_parse_time(value["answered_at"], "answered_at"),
            signature=signature,
        )


@dataclass(frozen=True, slots=True)
class ConsentRevocation:
    """The patient's signed withdrawal of a grant (named by request id and response hash)."""

    revocation_id: str
    request_id: str
    response_hash: str
    patient: Address
    professional: Address
    revoked_at: datetime
    signature: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        _check_id(self.revocation_id, "revocation_id")
        _check_id(self.request_id, "request_id")
        _check_digest(self.response_hash, "response_hash")
        object.__setattr__(self, "revoked_at", _utc_second(self.revoked_at, "revoked_at"))

    def signed_body(self) -> dict[str, object]:
        return {
            "type": MessageKind.CONSENT_REVOCATION.value,
            "version": SCHEMA_VERSION,
            "revocation_id": self.revocation_id,
            "request_id": self.request_id,
            "response_hash": self.response_hash,
            "patient": str(self.patient),
            "professional": str(self.professional),
            "revoked_at": _format_time(self.revoked_at),
        }

    def to_json(self) -> dict[str, object]:
        return _with_signature(self.signed_body(), self.signature)

    def verify(self, patient_keys: Iterable[SigningPublicKey]) -> None:
        """Raise ``consent-unsigned`` or ``consent-forged`` unless the patient signed it."""
        _verify(CONTEXT_REVOCATION, self.signed_body(), self.signature, patient_keys)

    @classmethod
    def from_json(cls, value: Mapping[str, object]) -> ConsentRevocation:
        signature = _check_signature_field(value)
        _exact_keys(value, {*_REVOCATION_KEYS, "signature"}, "a consent revocation")
        _check_header(value, MessageKind.CONSENT_REVOCATION)
        response_hash = value["response_hash"]
        if not isinstance(response_hash, str):
            raise _schema_error("response_hash must be text")
        return cls(
            revocation_id=_check_id(value["revocation_id"], "revocation_id"),
            request_id=_check_id(value["request_id"], "request_id"),
            response_hash=response_hash,
            patient=_check_address(value["patient"], "patient"),
            professional=_check_address(value["professional"], "professional"),
            revoked_at=_parse_time(value["revoked_at"], "revoked_at"),
            signature=signature,
        )


def answer(
    request: ConsentRequest,
    decision: Decision,
    signing_key: SigningKey,
    at: datetime,
    *,
    response_id: str | None = None,
) -> ConsentResponse:
    """The patient's signed answer to ``request`` (done on the patient's side: the key is
    unlocked in the patient's session, never on the server)."""
    unsigned = ConsentResponse(
        response_id=response_id or _new_id(),
        request_id=request.request_id,
        request_hash=request.digest(),
        patient=request.patient,
        professional=request.professional,
        decision=decision,
        answered_at=at,
    )
    signature = signing_key.sign(CONTEXT_RESPONSE + canonical_json(unsigned.signed_body()))
    return replace(unsigned, signature=signature)


def revoke(
    response: ConsentResponse,
    signing_key: SigningKey,
    at: datetime,
    *,
    revocation_id: str | None = None,
) -> ConsentRevocation:
    """The patient's signed withdrawal of the grant ``response`` gave."""
    if response.decision is not Decision.GRANT:
        raise _schema_error("only a grant can be revoked")
    unsigned = ConsentRevocation(
        revocation_id=revocation_id or _new_id(),
        request_id=response.request_id,
        response_hash=response.digest(),
        patient=response.patient,
        professional=response.professional,
        revoked_at=at,
    )
    signature = signing_key.sign(CONTEXT_REVOCATION + canonical_json(unsigned.signed_body()))
    return replace(unsigned, signature=signature)


# --- human-readable texts ----------------------------------------------------------------


def _check_lang(lang: str) -> Lang:
    if lang == "fr":
        return "fr"
    if lang == "en":
        return "en"
    raise ValueError(f"language {lang!r} is not available: fr or en")


def _when(at: datetime, lang: Lang) -> str:
    at = at.astimezone(UTC)
    if lang == "fr":
        return at.strftime("%d/%m/%Y à %H:%M UTC")
    return at.strftime("%Y-%m-%d at %H:%M UTC")


def _scope_text(scope: Scope, lang: Lang) -> str:
    if scope.kind is ScopeKind.RECORD:
        return "l'ensemble de votre dossier" if lang == "fr" else "your whole record"
    if scope.kind is ScopeKind.CATEGORIES:
        codes = ", ".join(sorted(scope.categories))
        if lang == "fr":
            return f"les documents des catégories {codes}"
        return f"the documents of categories {codes}"
    if lang == "fr":
        return f"le document {scope.document}"
    return f"the document {scope.document}"


def _request_text(request: ConsentRequest, lang: Lang) -> tuple[str, str]:
    scope = _scope_text(request.scope, lang)
    if lang == "fr":
        return (
            "Demande de consentement : accès à vos documents",
            f"{request.professional} demande votre accord pour consulter {scope}.\n\n"
            f"Motif : {request.purpose}\n"
            f"Durée : {request.duration_days} jour(s) à partir de votre accord.\n\n"
            "Vous pouvez accepter ou refuser depuis votre messagerie Pli. Sans réponse de "
            "votre part, rien n'est partagé. Vous pourrez retirer votre accord à tout moment.\n"
            f"(Demande {request.request_id} du {_when(request.requested_at, lang)}.)\n",
        )
    return (
        "Consent request: access to your documents",
        f"{request.professional} asks for your consent to read {scope}.\n\n"
        f"Purpose: {request.purpose}\n"
        f"Duration: {request.duration_days} day(s) from your consent.\n\n"
        "You can accept or refuse from your Pli mailbox. Without an answer, nothing is "
        "shared. You can withdraw your consent at any time.\n"
        f"(Request {request.request_id} of {_when(request.requested_at, lang)}.)\n",
    )


def _response_text(response: ConsentResponse, lang: Lang) -> tuple[str, str]:
    granted = response.decision is Decision.GRANT
    when = _when(response.answered_at, lang)
    if lang == "fr":
        verb = "accepté" if granted else "refusé"
        return (
            f"Consentement {verb}",
            f"{response.patient} a {verb} votre demande de consentement "
            f"{response.request_id} le {when}.\n"
            "Cette réponse est signée par le patient.\n",
        )
    verb = "granted" if granted else "refused"
    return (
        f"Consent {verb}",
        f"{response.patient} {verb} your consent request {response.request_id} on {when}.\n"
        "This answer is signed by the patient.\n",
    )


def _revocation_text(revocation: ConsentRevocation, lang: Lang) -> tuple[str, str]:
    when = _when(revocation.revoked_at, lang)
    if lang == "fr":
        return (
            "Consentement retiré",
            f"{revocation.patient} a retiré le {when} le consentement accordé pour la "
            f"demande {revocation.request_id}.\nVous ne pouvez plus consulter ses documents "
            "à ce titre. Ce retrait est signé par le patient.\n",
        )
    return (
        "Consent withdrawn",
        f"{revocation.patient} withdrew on {when} the consent given for request "
        f"{revocation.request_id}.\nYou may no longer read their documents under it. "
        "This withdrawal is signed by the patient.\n",
    )


# --- MIME ----------------------------------------------------------------------------------


def _build(
    kind: MessageKind,
    media_type: str,
    *,
    sender: Address,
    recipient: Address,
    sender_name: str,
    subject: str,
    text: str,
    lang: Lang,
    payload: Mapping[str, object],
    message_id: str,
    date: datetime,
    in_reply_to: str | None,
) -> bytes:
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = HeaderAddress(sender_name, addr_spec=str(sender))
    msg["To"] = HeaderAddress("", addr_spec=str(recipient))
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date.astimezone(UTC))
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg["MIME-Version"] = "1.0"
    msg[NIL_HEADER] = PRODUCT_REFERENCE
    msg[KIND_HEADER] = kind.value
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg["Content-Language"] = lang
    maintype, _, subtype = media_type.partition("/")
    msg.add_attachment(
        canonical_json(payload),
        maintype=maintype,
        subtype=subtype,
        filename=f"{kind.value}.json",
        params={"version": str(SCHEMA_VERSION)},
    )
    return msg.as_bytes()


def build_request(
    request: ConsentRequest,
    *,
    message_id: str,
    lang: str = "fr",
    sender_name: str = "",
) -> bytes:
    """The MIME message carrying ``request``, from the professional to the patient."""
    language = _check_lang(lang)
    subject, text = _request_text(request, language)
    return _build(
        MessageKind.CONSENT_REQUEST,
        MEDIA_REQUEST,
        sender=request.professional,
        recipient=request.patient,
        sender_name=sender_name,
        subject=subject,
        text=text,
        lang=language,
        payload=request.to_json(),
        message_id=message_id,
        date=request.requested_at,
        in_reply_to=None,
    )


def build_response(
    response: ConsentResponse,
    *,
    message_id: str,
    lang: str = "fr",
    in_reply_to: str | None = None,
) -> bytes:
    """The MIME message carrying a signed ``response``, from the patient to the professional.

    An unsigned response is never built: it would be refused on arrival.
    """
    if not response.signature:
        raise InvalidMessage("the answer is not signed by the patient", "consent-unsigned")
    language = _check_lang(lang)
    subject, text = _response_text(response, language)
    return _build(
        MessageKind.CONSENT_RESPONSE,
        MEDIA_RESPONSE,
        sender=response.patient,
        recipient=response.professional,
        sender_name="",
        subject=subject,
        text=text,
        lang=language,
        payload=response.to_json(),
        message_id=message_id,
        date=response.answered_at,
        in_reply_to=in_reply_to,
    )


def build_revocation(revocation: ConsentRevocation, *, message_id: str, lang: str = "fr") -> bytes:
    """The MIME message carrying a signed ``revocation``, from the patient."""
    if not revocation.signature:
        raise InvalidMessage("the withdrawal is not signed by the patient", "consent-unsigned")
    language = _check_lang(lang)
    subject, text = _revocation_text(revocation, language)
    return _build(
        MessageKind.CONSENT_REVOCATION,
        MEDIA_REVOCATION,
        sender=revocation.patient,
        recipient=revocation.professional,
        sender_name="",
        subject=subject,
        text=text,
        lang=language,
        payload=revocation.to_json(),
        message_id=message_id,
        date=revocation.revoked_at,
        in_reply_to=None,
    )


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _schema_error(f"field {key!r} appears twice")
        result[key] = value
    return result


def _no_float(text: str) -> object:
    raise _schema_error(f"number {text} is not an integer")


def _load_json(data: bytes) -> dict[str, object]:
    """Strict JSON: UTF-8, one object, no duplicate keys, no floats, NaN or Infinity."""
    if len(data) > MAX_JSON_BYTES:
        raise InvalidMessage(
            f"the structured part exceeds {MAX_JSON_BYTES} bytes", "consent-too-large"
        )
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    except InvalidMessage:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _schema_error("the structured part is not valid JSON") from None
    if not isinstance(value, dict):
        raise _schema_error("the structured part is not a JSON object")
    # Every text must be canonical-encodable (no control characters, no lone surrogates),
    # or the hash of what was received could not be recomputed elsewhere.
    _check_canonical_value(value)
    return value


_MIME_ERRORS = (
    email.errors.MessageError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    LookupError,
)
"""What the email package may raise on hostile input instead of recording a defect."""


def _structured(raw: bytes, media_type: str) -> tuple[list[Address], dict[str, object]]:
    """The ``From`` addresses and the structured JSON of a consent message."""
    try:
        msg = BytesParser(policy=email.policy.default).parsebytes(raw)
        parts = [part for part in msg.walk() if part.get_content_type() == media_type]
        if len(parts) != 1:
            raise InvalidMessage(
                f"a consent message has exactly one {media_type} part, not {len(parts)}",
                "consent-structure",
            )
        version = parts[0].get_param("version")
        if version != str(SCHEMA_VERSION):
            raise InvalidMessage(
                f"{media_type} version {version!r} is not known", "consent-version"
            )
        payload = parts[0].get_payload(decode=True)
        senders = _from_addresses(msg)
    except InvalidMessage:
        raise
    except _MIME_ERRORS:
        raise InvalidMessage("the message is not readable MIME", "consent-structure") from None
    if not isinstance(payload, bytes):  # pragma: no cover - a non-multipart part decodes
        raise InvalidMessage("the structured part is empty", "consent-structure")
    return senders, _load_json(payload)


def _from_addresses(msg: Message) -> list[Address]:
    addresses = getattr(msg.get("From"), "addresses", ())
    try:
        return [Address.parse(a.addr_spec) for a in addresses]
    except InvalidAddress:
        return []


def _check_from(senders: list[Address], author: Address) -> None:
    if senders != [author]:
        raise InvalidMessage(
            f"the message is not from {author}, whose decision it carries",
            "consent-sender-mismatch",
        )


def parse_request(raw: bytes) -> ConsentRequest:
    """The request a MIME message carries; ``From`` must be the requesting professional."""
    senders, value = _structured(raw, MEDIA_REQUEST)
    request = ConsentRequest.from_json(value)
    _check_from(senders, request.professional)
    return request


def parse_response(raw: bytes, patient_keys: Iterable[SigningPublicKey]) -> ConsentResponse:
    """The response a MIME message carries, verified against the patient's signing keys
    (every key they have published: keys rotate). ``From`` must be the patient."""
    senders, value = _structured(raw, MEDIA_RESPONSE)
    response = ConsentResponse.from_json(value)
    _check_from(senders, response.patient)
    response.verify(patient_keys)
    return response


def parse_revocation(raw: bytes, patient_keys: Iterable[SigningPublicKey]) -> ConsentRevocation:
    """The revocation a MIME message carries, verified against the patient's keys."""
    senders, value = _structured(raw, MEDIA_REVOCATION)
    revocation = ConsentRevocation.from_json(value)
    _check_from(senders, revocation.patient)
    revocation.verify(patient_keys)
    return revocation


# --- kind specs ----------------------------------------------------------------------------


def _carries(media_type: str) -> Callable[[Message], bool]:
    def recognises(msg: Message) -> bool:
        return any(part.get_content_type() == media_type for part in msg.walk())

    return recognises


SPEC_REQUEST = KindSpec(
    kind=MessageKind.CONSENT_REQUEST,
    schema_version=SCHEMA_VERSION,
    description_fr="Demande de consentement",
    description_en="Consent request",
    recognises=_carries(MEDIA_REQUEST),
)
SPEC_RESPONSE = KindSpec(
    kind=MessageKind.CONSENT_RESPONSE,
    schema_version=SCHEMA_VERSION,
    description_fr="Réponse à une demande de consentement",
    description_en="Consent response",
    recognises=_carries(MEDIA_RESPONSE),
)
SPEC_REVOCATION = KindSpec(
    kind=MessageKind.CONSENT_REVOCATION,
    schema_version=SCHEMA_VERSION,
    description_fr="Retrait de consentement",
    description_en="Consent withdrawal",
    recognises=_carries(MEDIA_REVOCATION),
)
