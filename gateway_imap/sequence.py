"""Sequence sets (RFC 3501 §9 ``sequence-set``) and their compact rendering (RFC 4315 §4).

``*`` is the largest number in use; a range may be written either way round (``5:2``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway_imap.parser import ParseError

__all__ = ["SequenceSet", "compress"]

_SET_RE = re.compile(r"^(\d+|\*)(?::(\d+|\*))?(?:,(\d+|\*)(?::(\d+|\*))?)*$")
_MAX = 2**32 - 1
_MAX_RANGES = 10_000


class SequenceSet:
    """A parsed sequence set; ``None`` stands for ``*``."""

    __slots__ = ("ranges",)

    def __init__(self, ranges: list[tuple[int | None, int | None]]) -> None:
        self.ranges = ranges

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        if not _SET_RE.match(text):
            raise ParseError(f"invalid sequence set {text[:40]!r}")
        items = text.split(",")
        if len(items) > _MAX_RANGES:
            raise ParseError("sequence set too long")
        ranges: list[tuple[int | None, int | None]] = []
        for item in items:
            low, _, high = item.partition(":")
            lo = None if low == "*" else int(low)
            hi = lo if not high else (None if high == "*" else int(high))
            for value in (lo, hi):
                if value is not None and not 1 <= value <= _MAX:
                    raise ParseError("sequence numbers are 1 to 4294967295")
            ranges.append((lo, hi))
        return cls(ranges)

    def bounds(self, largest: int) -> list[tuple[int, int]]:
        """The ranges with ``*`` replaced by ``largest``, each low <= high."""
        out = []
        for lo, hi in self.ranges:
            a = largest if lo is None else lo
            b = largest if hi is None else hi
            out.append((min(a, b), max(a, b)))
        return out

    def contains(self, value: int, largest: int) -> bool:
        return any(lo <= value <= hi for lo, hi in self.bounds(largest))

    def select(self, sorted_values: list[int], largest: int) -> list[int]:
        """The members of ``sorted_values`` (ascending) in this set, ascending, no repeats."""
        import bisect  # noqa: PLC0415 - only here

        chosen: set[int] = set()
        for lo, hi in self.bounds(largest):
            start = bisect.bisect_left(sorted_values, lo)
            stop = bisect.bisect_right(sorted_values, hi)
            chosen.update(sorted_values[start:stop])
        return sorted(chosen)


def compress(values: Iterable[int]) -> str:
    """``1:3,5,7:9`` for ascending or unordered integers."""
    ordered = sorted(set(values))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(parts)
