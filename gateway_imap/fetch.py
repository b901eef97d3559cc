"""FETCH: parsing the data items a client asks for and rendering them for one message.

RFC 3501 §6.4.5 and §7.4.2 (FETCH, ENVELOPE, BODY, BODYSTRUCTURE, sections and partials),
RFC 9051 §6.4.5, RFC 3516 (BINARY, BINARY.PEEK, BINARY.SIZE), RFC 7162 §3.1.4 (MODSEQ).

Items are split in two classes: *metadata* (UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ),
answered from the store's records without opening an envelope, and *content* (everything
else), for which the session opens the message once and this module slices the served
bytes (:mod:`gateway_imap.provenance` header + the message as received) with
:mod:`gateway_imap.mime`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway_imap.mime import (
    AddressValue,
    Entity,
    Section,
    SectionError,
    UnknownEncoding,
    decode_body,
    param,
    parse_addresses,
    parse_entity,
    part_entity,
    resolve,
)
from gateway_imap.parser import Atom, ParseError, String, Token
from gateway_imap.responses import Raw, Value, literal, nstring, render

__all__ = [
    "FetchItem",
    "parse_items",
    "needs_content",
    "marks_seen",
    "ServedMessage",
    "render_content",
    "format_internal_date",
    "envelope",
    "bodystructure",
    "FetchFailed",
]

METADATA = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ"})
_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE = METADATA | {
    "ENVELOPE",
    "BODY",
    "BODYSTRUCTURE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
}
_SECTION_RE = re.compile(
    r"^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\](?:<(\d{1,10})\.(\d{1,10})>)?$",
    re.IGNORECASE | re.DOTALL,
)
_SPEC_RE = re.compile(
    r"^((?:[1-9][0-9]{0,8})(?:\.[1-9][0-9]{0,8})*)?"
    r"(?:(?:^|\.)(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME))?"
    r"(?:\s+\((.*)\))?$",
    re.IGNORECASE | re.DOTALL,
)


class FetchFailed(Exception):
    """An item that cannot be served for this message (``NO``, with a response code)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


@dataclass(frozen=True, slots=True)
class FetchItem:
    name: str
    """UID, FLAGS, …, or BODY / BINARY / BINARY.SIZE for items with a section."""
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False
    label: bytes = b""
    """How the response names it (``BODY[HEADER.FIELDS (From)]<0>``)."""


def _field_names(text: str) -> tuple[bytes, ...]:
    names: list[bytes] = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|([^\s"]+)', text):
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if not name or any(ord(c) < 0x21 or ord(c) > 0x7E or c == ":" for c in name):
            raise ParseError("invalid header field name")
        names.append(name.encode("ascii"))
    if not names:
        raise ParseError("an empty header field list")
    return tuple(names)


def _parse_section_item(text: str) -> FetchItem:
    match = _SECTION_RE.match(text)
    if match is None:
        raise ParseError(f"unknown fetch attribute {text[:40]!r}")
    kind, spec, origin, length = match.groups()
    kind = kind.upper()
    spec_match = _SPEC_RE.match(spec)
    if spec_match is None:
        raise ParseError(f"invalid section {spec[:40]!r}")
    numbers, what, fields = spec_match.groups()
    what = (what or "").upper()
    if what.startswith("HEADER.FIELDS") != (fields is not None):
        raise ParseError("HEADER.FIELDS needs a list of field names, and only it")
    if what == "MIME" and not numbers:
        raise ParseError("MIME needs a part number")
    parts = tuple(int(n) for n in numbers.split(".")) if numbers else ()
    if kind.startswith("BINARY") and what:
        raise ParseError("BINARY takes part numbers only")
    names = _field_names(fields) if fields is not None else ()
    section = Section(parts, what, names)
    partial = None
    if origin is not None:
        if kind == "BINARY.SIZE":
            raise ParseError("BINARY.SIZE takes no partial")
        partial = (int(origin), int(length))
    name = (
        "BODY"
        if kind.startswith("BODY")
        else ("BINARY.SIZE" if kind == "BINARY.SIZE" else "BINARY")
    )
    shown = spec
    if fields is not None:
        shown = (
            (numbers + "." if numbers else "")
            + what
            + " ("
            + " ".join(n.decode("ascii") for n in names)
            + ")"
        )
    elif what:
        shown = (numbers + "." if numbers else "") + what
    else:
        shown = numbers or ""
    label = f"{name}[{shown}]"
    if partial is not None:
        label += f"<{partial[0]}>"
    return FetchItem(
        name=name,
        section=section,
        partial=partial,
        peek=kind.endswith(".PEEK") or kind == "BINARY.SIZE",
        label=label.encode("ascii"),
    )


def _item(token: Token) -> list[FetchItem]:
    if not isinstance(token, Atom):
        raise ParseError("fetch attributes are atoms")
    text = token.text
    upper = text.upper()
    if upper in _MACROS:
        return [FetchItem(n, label=n.encode()) for n in _MACROS[upper]]
    if upper in _SIMPLE:
        return [FetchItem(upper, label=upper.encode())]
    if "[" in upper:
        return [_parse_section_item(text)]
    raise ParseError(f"unknown fetch attribute {text[:40]!r}")


def parse_items(token: Token) -> list[FetchItem]:
    """The items of a FETCH's attribute argument (a macro, an item, or a list of items)."""
    if isinstance(token, list):
        if not token:
            raise ParseError("an empty fetch attribute list")
        items: list[FetchItem] = []
        for sub in token:
            if isinstance(sub, Atom) and sub.upper() in _MACROS:
                raise ParseError("macros cannot be in a list")
            items.extend(_item(sub))
        return items
    if isinstance(token, String):
        raise ParseError("fetch attributes are atoms")
    return _item(token)


def needs_content(items: Sequence[FetchItem]) -> bool:
    return any(item.name not in METADATA for item in items)


def marks_seen(items: Sequence[FetchItem]) -> bool:
    """A non-PEEK body section, RFC822 or RFC822.TEXT sets ``\\Seen`` (RFC 3501 §6.4.5)."""
    return any(
        (item.name in ("BODY", "BINARY") and item.section is not None and not item.peek)
        or item.name in ("RFC822", "RFC822.TEXT")
        for item in items
    )


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_internal_date(moment: datetime) -> bytes:
    """``"dd-Mon-yyyy hh:mm:ss +zzzz"`` (RFC 3501 ``date-time``)."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    text = (
        f"{moment.day:2d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )
    return b'"' + text.encode("ascii") + b'"'


# -- content ------------------------------------------------------------------------------


class ServedMessage:
    """The bytes a client is served for one message, parsed once on demand."""

    __slots__ = ("data", "_root")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._root: Entity | None = None

    @property
    def root(self) -> Entity:
        if self._root is None:
            self._root = parse_entity(self.data)
        return self._root


def _address(value: AddressValue) -> Value:
    return [
        value.name,
        value.adl,
        value.mailbox,
        value.host,
    ]


def _addresses(values: list[AddressValue] | None) -> Value:
    if values is None:
        return None
    return [_address(v) for v in values]


def envelope(entity: Entity) -> Value:
    """The ENVELOPE of a message entity (RFC 3501 §7.4.2), header values as received."""
    from_ = parse_addresses(entity.header("From"))
    sender = parse_addresses(entity.header("Sender")) or from_
    reply_to = parse_addresses(entity.header("Reply-To")) or from_
    return [
        entity.header("Date"),
        entity.header("Subject"),
        _addresses(from_),
        _addresses(sender),
        _addresses(reply_to),
        _addresses(parse_addresses(entity.header("To"))),
        _addresses(parse_addresses(entity.header("Cc"))),
        _addresses(parse_addresses(entity.header("Bcc"))),
        entity.header("In-Reply-To"),
        entity.header("Message-ID"),
    ]


def _params(params: list[tuple[bytes, bytes]]) -> Value:
    if not params:
        return None
    flat: list[Value] = []
    for name, value in params:
        flat.extend([name, value])
    return flat


def _disposition(entity: Entity) -> Value:
    value = entity.header("Content-Disposition")
    if value is None:
        return None
    from gateway_imap.mime import _split_params, parse_params  # noqa: PLC0415 - helpers

    items = _split_params(value)
    kind = items[0].strip()
    if not kind:
        return None
    return [kind, _params(parse_params(items[1:]))]


def _language(entity: Entity) -> Value:
    value = entity.header("Content-Language")
    if value is None:
        return None
    tags = [t.strip() for t in value.split(b",") if t.strip()]
    if not tags:
        return None
    return tags[0] if len(tags) == 1 else list(tags)


def bodystructure(entity: Entity, *, extensible: bool) -> Value:
    """BODYSTRUCTURE (``extensible``) or BODY of an entity (RFC 3501 §7.4.2)."""
    if entity.is_multipart:
        items: list[Value] = [bodystructure(c, extensible=extensible) for c in entity.children]
        out = b"(" + b"".join(render(i) for i in items) + b" " + nstring(entity.subtype.encode())
        if extensible:
            rest: list[Value] = [
                _params(entity.params),
                _disposition(entity),
                _language(entity),
                entity.header("Content-Location"),
            ]
            out += b" " + b" ".join(render(v) for v in rest)
        return Raw(out + b")")
    encoding = entity.header("Content-Transfer-Encoding")
    fields: list[Value] = [
        entity.maintype.encode(),
        entity.subtype.encode(),
        _params(entity.params),
        entity.header("Content-ID"),
        entity.header("Content-Description"),
        encoding.strip() if encoding else b"7BIT",
        entity.body_size,
    ]
    if entity.message is not None:
        fields.append(Raw(render(envelope(entity.message))))
        fields.append(bodystructure(entity.message, extensible=extensible))
        fields.append(entity.body_lines())
    elif entity.maintype == "text":
        fields.append(entity.body_lines())
    if extensible:
        fields.extend(
            [
                entity.header("Content-MD5"),
                _disposition(entity),
                _language(entity),
                entity.header("Content-Location"),
            ]
        )
    return fields


def _slice(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    origin, length = partial
    return data[origin : origin + length]


def render_content(item: FetchItem, message: ServedMessage) -> bytes:
    """``label SP value`` for a content item; raises :class:`FetchFailed`."""
    root = message.root
    if item.name == "ENVELOPE":
        return b"ENVELOPE " + render(envelope(root))
    if item.name == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + render(bodystructure(root, extensible=True))
    if item.name == "BODY" and item.section is None:
        return b"BODY " + render(bodystructure(root, extensible=False))
    if item.name == "RFC822":
        return b"RFC822 " + literal(message.data)
    if item.name == "RFC822.HEADER":
        return b"RFC822.HEADER " + literal(root.header_bytes)
    if item.name == "RFC822.TEXT":
        return b"RFC822.TEXT " + literal(root.body_bytes)
    assert item.section is not None  # noqa: S101 - parse_items gives sections to the rest
    try:
        if item.name == "BODY":
            return item.label + b" " + literal(_slice(resolve(root, item.section), item.partial))
        entity = part_entity(root, item.section.parts)
        decoded = message.data if entity is None else decode_body(entity)
    except SectionError:
        if item.name == "BODY":
            # RFC 3501: a section that does not exist is an empty string, not an error.
            return item.label + b" " + b'""'
        raise FetchFailed("NONEXISTENT", "no such body part") from None
    except UnknownEncoding:
        raise FetchFailed("UNKNOWN-CTE", "cannot decode this part's transfer encoding") from None
    if item.name == "BINARY.SIZE":
        return item.label + b" " + b"%d" % len(decoded)
    data = _slice(decoded, item.partial)
    return item.label + b" " + literal(data, binary=b"\x00" in data)


def charset_of(entity: Entity) -> str:
    value = param(entity.params, b"charset")
    return value.decode("ascii", "replace") if value else "us-ascii"
