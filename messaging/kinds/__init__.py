"""The type registry of typed secure messages.

Each kind has a module here that says how to recognise it in a MIME message (so a message
that arrives in clear over SMTP is typed as its sender meant) and which schema version its
structured part follows. ``note`` is the plain message every other kind falls back to.
"""

from __future__ import annotations

from email.message import Message

from messaging.kinds import (
    appointment,
    certificate,
    consent,
    document,
    notification,
    prescription,
    receipt,
)
from messaging.kinds.base import KindSpec
from messaging.kinds.note import NOTE
from messaging.mime import KIND_HEADER
from messaging.types import MessageKind

__all__ = ["KindSpec", "REGISTRY", "classify", "declared_kind", "spec_for"]

REGISTRY: dict[MessageKind, KindSpec] = {
    spec.kind: spec
    for spec in (
        NOTE,
        document.SPEC,
        prescription.SPEC,
        certificate.SPEC,
        appointment.SPEC,
        consent.SPEC_REQUEST,
        consent.SPEC_RESPONSE,
        consent.SPEC_REVOCATION,
        receipt.SPEC,
        notification.SPEC,
    )
}


def spec_for(kind: MessageKind) -> KindSpec:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise LookupError(f"message kind {kind.value!r} is not registered") from None


def declared_kind(msg: Message) -> MessageKind | None:
    """The registered kind a message declares in ``X-Pli-Type``, if any."""
    declared = str(msg.get(KIND_HEADER, "")).strip().lower()
    for kind in REGISTRY:
        if declared == kind.value:
            return kind
    return None


def classify(msg: Message) -> MessageKind:
    """The kind a message is: its declared ``X-Pli-Type`` when registered, else by content."""
    declared = declared_kind(msg)
    if declared is not None:
        return declared
    for kind, spec in REGISTRY.items():
        if kind is not MessageKind.NOTE and spec.recognises(msg):
            return kind
    return MessageKind.NOTE
