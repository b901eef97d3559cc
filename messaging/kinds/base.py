"""What every kind of typed message declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from messaging.types import MessageKind

__all__ = ["KindSpec"]


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: MessageKind
    schema_version: int
    description_fr: str
    description_en: str
    recognises: Callable[[Message], bool]
