"""The MIME layout shared by typed messages that carry a structured part.

RFC 5322 (message format), RFC 2045-2049 (MIME), RFC 2183 (Content-Disposition), RFC 3282
(Content-Language), RFC 8259 (JSON). A typed message is ``multipart/mixed`` with, in order:

1. ``text/plain; charset=utf-8`` with ``Content-Language: fr`` or ``en``: what a person reads,
   in any mail client;
2. the structured part, ``application/vnd.pli.<kind>+json; version=<n>``, as an attachment so
   that plain mail clients list it instead of showing it;
3. the kind's standard files (an ``IHE_XDM.ZIP``, readable PDFs…), typed by their content.

The top-level headers are those of :mod:`messaging.mime`: ``Message-ID``, ``Date``, ``X-MSS-NIL``
and ``X-Pli-Type``, plus the kind's own (``X-MSS-CODECDA``…).

Reading is tolerant of the MIME defects real mail has, but not of ambiguity in the structured
part: the JSON must be an object, with no duplicate key, no NaN or infinity, and within a size
bound, because signatures are computed over its canonical form (sorted keys, no spaces, UTF-8:
:func:`canonical_json`). Refusal codes: ``mime-malformed``, ``too-large``,
``structured-missing``, ``structured-duplicate``, ``structured-version``,
``structured-malformed``, ``kind-mismatch``.
"""

from __future__ import annotations

import email.errors
import email.policy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime

from messaging.errors import InvalidMessage
from messaging.mime import KIND_HEADER, NIL_HEADER, PRODUCT_REFERENCE
from messaging.types import Address, MessageKind

__all__ = [
    "LANGUAGES",
    "MIME_ERRORS",
    "FilePart",
    "TypedParts",
    "build_typed_message",
    "read_typed_message",
    "canonical_json",
    "loads_strict",
    "has_part_type",
]

LANGUAGES = ("fr", "en")
"""Languages of the human-readable part; French first, as the trust space reads French."""

_POLICY = email.policy.SMTP.clone(max_line_length=78)
_READ_POLICY = email.policy.default
MIME_ERRORS = (
    email.errors.MessageError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    LookupError,
)
"""What the email package may raise on hostile input instead of recording a defect."""


@dataclass(frozen=True, slots=True)
class FilePart:
    """One attached file: its name, its bytes and the MIME type to label it with.

    On reading, ``content_type`` is what the sender declared; callers check the bytes.
    """

    filename: str
    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class TypedParts:
    """What :func:`read_typed_message` found in a message."""

    kind: str
    sender: Address
    sender_name: str
    recipients: tuple[Address, ...]
    subject: str
    text: str
    language: str
    structured: dict[str, object] | None
    files: tuple[FilePart, ...]
    headers: Mapping[str, tuple[str, ...]]
    """Top-level headers by lower-case name, every occurrence kept (a repeated header is
    ambiguous, and callers refuse it where it matters)."""
    layout: tuple[str, ...] = ()
    """The content type of every part, in tree order (``multipart/mixed`` first): kinds whose
    text must be what was signed accept only the layout Pli writes."""


def canonical_json(value: object) -> bytes:
    """The canonical UTF-8 bytes of a JSON value: sorted keys, no insignificant space."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def loads_strict(data: bytes, *, max_bytes: int) -> dict[str, object]:
    """A JSON object from ``data``; duplicate keys, NaN and infinity are refused.

    Every refusal is ``structured-malformed``.
    """
    if len(data) > max_bytes:
        raise InvalidMessage(
            f"structured part of {len(data)} bytes exceeds {max_bytes}", "structured-malformed"
        )
    try:
        value = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except (ValueError, RecursionError) as exc:
        raise InvalidMessage(
            f"structured part is not valid JSON: {exc}", "structured-malformed"
        ) from None
    if not isinstance(value, dict):
        raise InvalidMessage("structured part is not a JSON object", "structured-malformed")
    return value


def build_typed_message(
    *,
    kind: MessageKind,
    sender: Address,
    recipients: Sequence[Address],
    subject: str,
    text: str,
    language: str,
    structured: Mapping[str, object],
    structured_type: str,
    structured_version: int,
    structured_filename: str,
    files: Sequence[FilePart],
    message_id: str,
    date: datetime,
    sender_name: str = "",
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The RFC 5322 bytes of a typed message laid out as this module describes."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {language!r}")
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = HeaderAddress(sender_name, addr_spec=str(sender))
    msg["To"] = [HeaderAddress("", addr_spec=str(r)) for r in recipients]
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"
    msg[NIL_HEADER] = PRODUCT_REFERENCE
    msg[KIND_HEADER] = kind.value
    for name, value in extra_headers:
        msg[name] = value
    # Quoted-printable keeps the whole message 7-bit: it crosses any relay unchanged.
    msg.set_content(
        text,
        subtype="plain",
        charset="utf-8",
        cte="quoted-printable",
        headers=[f"Content-Language: {language}"],
    )
    maintype, _, subtype = structured_type.partition("/")
    msg.add_attachment(
        canonical_json(structured),
        maintype=maintype,
        subtype=subtype,
        filename=structured_filename,
        params={"version": str(structured_version)},
    )
    for part in files:
        maintype, _, subtype = part.content_type.partition("/")
        msg.add_attachment(part.data, maintype=maintype, subtype=subtype, filename=part.filename)
    return msg.as_bytes()


def has_part_type(msg: Message, content_type: str) -> bool:
    """Whether any part of ``msg`` has ``content_type`` (for kind recognition)."""
    try:
        return any(part.get_content_type() == content_type for part in msg.walk())
    except MIME_ERRORS:
        return False


def _addresses(msg: EmailMessage, name: str) -> tuple[tuple[Address, str], ...]:
    header = msg.get(name)
    if header is None:
        return ()
    found: list[tuple[Address, str]] = []
    for item in getattr(header, "addresses", ()):
        found.append((Address.parse(item.addr_spec), str(item.display_name or "")))
    return tuple(found)


def read_typed_message(
    raw: bytes,
    *,
    kind: MessageKind,
    structured_type: str,
    structured_version: int,
    max_bytes: int,
    structured_max_bytes: int = 1024 * 1024,
    require_structured: bool = True,
) -> TypedParts:
    """Split a typed message into its parts; :class:`InvalidMessage` on refusal."""
    if len(raw) > max_bytes:
        raise InvalidMessage(f"message of {len(raw)} bytes exceeds {max_bytes}", "too-large")
    try:
        return _read(
            raw,
            kind=kind,
            structured_type=structured_type,
            structured_version=structured_version,
            structured_max_bytes=structured_max_bytes,
            require_structured=require_structured,
        )
    except InvalidMessage:
        raise
    except MIME_ERRORS as exc:
        raise InvalidMessage(
            f"the message does not parse as MIME: {exc}", "mime-malformed"
        ) from None


def _read(
    raw: bytes,
    *,
    kind: MessageKind,
    structured_type: str,
    structured_version: int,
    structured_max_bytes: int,
    require_structured: bool,
) -> TypedParts:
    # A single-part message is read too: it then lacks the parts its kind needs, and that is
    # the more useful thing to say.
    msg = BytesParser(policy=_READ_POLICY).parsebytes(raw)
    declared = str(msg.get(KIND_HEADER, "")).strip().lower()
    if declared and declared != kind.value:
        raise InvalidMessage(
            f"the message declares kind {declared!r}, not {kind.value!r}", "kind-mismatch"
        )
    senders = _addresses(msg, "From")
    if len(senders) != 1:
        raise InvalidMessage("the message needs exactly one From address", "mime-malformed")
    recipients = tuple(a for a, _ in _addresses(msg, "To") + _addresses(msg, "Cc"))
    body = msg.get_body(preferencelist=("plain",))
    text = ""
    language = ""
    if isinstance(body, EmailMessage):
        content = body.get_content()
        text = content if isinstance(content, str) else ""
        # The wire form uses CRLF (RFC 5322 §2.1); readers want the text's own lines.
        text = text.replace("\r\n", "\n")
        language = str(body.get("Content-Language", "")).strip().lower()
    structured: dict[str, object] | None = None
    files: list[FilePart] = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        content_type = part.get_content_type()
        if content_type == structured_type:
            if structured is not None:
                raise InvalidMessage("the message has two structured parts", "structured-duplicate")
            version = str(part.get_param("version", "") or "")
            if version != str(structured_version):
                raise InvalidMessage(
                    f"structured part version {version!r} is not {structured_version}",
                    "structured-version",
                )
            structured = loads_strict(data, max_bytes=structured_max_bytes)
            continue
        files.append(FilePart(str(part.get_filename() or ""), data, content_type))
    if structured is None and require_structured:
        raise InvalidMessage(f"the message has no {structured_type} part", "structured-missing")
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in msg.items():
        headers[name.lower()] = (*headers.get(name.lower(), ()), str(value))
    return TypedParts(
        layout=tuple(part.get_content_type() for part in msg.walk()),
        kind=declared,
        sender=senders[0][0],
        sender_name=senders[0][1],
        recipients=recipients,
        subject=str(msg.get("Subject", "")),
        text=text,
        language=language,
        structured=structured,
        files=tuple(files),
        headers=headers,
    )
