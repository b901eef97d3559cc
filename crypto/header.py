"""The routing header of an envelope: what the server may read, in one canonical encoding.

Implementation notes (invariants):

- The header is JSON encoded canonically: keys sorted, no whitespace (separators ``,`` and
  ``:``), non-ASCII characters written as UTF-8 rather than ``\\u`` escapes. Keys:
  ``v id thread type from to size date prov sigkey``, plus ``gw`` (an object with ``peer``
  and ``tls``) exactly when ``prov`` is ``"gateway"``.
- **Exactly one encoding per header.** :meth:`RoutingHeader.from_bytes` parses, rebuilds
  and re-encodes, and refuses bytes that are not the canonical encoding (duplicate keys,
  whitespace, escapes, key order). So JSON parsers that disagree on edge cases (duplicate
  keys, number forms) cannot disagree on a Pli header, and the hash that the AEAD and the
  signature bind is the hash of *the* header, not of one of its spellings. Readers still
  hash the bytes as stored, never a re-serialisation.
- **Text fields** must be valid Unicode without control characters (Unicode category Cc,
  which includes CR, LF and NUL) or lone surrogates. Besides keeping CR/LF out of every
  protocol these values later reach (IMAP, SMTP, logs), it means the only escapes the
  canonical encoding ever contains are ``\\"`` and ``\\\\``, which Python's ``json`` and
  JavaScript's ``JSON.stringify`` write identically.
- ``size`` is an integer in ``[0, 2**53 - 1]`` so that JavaScript reads it exactly.
  ``date`` is RFC 3339 in UTC at one-second precision, ``YYYY-MM-DDTHH:MM:SSZ``: one
  spelling per instant.
- ``v`` is the format version and must equal the envelope's version byte; only 1 exists.
- ``sigkey`` is the signer's Ed25519 public key in base64url without padding. It is
  *intrinsic*: the envelope proves that this key signed it. Whether this key belongs to
  ``from`` (or is the operator key, for ``prov = "gateway"``) is the caller's question, for
  the directory and its transparency log.

Every refusal is an :class:`~crypto.errors.EnvelopeError`, both when parsing and when a
caller builds an invalid header (so a header that could not be read back is never sealed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crypto.errors import CryptoError, EnvelopeError
from crypto.keys import SigningPublicKey

__all__ = [
    "ENVELOPE_VERSION",
    "PROVENANCE_E2E",
    "PROVENANCE_GATEWAY",
    "MAX_SIZE",
    "GatewayInfo",
    "RoutingHeader",
]

ENVELOPE_VERSION = 1
PROVENANCE_E2E = "e2e"
PROVENANCE_GATEWAY = "gateway"
MAX_SIZE = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER

_FORBIDDEN_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
_KEYS = frozenset({"v", "id", "thread", "type", "from", "to", "size", "date", "prov", "sigkey"})
_GATEWAY_KEYS = frozenset({"peer", "tls"})


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise EnvelopeError(f"header field {name!r} must be a string")
    if _FORBIDDEN_TEXT.search(value):
        raise EnvelopeError(f"header field {name!r} contains a control character or surrogate")
    return value


def _check_date(value: object) -> str:
    text = _check_text(value, "date")
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        datetime(year, month, day, hour, minute, second)  # a range check; naive is fine
    except ValueError:
        raise EnvelopeError("header date must be YYYY-MM-DDTHH:MM:SSZ (UTC)") from None
    return text


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    """Who handed a clear message to the operator: the verified peer identity."""

    peer: str  # the peer's host name, e.g. "mx.ch-x.fr"; may be "" (API submission)
    tls: str  # the TLS client certificate subject or fingerprint; may be ""

    def __post_init__(self) -> None:
        _check_text(self.peer, "gw.peer")
        _check_text(self.tls, "gw.tls")


@dataclass(frozen=True, slots=True)
class RoutingHeader:
    """The visible part of an envelope, bound to the ciphertext and signed."""

    envelope_id: str
    thread_id: str
    kind: str
    sender: str
    recipients: tuple[str, ...]
    size: int
    date: str
    provenance: str
    signer: SigningPublicKey
    gateway: GatewayInfo | None = None
    version: int = ENVELOPE_VERSION

    def __post_init__(self) -> None:
        if type(self.version) is not int or self.version != ENVELOPE_VERSION:
            raise EnvelopeError("unknown routing header version")
        _check_text(self.envelope_id, "id")
        _check_text(self.thread_id, "thread")
        _check_text(self.kind, "type")
        _check_text(self.sender, "from")
        recipients: object = self.recipients
        if isinstance(recipients, list):
            # A list is the natural thing to pass; a frozen header needs a tuple.
            recipients = tuple(recipients)
            object.__setattr__(self, "recipients", recipients)
        if not isinstance(recipients, tuple):
            raise EnvelopeError("header field 'to' must be a tuple of strings")
        for recipient in recipients:
            _check_text(recipient, "to")
        if type(self.size) is not int or not 0 <= self.size <= MAX_SIZE:
            raise EnvelopeError(f"header field 'size' must be an integer in [0, {MAX_SIZE}]")
        _check_date(self.date)
        if not isinstance(self.signer, SigningPublicKey):
            raise EnvelopeError("header field 'sigkey' must be a SigningPublicKey")
        if self.provenance == PROVENANCE_E2E:
            if self.gateway is not None:
                raise EnvelopeError("an e2e header carries no gateway information")
        elif self.provenance == PROVENANCE_GATEWAY:
            if not isinstance(self.gateway, GatewayInfo):
                raise EnvelopeError("a gateway header must carry gateway information")
        else:
            raise EnvelopeError("header field 'prov' must be 'e2e' or 'gateway'")

    def to_bytes(self) -> bytes:
        """The canonical encoding (see the module docstring)."""
        document: dict[str, Any] = {
            "v": self.version,
            "id": self.envelope_id,
            "thread": self.thread_id,
            "type": self.kind,
            "from": self.sender,
            "to": list(self.recipients),
            "size": self.size,
            "date": self.date,
            "prov": self.provenance,
            "sigkey": self.signer.b64(),
        }
        if self.gateway is not None:
            document["gw"] = {"peer": self.gateway.peer, "tls": self.gateway.tls}
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> RoutingHeader:
        """Parse a canonical header; :class:`EnvelopeError` for anything else."""
        if not isinstance(data, bytes):
            raise EnvelopeError("a routing header is bytes")
        try:
            document = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            # ValueError covers bad UTF-8, bad JSON and oversized integers; RecursionError
            # covers hostile nesting (a 64 KiB header can nest deeper than the C stack).
            raise EnvelopeError("routing header is not valid JSON") from None
        header = cls._from_document(document)
        if header.to_bytes() != data:
            raise EnvelopeError("routing header is not in canonical form")
        return header

    @classmethod
    def _from_document(cls, document: object) -> RoutingHeader:
        if not isinstance(document, dict):
            raise EnvelopeError("routing header must be a JSON object")
        version = document.get("v")
        if type(version) is not int or version != ENVELOPE_VERSION:
            raise EnvelopeError("unknown routing header version")
        has_gateway = "gw" in document
        expected = _KEYS | {"gw"} if has_gateway else _KEYS
        if document.keys() != expected:
            raise EnvelopeError("routing header has missing or unknown fields")
        recipients = document["to"]
        if not isinstance(recipients, list):
            raise EnvelopeError("header field 'to' must be a list of strings")
        sigkey = _check_text(document["sigkey"], "sigkey")
        try:
            signer = SigningPublicKey.from_b64(sigkey)
        except CryptoError:
            raise EnvelopeError("header field 'sigkey' is not an Ed25519 public key") from None
        gateway = None
        if has_gateway:
            gw = document["gw"]
            if not isinstance(gw, dict) or gw.keys() != _GATEWAY_KEYS:
                raise EnvelopeError("header field 'gw' must be an object with peer and tls")
            gateway = GatewayInfo(peer=gw["peer"], tls=gw["tls"])
        return cls(
            envelope_id=document["id"],
            thread_id=document["thread"],
            kind=document["type"],
            sender=document["from"],
            recipients=tuple(recipients),
            size=document["size"],
            date=document["date"],
            provenance=document["prov"],
            signer=signer,
            gateway=gateway,
            version=version,
        )


def _refuse_constant(name: str) -> object:
    raise ValueError(f"JSON constant {name} is not allowed")
