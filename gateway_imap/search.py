"""SEARCH: the full key grammar, parsed to a tree and evaluated per message.

RFC 3501 §6.4.4 (search keys, AND by juxtaposition, OR, NOT, parenthesised groups,
CHARSET), RFC 9051 §6.4.4, RFC 4731 / RFC 9051 (ESEARCH, ``RETURN (MIN MAX COUNT ALL)``),
RFC 7162 §3.1.5 (``MODSEQ``).

Keys on flags, UIDs, sequence numbers, INTERNALDATE, size and MODSEQ are answered from the
store's records; header, date-sent and text keys need the decrypted message, and
:func:`needs_content` tells the session whether to open it. Text matching is
case-insensitive substring matching on decoded text: RFC 2047 words in headers, transfer
encodings and charsets in text parts, with the raw bytes searched too so that 8-bit or
broken messages still match what a user sees.
"""

from __future__ import annotations

import email.header
import email.utils
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from gateway_imap.fetch import ServedMessage, charset_of
from gateway_imap.mime import Entity, UnknownEncoding, decode_body
from gateway_imap.parser import Atom, ParseError, String, Token
from gateway_imap.sequence import SequenceSet

__all__ = ["Key", "parse_search", "needs_content", "Candidate", "matches", "BadCharset"]

_CHARSETS = frozenset({"UTF-8", "US-ASCII"})
_DATE_RE = re.compile(r"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
    "OLD": ("\\Recent", False),
    "RECENT": ("\\Recent", True),
}
_HEADER_KEYS = {"BCC": "Bcc", "CC": "Cc", "FROM": "From", "SUBJECT": "Subject", "TO": "To"}
_MAX_KEYS = 1000


class BadCharset(Exception):
    """A CHARSET other than UTF-8 / US-ASCII (``NO [BADCHARSET (UTF-8 US-ASCII)]``)."""


@dataclass(frozen=True, slots=True)
class Key:
    """One node of the search tree: ``op`` names the test, ``args`` its operands."""

    op: str
    args: tuple[object, ...] = ()


@dataclass(slots=True)
class Candidate:
    """What a key is evaluated against: numbers and metadata, and the message if opened."""

    seq: int
    uid: int
    flags: frozenset[str]
    internal_date: datetime
    size: int
    modseq: int
    largest_seq: int
    largest_uid: int
    message: ServedMessage | None = None


class _Stream:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.count = 0

    def next(self, what: str) -> Token:
        if self.pos >= len(self.tokens):
            raise ParseError(f"missing {what} in SEARCH")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None


def _text(token: Token, what: str) -> bytes:
    if isinstance(token, String):
        return token.value
    if isinstance(token, Atom):
        return token.text.encode("ascii")
    raise ParseError(f"{what} must be a string")


def _atom(token: Token, what: str) -> str:
    if not isinstance(token, Atom):
        raise ParseError(f"{what} must be an atom")
    return token.text


def _date(token: Token) -> date:
    text = _text(token, "a date").decode("ascii", "replace")
    match = _DATE_RE.match(text)
    if match is None or match.group(2).lower() not in _MONTHS:
        raise ParseError(f"invalid date {text[:20]!r}")
    try:
        return date(int(match.group(3)), _MONTHS[match.group(2).lower()], int(match.group(1)))
    except ValueError:
        raise ParseError(f"invalid date {text[:20]!r}") from None


def _number(token: Token, what: str) -> int:
    text = _atom(token, what)
    if not text.isdigit() or len(text) > 20:
        raise ParseError(f"{what} must be a number")
    return int(text)


def parse_search(tokens: list[Token]) -> tuple[Key, str]:
    """The search tree (an AND of the keys) and the charset; raises ParseError / BadCharset."""
    stream = _Stream(tokens)
    charset = "US-ASCII"
    first = stream.peek()
    if isinstance(first, Atom) and first.upper() == "CHARSET":
        stream.next("CHARSET")
        charset = _text(stream.next("a charset"), "a charset").decode("ascii", "replace").upper()
        if charset not in _CHARSETS:
            raise BadCharset(charset)
    keys: list[Key] = []
    while stream.peek() is not None:
        keys.append(_key(stream, 0))
    if not keys:
        raise ParseError("SEARCH needs at least one key")
    return (keys[0] if len(keys) == 1 else Key("AND", tuple(keys))), charset


def _key(stream: _Stream, depth: int) -> Key:
    stream.count += 1
    if stream.count > _MAX_KEYS or depth > 64:
        raise ParseError("search program too large")
    token = stream.next("a search key")
    if isinstance(token, list):
        inner = _Stream(token)
        inner.count = stream.count
        keys = []
        while inner.peek() is not None:
            keys.append(_key(inner, depth + 1))
        stream.count = inner.count
        if not keys:
            raise ParseError("an empty parenthesised search key")
        return Key("AND", tuple(keys))
    if isinstance(token, String):
        raise ParseError("a search key cannot be a string")
    name = token.upper()
    if name == "ALL":
        return Key("ALL")
    if name in ("NEW",):
        return Key("AND", (Key("FLAG", ("\\Recent", True)), Key("FLAG", ("\\Seen", False))))
    if name in _FLAG_KEYS:
        return Key("FLAG", _FLAG_KEYS[name])
    if name in ("KEYWORD", "UNKEYWORD"):
        flag = _atom(stream.next("a keyword"), "a keyword")
        return Key("FLAG", (flag, name == "KEYWORD"))
    if name in _HEADER_KEYS:
        return Key("HEADER", (_HEADER_KEYS[name], _text(stream.next("a string"), "a string")))
    if name == "HEADER":
        field = _text(stream.next("a header name"), "a header name").decode("ascii", "replace")
        return Key("HEADER", (field, _text(stream.next("a string"), "a string")))
    if name in ("BODY", "TEXT"):
        return Key(name, (_text(stream.next("a string"), "a string"),))
    if name in ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"):
        return Key(name, (_date(stream.next("a date")),))
    if name in ("LARGER", "SMALLER"):
        return Key(name, (_number(stream.next("a size"), "a size"),))
    if name == "NOT":
        return Key("NOT", (_key(stream, depth + 1),))
    if name == "OR":
        return Key("OR", (_key(stream, depth + 1), _key(stream, depth + 1)))
    if name == "UID":
        return Key("UID", (SequenceSet.parse(_atom(stream.next("a UID set"), "a UID set")),))
    if name == "MODSEQ":
        following = stream.next("a mod-sequence")
        if isinstance(following, String):  # entry name and type (RFC 7162 §3.1.5)
            stream.next("an entry type")
            following = stream.next("a mod-sequence")
        return Key("MODSEQ", (_number(following, "a mod-sequence"),))
    if name and (name[0].isdigit() or name[0] == "*"):
        return Key("SEQ", (SequenceSet.parse(token.text),))
    raise ParseError(f"unknown search key {token.text[:30]!r}")


def needs_content(key: Key) -> bool:
    if key.op in ("HEADER", "BODY", "TEXT", "SENTBEFORE", "SENTON", "SENTSINCE"):
        return True
    return any(isinstance(a, Key) and needs_content(a) for a in key.args)


def matches(key: Key, candidate: Candidate) -> bool:
    return _EVAL[key.op](key, candidate)


def _and(key: Key, c: Candidate) -> bool:
    return all(matches(k, c) for k in key.args if isinstance(k, Key))


def _or(key: Key, c: Candidate) -> bool:
    return any(matches(k, c) for k in key.args if isinstance(k, Key))


def _not(key: Key, c: Candidate) -> bool:
    inner = key.args[0]
    assert isinstance(inner, Key)  # noqa: S101
    return not matches(inner, c)


def _flag(key: Key, c: Candidate) -> bool:
    flag, present = key.args
    assert isinstance(flag, str)  # noqa: S101
    has = flag.lower() in {f.lower() for f in c.flags}
    return has == present


def _internal(key: Key, c: Candidate) -> bool:
    wanted = key.args[0]
    assert isinstance(wanted, date)  # noqa: S101
    day = c.internal_date.date()
    return {"BEFORE": day < wanted, "ON": day == wanted, "SINCE": day >= wanted}[key.op]


def _sent(key: Key, c: Candidate) -> bool:
    wanted = key.args[0]
    assert isinstance(wanted, date)  # noqa: S101
    assert c.message is not None  # noqa: S101
    value = c.message.root.header("Date")
    try:
        sent = (
            email.utils.parsedate_to_datetime(value.decode("ascii", "replace")) if value else None
        )
    except (TypeError, ValueError, IndexError):
        sent = None
    day = sent.date() if sent is not None else c.internal_date.date()
    return {"SENTBEFORE": day < wanted, "SENTON": day == wanted, "SENTSINCE": day >= wanted}[key.op]


def _size(key: Key, c: Candidate) -> bool:
    limit = key.args[0]
    assert isinstance(limit, int)  # noqa: S101
    return c.size > limit if key.op == "LARGER" else c.size < limit


def _uid(key: Key, c: Candidate) -> bool:
    seq = key.args[0]
    assert isinstance(seq, SequenceSet)  # noqa: S101
    return seq.contains(c.uid, c.largest_uid)


def _seq(key: Key, c: Candidate) -> bool:
    seq = key.args[0]
    assert isinstance(seq, SequenceSet)  # noqa: S101
    return seq.contains(c.seq, c.largest_seq)


def _modseq(key: Key, c: Candidate) -> bool:
    value = key.args[0]
    assert isinstance(value, int)  # noqa: S101
    return c.modseq >= value


def _fold(data: bytes) -> str:
    return data.decode("utf-8", "replace").casefold()


def decode_header_value(value: bytes) -> str:
    """RFC 2047 words decoded; undecodable words and 8-bit text kept as UTF-8 with replacement."""
    text = value.decode("utf-8", "replace")
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (ValueError, LookupError, UnicodeError):
        return text


def _header(key: Key, c: Candidate) -> bool:
    field, needle = key.args
    assert isinstance(field, str) and isinstance(needle, bytes)  # noqa: S101
    assert c.message is not None  # noqa: S101
    wanted = field.lower().encode("ascii", "replace")
    folded = _fold(needle)
    for header in c.message.root.headers:
        if header.name.lower() != wanted:
            continue
        if not folded:
            return True
        if folded in decode_header_value(header.value).casefold() or folded in _fold(header.value):
            return True
    return False


def _body_texts(entity: Entity) -> list[str]:
    if entity.is_multipart:
        return [t for child in entity.children for t in _body_texts(child)]
    if entity.message is not None:
        texts = [decode_header_value(h.value) for h in entity.message.headers]
        return texts + _body_texts(entity.message)
    try:
        decoded = decode_body(entity)
    except UnknownEncoding:
        decoded = entity.body_bytes
    if entity.maintype == "text":
        try:
            return [decoded.decode(charset_of(entity), "replace")]
        except LookupError:
            return [decoded.decode("utf-8", "replace")]
    return [decoded.decode("utf-8", "replace")]


def _body(key: Key, c: Candidate) -> bool:
    needle = key.args[0]
    assert isinstance(needle, bytes)  # noqa: S101
    assert c.message is not None  # noqa: S101
    folded = _fold(needle)
    root = c.message.root
    if key.op == "TEXT":
        for header in root.headers:
            if folded in decode_header_value(header.value).casefold():
                return True
    if folded in _fold(root.body_bytes):
        return True
    return any(folded in text.casefold() for text in _body_texts(root))


_EVAL: dict[str, Callable[[Key, Candidate], bool]] = {
    "ALL": lambda _k, _c: True,
    "AND": _and,
    "OR": _or,
    "NOT": _not,
    "FLAG": _flag,
    "BEFORE": _internal,
    "ON": _internal,
    "SINCE": _internal,
    "SENTBEFORE": _sent,
    "SENTON": _sent,
    "SENTSINCE": _sent,
    "LARGER": _size,
    "SMALLER": _size,
    "UID": _uid,
    "SEQ": _seq,
    "MODSEQ": _modseq,
    "HEADER": _header,
    "BODY": _body,
    "TEXT": _body,
}
