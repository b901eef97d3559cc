"""Reading IMAP commands: an incremental, literal-aware reader and a tokenizer.

RFC 3501 §2.2 and §9 (command syntax, literals), RFC 9051 §4.3, RFC 7888 (LITERAL+ /
LITERAL-, ``{n+}``), RFC 3516 (BINARY literals ``~{n}``).

Two steps, so that nothing is allocated before it is allowed:

1. :class:`CommandReader` reads one command from the stream: its first line, then for each
   literal announced at the end of a line, the literal and the next line. Every limit is
   checked on the *announced* size, before a byte of the literal is read or buffered:

   - a line longer than ``max_line`` is discarded as it arrives (in chunks) and answered
     ``BAD``; a line that ends in a literal announcement and is too long closes the
     session, since the literal's bytes would otherwise be read as commands;
   - a literal larger than the current limit is refused: a synchronising literal gets
     ``BAD`` (the client never sends it), a non-synchronising one (``{n+}``) gets
     ``BAD`` and the session is closed (RFC 7888 §4), since its bytes are already on the
     way. Before authentication the limit is ``max_literal_unauthenticated`` (a few KiB,
     enough for LOGIN), so a ``{200000000}`` costs nothing;
   - the whole command (lines and literals) is bounded by ``max_command`` except for the
     message literal of APPEND, bounded by the APPENDLIMIT.

   Commands are read one at a time and answered before the next is read, so pipelined
   commands wait in the kernel's socket buffer and in the stream's bounded buffer: the
   number of pending commands in memory is one, whatever a client pipelines.

2. :func:`tokenize` turns the assembled command into :class:`Atom`, :class:`String` and
   nested lists, with a nesting-depth limit. Bracketed fetch attributes
   (``BODY.PEEK[HEADER.FIELDS (From)]<0.10>``) stay one atom whose text the FETCH parser
   reads.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = [
    "Atom",
    "String",
    "Token",
    "ParseError",
    "LineTooLong",
    "LiteralRefused",
    "RawCommand",
    "ReaderLimits",
    "CommandReader",
    "tokenize",
]

_LITERAL_RE = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}\r?\n\Z")
_TAG_RE = re.compile(rb"[\x21-\x7e]+")
_TAG_FORBIDDEN = frozenset(b'(){ %*"\\+')
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x20)) | {0x7F}


@dataclass(frozen=True, slots=True)
class Atom:
    """An atom (including ``NIL``, numbers, sequence sets and fetch attributes)."""

    text: str

    def upper(self) -> str:
        return self.text.upper()


@dataclass(frozen=True, slots=True)
class String:
    """A quoted string or a literal; ``binary`` for a ``~{n}`` literal."""

    value: bytes
    literal: bool = False
    binary: bool = False

    def text(self) -> str:
        return self.value.decode("utf-8", "surrogateescape")


Token = Atom | String | list["Token"]


class ParseError(Exception):
    """A command that does not parse; answered ``BAD`` with this message."""


class LineTooLong(Exception):
    """A command line over the limit; ``fatal`` when the session must close."""

    def __init__(self, tag: str, fatal: bool) -> None:
        super().__init__("command line too long")
        self.tag = tag
        self.fatal = fatal


class LiteralRefused(Exception):
    """An announced literal over the limit; ``fatal`` for a non-synchronising one."""

    def __init__(self, tag: str, size: int, limit: int, fatal: bool) -> None:
        super().__init__(f"literal of {size} octets is over the limit of {limit}")
        self.tag = tag
        self.size = size
        self.limit = limit
        self.fatal = fatal


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    max_line: int = 64 * 1024
    max_command: int = 256 * 1024
    max_literal_unauthenticated: int = 4096
    max_literal: int = 64 * 1024
    max_append: int = 25 * 1024 * 1024
    max_depth: int = 16


@dataclass(slots=True)
class RawCommand:
    """A command as read: its lines and literals, in order, ready for :func:`tokenize`."""

    tag: str
    parts: list[bytes | String] = field(default_factory=list)
    size: int = 0


def peek_tag(line: bytes) -> str:
    """The tag of a line, for error replies; ``*`` when there is none."""
    match = _TAG_RE.match(line)
    if match is None or any(b in _TAG_FORBIDDEN for b in match.group(0)):
        return "*"
    return match.group(0).decode("ascii")


def _command_name(line: bytes) -> bytes:
    words = line.split(b" ", 3)
    if len(words) >= 2 and words[1].upper() == b"UID" and len(words) >= 3:
        return words[2].upper()
    return words[1].upper() if len(words) >= 2 else b""


class CommandReader:
    """Reads one command at a time from an :class:`asyncio.StreamReader` (see module notes)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        limits: ReaderLimits,
        send_continuation: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self._reader = reader
        self._limits = limits
        self._continue = send_continuation
        self.authenticated = False

    async def _read_line(self, tag_hint: str | None) -> bytes:
        """One line up to and including LF; raises :class:`LineTooLong` past the limit."""
        limit = self._limits.max_line
        try:
            line = await self._reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            head = await self._reader.readexactly(min(exc.consumed, 256))
            tag = tag_hint if tag_hint is not None else peek_tag(head)
            fatal = await self._discard_line()
            raise LineTooLong(tag, fatal) from None
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ConnectionResetError("connection closed inside a command") from None
            raise EOFError from None
        if len(line) > limit:
            tag = tag_hint if tag_hint is not None else peek_tag(line)
            raise LineTooLong(tag, _LITERAL_RE.search(line) is not None)
        return line

    async def _discard_line(self) -> bool:
        """Drop the rest of an over-long line; True when it ended in a literal announcement."""
        tail = b""
        while True:
            chunk = await self._reader.read(64 * 1024)
            if not chunk:
                raise EOFError
            end = chunk.find(b"\n")
            if end >= 0:
                tail = (tail + chunk[: end + 1])[-32:]
                rest = chunk[end + 1 :]
                if rest:
                    # Put back what follows the line: the next commands.
                    self._unread(rest)
                return _LITERAL_RE.search(tail) is not None
            tail = (tail + chunk)[-32:]

    def _unread(self, data: bytes) -> None:
        # StreamReader has no public unread; its buffer is a bytearray we may prepend to.
        buffer: bytearray = self._reader._buffer  # type: ignore[attr-defined]  # noqa: SLF001
        buffer[0:0] = data

    async def read(self) -> RawCommand:
        """The next command; raises EOFError at a clean end of stream."""
        line = await self._read_line(None)
        tag = peek_tag(line)
        command = RawCommand(tag)
        name = _command_name(line)
        while True:
            command.size += len(line)
            match = _LITERAL_RE.search(line)
            if match is None:
                command.parts.append(line.rstrip(b"\r\n"))
                if command.size > self._limits.max_command:
                    raise LineTooLong(tag, False)
                return command
            command.parts.append(line[: match.start()])
            size = int(match.group(2))
            synchronising = not match.group(3)
            limit = self._literal_limit(name)
            if size > limit or command.size + size > self._limits.max_command + (
                limit if name == b"APPEND" and self.authenticated else 0
            ):
                raise LiteralRefused(tag, size, limit, fatal=not synchronising)
            if synchronising:
                await self._continue(b"+ Ready for literal data\r\n")
            try:
                data = await self._reader.readexactly(size)
            except asyncio.IncompleteReadError:
                raise ConnectionResetError("connection closed inside a literal") from None
            command.parts.append(String(data, literal=True, binary=bool(match.group(1))))
            command.size += size
            line = await self._read_line(tag)

    def _literal_limit(self, name: bytes) -> int:
        if not self.authenticated:
            return self._limits.max_literal_unauthenticated
        if name == b"APPEND":
            return self._limits.max_append
        return self._limits.max_literal


# -- tokenizer --------------------------------------------------------------------------


class _Cursor:
    __slots__ = ("parts", "index", "pos", "depth", "max_depth")

    def __init__(self, parts: list[bytes | String], max_depth: int) -> None:
        self.parts = parts
        self.index = 0
        self.pos = 0
        self.depth = 0
        self.max_depth = max_depth


def tokenize(command: RawCommand, max_depth: int = 16) -> list[Token]:
    """The tokens of a command after its tag (command name first)."""
    cursor = _Cursor(command.parts, max_depth)
    tokens = _read_sequence(cursor, closing=None)
    return tokens[1:]


def _current(cursor: _Cursor) -> bytes | String | None:
    while cursor.index < len(cursor.parts):
        part = cursor.parts[cursor.index]
        if isinstance(part, String):
            return part
        if cursor.pos < len(part):
            return part
        # A line fragment ends only where a literal follows: no separator is implied.
        cursor.index += 1
        cursor.pos = 0
    return None


def _read_sequence(cursor: _Cursor, closing: int | None) -> list[Token]:
    tokens: list[Token] = []
    while True:
        part = _current(cursor)
        if part is None:
            if closing is not None:
                raise ParseError("unbalanced parentheses")
            return tokens
        if isinstance(part, String):
            tokens.append(part)
            cursor.index += 1
            cursor.pos = 0
            continue
        byte = part[cursor.pos]
        if byte == 0x20:
            cursor.pos += 1
            if cursor.pos < len(part) and part[cursor.pos] == 0x20:
                raise ParseError("two spaces in a row")
            continue
        if closing is not None and byte == closing:
            cursor.pos += 1
            return tokens
        if byte == 0x28:  # (
            cursor.pos += 1
            cursor.depth += 1
            if cursor.depth > cursor.max_depth:
                raise ParseError("parentheses nested too deep")
            tokens.append(_read_sequence(cursor, closing=0x29))
            cursor.depth -= 1
        elif byte == 0x29:
            raise ParseError("unbalanced parentheses")
        elif byte == 0x22:  # "
            tokens.append(_read_quoted(cursor, part))
        else:
            tokens.append(_read_atom(cursor, part))


def _read_quoted(cursor: _Cursor, part: bytes) -> String:
    out = bytearray()
    pos = cursor.pos + 1
    while pos < len(part):
        byte = part[pos]
        if byte == 0x5C:  # backslash
            if pos + 1 >= len(part) or part[pos + 1] not in (0x22, 0x5C):
                raise ParseError("invalid escape in quoted string")
            out.append(part[pos + 1])
            pos += 2
            continue
        if byte == 0x22:
            cursor.pos = pos + 1
            return String(bytes(out))
        if byte in (0x0D, 0x0A, 0x00):
            break
        out.append(byte)
        pos += 1
    raise ParseError("unterminated quoted string")


def _read_atom(cursor: _Cursor, part: bytes) -> Atom:
    start = pos = cursor.pos
    brackets = 0
    while pos < len(part):
        byte = part[pos]
        if byte == 0x5B:  # [
            brackets += 1
            if brackets > cursor.max_depth:
                raise ParseError("brackets nested too deep")
        elif byte == 0x5D:  # ]
            if brackets == 0:
                raise ParseError("unbalanced brackets")
            brackets -= 1
        elif brackets and byte in (0x20, 0x28, 0x29, 0x22):
            # Inside brackets (fetch sections): spaces, lists and quoted names belong to
            # the attribute, e.g. BODY[HEADER.FIELDS (From "To")].
            if byte == 0x22:
                end = part.find(b'"', pos + 1)
                if end < 0:
                    raise ParseError("unterminated quoted string")
                pos = end
        elif byte in _ATOM_SPECIALS and byte not in (0x25, 0x2A, 0x5C):
            # %, * (LIST wildcards, sequence sets) and \ (flags) are allowed in our atoms.
            break
        pos += 1
    if brackets:
        raise ParseError("unbalanced brackets")
    if pos == start:
        raise ParseError(f"unexpected character {chr(part[pos])!r}")
    cursor.pos = pos
    try:
        return Atom(part[start:pos].decode("ascii"))
    except UnicodeDecodeError:
        raise ParseError("8-bit characters in an atom") from None
