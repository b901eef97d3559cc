"""The MIME structure of a message, computed from its raw bytes as they were received.

RFC 5322 (header fields, folding), RFC 2045/2046 (Content-Type, multipart boundaries,
``message/rfc822``), RFC 3501 §6.4.5 and §7.4.2 (section numbering, BODYSTRUCTURE,
ENVELOPE), RFC 3516 (BINARY: decoding transfer encodings).

Nothing is re-serialised: every part is a pair of byte ranges (its header section and its
body) into the one buffer, so section contents and sizes are exact slices of what was
received, whatever the message's defects. The parser is lenient where mail is broken:

- a header section without the empty line runs to the end of the entity;
- a multipart without its closing delimiter ends where its enclosing entity ends; one
  without any delimiter (or without a ``boundary``) is served as a single ``text/plain``
  part, since a multipart with no part cannot be described in BODYSTRUCTURE;
- nesting deeper than ``MAX_DEPTH`` is served as an opaque ``application/octet-stream``;
- 8-bit and NUL bytes stay as they are (they go out in literals).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

__all__ = [
    "Entity",
    "Header",
    "parse_entity",
    "Section",
    "SectionError",
    "resolve",
    "decode_body",
    "UnknownEncoding",
    "parse_addresses",
    "AddressValue",
    "MAX_DEPTH",
]

MAX_DEPTH = 48
_WSP = b" \t"
_UNFOLD = re.compile(rb"\r?\n(?=[ \t])")
"""A folded header line's break (RFC 5322 §2.2.3), compiled once: every header of every
message served goes through it."""


@dataclass(frozen=True, slots=True)
class Header:
    name: bytes
    """As written (without the colon)."""
    raw: bytes
    """The whole field: name, colon, value, continuation lines and line endings."""
    value: bytes
    """Unfolded value, leading and trailing whitespace removed."""


@dataclass(slots=True)
class Entity:
    """A message or a body part.

    ``[start, body_start)`` is its header section, ``[body_start, end)`` its body.
    """

    data: bytes
    start: int
    body_start: int
    end: int
    headers: list[Header]
    maintype: str
    subtype: str
    params: list[tuple[bytes, bytes]]
    children: list[Entity] = field(default_factory=list)
    message: Entity | None = None
    """The encapsulated message of a ``message/rfc822`` part."""

    def header(self, name: str) -> bytes | None:
        wanted = name.lower().encode("ascii")
        for item in self.headers:
            if item.name.lower() == wanted:
                return item.value
        return None

    @property
    def is_multipart(self) -> bool:
        return bool(self.children)

    @property
    def header_bytes(self) -> bytes:
        return self.data[self.start : self.body_start]

    @property
    def body_bytes(self) -> bytes:
        return self.data[self.body_start : self.end]

    @property
    def body_size(self) -> int:
        return self.end - self.body_start

    def body_lines(self) -> int:
        return count_lines(self.data, self.body_start, self.end)

    def transfer_encoding(self) -> bytes:
        value = self.header("Content-Transfer-Encoding")
        return value.strip().lower() if value else b"7bit"


def count_lines(data: bytes, start: int, end: int) -> int:
    if end <= start:
        return 0
    lines = data.count(b"\n", start, end)
    if data[end - 1 : end] != b"\n":
        lines += 1
    return lines


# -- header section ---------------------------------------------------------------------


def _parse_header(data: bytes, start: int, end: int) -> tuple[list[Header], int]:
    """The fields of the header section at ``start`` and where the body begins."""
    headers: list[Header] = []
    pos = start
    current_start = -1
    current_name = b""
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        line = data[pos:line_end]
        if line in (b"\r\n", b"\n"):
            if current_start >= 0:
                headers.append(_header(data, current_name, current_start, pos))
            return headers, line_end
        if line[:1] in (b" ", b"\t") and current_start >= 0:
            pos = line_end
            continue
        if current_start >= 0:
            headers.append(_header(data, current_name, current_start, pos))
            current_start = -1
        colon = line.find(b":")
        name = line[:colon].rstrip(_WSP)
        if colon > 0 and b" " not in name and b"\t" not in name:
            current_name = name
            current_start = pos
        pos = line_end
    if current_start >= 0:
        headers.append(_header(data, current_name, current_start, end))
    return headers, end


def _header(data: bytes, name: bytes, start: int, end: int) -> Header:
    raw = data[start:end]
    value = raw[raw.index(b":") + 1 :]
    value = _UNFOLD.sub(b"", value).strip(b" \t\r\n")
    return Header(name, raw, value)


# -- Content-Type -----------------------------------------------------------------------


def _split_params(value: bytes) -> list[bytes]:
    """Split on ``;`` outside quoted strings and comments."""
    items: list[bytes] = []
    current = bytearray()
    quoted = False
    depth = 0
    i = 0
    while i < len(value):
        byte = value[i]
        if quoted:
            current.append(byte)
            if byte == 0x5C and i + 1 < len(value):
                current.append(value[i + 1])
                i += 1
            elif byte == 0x22:
                quoted = False
        elif byte == 0x22:
            quoted = True
            current.append(byte)
        elif byte == 0x28:
            depth += 1
        elif byte == 0x29 and depth:
            depth -= 1
        elif depth:
            pass
        elif byte == 0x3B:
            items.append(bytes(current).strip(b" \t"))
            current.clear()
        else:
            current.append(byte)
        i += 1
    items.append(bytes(current).strip(b" \t"))
    return items


def _unquote(value: bytes) -> bytes:
    value = value.strip(b" \t")
    if len(value) >= 2 and value[:1] == b'"' and value[-1:] == b'"':
        return re.sub(rb"\\(.)", rb"\1", value[1:-1])
    return value


def parse_params(items: list[bytes]) -> list[tuple[bytes, bytes]]:
    params: list[tuple[bytes, bytes]] = []
    for item in items:
        name, eq, value = item.partition(b"=")
        name = name.strip(b" \t")
        if not eq or not name:
            continue
        params.append((name, _unquote(value)))
    return params


def _content_type(
    value: bytes | None, default: tuple[str, str]
) -> tuple[str, str, list[tuple[bytes, bytes]]]:
    if value is None:
        params = [(b"charset", b"us-ascii")] if default == ("text", "plain") else []
        return default[0], default[1], params
    items = _split_params(value)
    kind, slash, sub = items[0].partition(b"/")
    kind = kind.strip(b" \t").lower()
    sub = sub.strip(b" \t").lower()
    token = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
    if not slash or not token.match(kind) or not token.match(sub):
        return "text", "plain", [(b"charset", b"us-ascii")]
    return kind.decode("ascii"), sub.decode("ascii"), parse_params(items[1:])


def param(params: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in params:
        if key.lower() == name:
            return value
    return None


# -- entities -----------------------------------------------------------------------------


def parse_entity(
    data: bytes,
    start: int = 0,
    end: int | None = None,
    *,
    default: tuple[str, str] = ("text", "plain"),
    depth: int = 0,
) -> Entity:
    """Parse the entity at ``data[start:end]`` (a whole message by default)."""
    end = len(data) if end is None else end
    headers, body_start = _parse_header(data, start, end)
    ctype = None
    for item in headers:
        if item.name.lower() == b"content-type":
            ctype = item.value
            break
    maintype, subtype, params = _content_type(ctype, default)
    entity = Entity(data, start, body_start, end, headers, maintype, subtype, params)
    if depth >= MAX_DEPTH and maintype in ("multipart", "message"):
        entity.maintype, entity.subtype, entity.params = "application", "octet-stream", []
        return entity
    if maintype == "multipart":
        boundary = param(params, b"boundary")
        ranges = _split_multipart(data, body_start, end, boundary) if boundary else []
        if not ranges:
            entity.maintype, entity.subtype = "text", "plain"
            entity.params = [(b"charset", b"us-ascii")]
            return entity
        child_default = ("message", "rfc822") if subtype == "digest" else ("text", "plain")
        entity.children = [
            parse_entity(data, s, e, default=child_default, depth=depth + 1) for s, e in ranges
        ]
    elif maintype == "message" and subtype in ("rfc822", "global"):
        if entity.transfer_encoding() in (b"7bit", b"8bit", b"binary"):
            entity.message = parse_entity(data, body_start, end, depth=depth + 1)
    return entity


def _split_multipart(data: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """The byte ranges of the body parts between ``--boundary`` delimiter lines."""
    delimiter = b"--" + boundary
    ranges: list[tuple[int, int]] = []
    part_start = -1
    pos = start
    while pos < end:
        found = data.find(delimiter, pos, end)
        if found < 0:
            break
        at_line_start = found == start or data[found - 1 : found] == b"\n"
        after = found + len(delimiter)
        nl = data.find(b"\n", after, end)
        line_end = end if nl < 0 else nl + 1
        rest = data[after:line_end]
        closing = rest.startswith(b"--")
        tail = rest[2:] if closing else rest
        if not at_line_start or tail.strip(b" \t\r\n"):
            pos = found + 1
            continue
        if part_start >= 0:
            part_end = found
            if part_end > part_start and data[part_end - 1 : part_end] == b"\n":
                part_end -= 1
                if part_end > part_start and data[part_end - 1 : part_end] == b"\r":
                    part_end -= 1
            ranges.append((part_start, max(part_start, part_end)))
        if closing:
            return ranges
        part_start = line_end
        pos = line_end
    if part_start >= 0:
        ranges.append((part_start, end))
    return ranges


# -- sections (RFC 3501 §6.4.5) -----------------------------------------------------------


class SectionError(ValueError):
    """A section that does not exist in this message."""


@dataclass(frozen=True, slots=True)
class Section:
    """A parsed section specification: part numbers and what of them."""

    parts: tuple[int, ...] = ()
    text: str = ""
    """"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT" or "MIME"."""
    fields: tuple[bytes, ...] = ()


def _step(entity: Entity, as_message: bool, number: int) -> tuple[Entity, bool]:
    if as_message:
        if entity.is_multipart:
            return _child(entity, number), False
        if number != 1:
            raise SectionError("no such part")
        return entity, False
    if entity.is_multipart:
        return _child(entity, number), False
    if entity.message is not None:
        return _step(entity.message, True, number)
    raise SectionError("no such part")


def _child(entity: Entity, number: int) -> Entity:
    if not 1 <= number <= len(entity.children):
        raise SectionError("no such part")
    return entity.children[number - 1]


def resolve(root: Entity, section: Section) -> bytes:
    """The bytes a ``BODY[section]`` returns for this message."""
    entity, as_message = root, True
    for number in section.parts:
        entity, as_message = _step(entity, as_message, number)
    if section.text == "":
        if as_message:
            return root.data[root.start : root.end]
        return entity.body_bytes
    if section.text == "MIME":
        if as_message:
            raise SectionError("MIME needs a part number")
        return entity.header_bytes
    if not as_message:
        if entity.message is None:
            if section.parts and entity is not root:
                raise SectionError("not a message/rfc822 part")
            # The part 1 of a single-part message: its header is the message's.
        else:
            entity = entity.message
    if section.text == "TEXT":
        return entity.body_bytes
    if section.text == "HEADER":
        return entity.header_bytes
    wanted = {f.lower() for f in section.fields}
    keep = section.text == "HEADER.FIELDS"
    selected = [h.raw for h in entity.headers if (h.name.lower() in wanted) == keep]
    out = b"".join(selected)
    return out + b"\r\n"


def part_entity(root: Entity, parts: tuple[int, ...]) -> Entity | None:
    """The entity a BINARY[parts] decodes (None for the whole message)."""
    entity, as_message = root, True
    for number in parts:
        entity, as_message = _step(entity, as_message, number)
    return None if as_message else entity


class UnknownEncoding(ValueError):
    """A Content-Transfer-Encoding BINARY cannot decode (``UNKNOWN-CTE``)."""


def decode_body(entity: Entity) -> bytes:
    encoding = entity.transfer_encoding()
    body = entity.body_bytes
    if encoding in (b"7bit", b"8bit", b"binary"):
        return body
    if encoding == b"base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
        try:
            return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))
        except binascii.Error:
            raise UnknownEncoding("undecodable base64") from None
    if encoding == b"quoted-printable":
        return binascii.a2b_qp(body)
    raise UnknownEncoding(encoding.decode("ascii", "replace"))


# -- addresses (ENVELOPE) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressValue:
    """One ENVELOPE address: ``(name adl mailbox host)``; groups use NIL hosts."""

    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None


def _lex(value: bytes) -> list[tuple[str, bytes]]:
    """Tokens of an address list: ('q', quoted), ('c', comment), ('s', special), ('a', atom)."""
    tokens: list[tuple[str, bytes]] = []
    i = 0
    n = len(value)
    while i < n:
        byte = value[i]
        if byte in b" \t\r\n":
            i += 1
        elif byte == 0x22:
            out = bytearray()
            i += 1
            while i < n and value[i] != 0x22:
                if value[i] == 0x5C and i + 1 < n:
                    i += 1
                out.append(value[i])
                i += 1
            tokens.append(("q", bytes(out)))
            i += 1
        elif byte == 0x28:
            depth = 1
            out = bytearray()
            i += 1
            while i < n and depth:
                if value[i] == 0x5C and i + 1 < n:
                    out.append(value[i + 1])
                    i += 2
                    continue
                if value[i] == 0x28:
                    depth += 1
                elif value[i] == 0x29:
                    depth -= 1
                    if not depth:
                        break
                out.append(value[i])
                i += 1
            tokens.append(("c", bytes(out)))
            i += 1
        elif byte in b"<>,:;@.[]":
            tokens.append(("s", bytes([byte])))
            i += 1
        else:
            start = i
            while i < n and value[i] not in b' \t\r\n"(<>,:;@.[]':
                i += 1
            tokens.append(("a", value[start:i]))
    return tokens


def _words(tokens: list[tuple[str, bytes]]) -> bytes:
    out: list[bytes] = []
    for kind, text in tokens:
        if kind == "c":
            continue
        if kind == "s" and text == b"." and out:
            out[-1] += b"."
            continue
        if out and out[-1].endswith(b"."):
            out[-1] += text
        else:
            out.append(text)
    return b" ".join(out)


def _addr_spec(tokens: list[tuple[str, bytes]]) -> tuple[bytes | None, bytes | None, bytes | None]:
    """adl, mailbox, host of the tokens of an addr-spec (or a route-addr's inside)."""
    adl = None
    colon = next((i for i, t in enumerate(tokens) if t == ("s", b":")), -1)
    if colon >= 0 and tokens[:1] == [("s", b"@")]:
        adl = b"".join(t[1] for t in tokens[:colon] if t[0] != "c")
        tokens = tokens[colon + 1 :]
    clean = [t for t in tokens if t[0] != "c"]
    at = max((i for i, t in enumerate(clean) if t == ("s", b"@")), default=-1)
    if at < 0:
        local = b"".join(t[1] for t in clean)
        return adl, local or b"MISSING_MAILBOX", b"MISSING_DOMAIN"
    local = b"".join(t[1] for t in clean[:at])
    host = b"".join(t[1] for t in clean[at + 1 :])
    return adl, local or b"MISSING_MAILBOX", host or b"MISSING_DOMAIN"


def _mailbox(tokens: list[tuple[str, bytes]]) -> AddressValue | None:
    if not [t for t in tokens if t[0] != "c"]:
        return None
    if ("s", b"<") in tokens:
        lt = tokens.index(("s", b"<"))
        gt = next((i for i in range(lt, len(tokens)) if tokens[i] == ("s", b">")), len(tokens))
        name = _words(tokens[:lt]) or None
        adl, local, host = _addr_spec(tokens[lt + 1 : gt])
        return AddressValue(name, adl, local, host)
    adl, local, host = _addr_spec(tokens)
    comments = [t[1] for t in tokens if t[0] == "c"]
    return AddressValue(comments[-1] if comments else None, adl, local, host)


def parse_addresses(value: bytes | None) -> list[AddressValue] | None:
    """The ENVELOPE address list of a header value (None when absent or empty)."""
    if value is None:
        return None
    tokens = _lex(value)
    result: list[AddressValue] = []
    current: list[tuple[str, bytes]] = []
    in_group = False
    depth = 0
    for token in tokens:
        if token == ("s", b"<"):
            depth += 1
        elif token == ("s", b">") and depth:
            depth -= 1
        if depth == 0 and token == ("s", b":") and not in_group and ("s", b"<") not in current:
            result.append(AddressValue(None, None, _words(current) or b"", None))
            current = []
            in_group = True
            continue
        if depth == 0 and token == ("s", b";") and in_group:
            item = _mailbox(current)
            if item is not None:
                result.append(item)
            result.append(AddressValue(None, None, None, None))
            current = []
            in_group = False
            continue
        if depth == 0 and token == ("s", b","):
            item = _mailbox(current)
            if item is not None:
                result.append(item)
            current = []
            continue
        current.append(token)
    item = _mailbox(current)
    if item is not None:
        result.append(item)
    if in_group:
        result.append(AddressValue(None, None, None, None))
    return result or None
