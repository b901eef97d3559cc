"""``note``: a free-text message with optional attachments, readable by any mail client."""

from __future__ import annotations

from email.message import Message

from messaging.kinds.base import KindSpec
from messaging.types import MessageKind

__all__ = ["NOTE"]


def _any_message(_msg: Message) -> bool:
    return True


NOTE = KindSpec(
    kind=MessageKind.NOTE,
    schema_version=1,
    description_fr="Message",
    description_en="Message",
    recognises=_any_message,
)
