"""The provenance header the gateway prepends to every message it serves.

A clinician in any mail client sees how a message entered Pli and what its signature
proves, in one header field the gateway writes::

    X-Pli-Provenance: e2e; signature=valid; sender=sophie.martin@medecin.pli.localhost
    X-Pli-Provenance: gateway; signature=valid; sender=a@ch-x.fr; peer=mx.ch-x.fr

- ``e2e``: sealed and signed by the sender's own key; ``signature=valid`` when that key is
  the one the directory (key log) holds for the sender, ``unknown-signer`` otherwise.
- ``gateway``: arrived in clear (SMTP from a peer, the API) and sealed by the operator;
  ``peer`` names who handed it over (empty for an API submission).

**Unforgeable.** A field of the same name in the received message's top-level header
section is renamed ``X-Untrusted-Prov`` (the same length, so sizes do not move) before ours
is prepended, so the first ``X-Pli-Provenance`` a client sees is always the gateway's.

**Its length is known without decrypting.** RFC822.SIZE must equal what ``BODY[]`` returns,
and FETCH RFC822.SIZE must not open envelopes. The signature status and the peer are only
known after opening, so the field has a fixed budget: status values are at most
:data:`STATUS_WIDTH` characters, the peer at most :data:`PEER_WIDTH` (longer host names are
cut), and the line is padded with trailing spaces to :func:`header_length`, which depends
only on the sender address (stored metadata). Served size = ``plaintext_size`` +
``header_length(sender)``.
"""

from __future__ import annotations

import re

from messaging.types import Address, MessageRecord, Provenance, SignatureStatus

__all__ = [
    "HEADER_NAME",
    "RENAMED",
    "header_length",
    "render_header",
    "neutralise",
    "served_size",
    "serve",
]

HEADER_NAME = b"X-Pli-Provenance"
RENAMED = b"X-Untrusted-Prov"
STATUS_WIDTH = max(len(s.value) for s in SignatureStatus)
PEER_WIDTH = 64
_PROVENANCE_WIDTH = max(len(p.value) for p in Provenance)
_FIXED = len(b"X-Pli-Provenance: ; signature=; sender=; peer=\r\n")
_PEER_SAFE = re.compile(r"[^A-Za-z0-9.:\[\]_-]")

assert len(HEADER_NAME) == len(RENAMED)  # noqa: S101 - the size promise depends on it


def header_length(sender: Address | str) -> int:
    """The length of our header line for a message from ``sender`` (CRLF included)."""
    return _FIXED + _PROVENANCE_WIDTH + STATUS_WIDTH + PEER_WIDTH + len(str(sender))


def served_size(record: MessageRecord) -> int:
    """RFC822.SIZE: what ``BODY[]`` returns, from stored metadata only."""
    return record.plaintext_size + header_length(record.sender)


def render_header(
    provenance: Provenance, signature: SignatureStatus, sender: Address | str, peer: str | None
) -> bytes:
    line = f"X-Pli-Provenance: {provenance.value}; signature={signature.value}; sender={sender}"
    if provenance is Provenance.GATEWAY:
        line += f"; peer={_PEER_SAFE.sub('', peer or '')[:PEER_WIDTH]}"
    data = line.encode("ascii", "replace")
    width = header_length(sender) - 2
    return data.ljust(width, b" ") + b"\r\n"


def neutralise(raw: bytes) -> bytes:
    """Rename any ``X-Pli-Provenance`` field of the top-level header section (same length)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head_end = len(raw) if end < 0 else end + 1
    head = raw[:head_end]
    if HEADER_NAME.lower() not in head.lower():
        return raw
    pattern = re.compile(rb"(^|\n)" + re.escape(HEADER_NAME) + rb"(?=[ \t]*:)", re.IGNORECASE)
    head = pattern.sub(lambda m: m.group(1) + RENAMED, head)
    return head + raw[head_end:]


def serve(
    raw: bytes,
    provenance: Provenance,
    signature: SignatureStatus,
    sender: Address | str,
    peer: str | None,
) -> bytes:
    """The bytes a client receives for ``BODY[]``: our header, then the message, neutralised."""
    return render_header(provenance, signature, sender, peer) + neutralise(raw)
