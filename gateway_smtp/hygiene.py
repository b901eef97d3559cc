"""Checks on message data before anything is sealed: framing, headers, UTF-8, MIME.

- RFC 5321 §2.3.8 and §4.1.1.4: lines end with CRLF; a bare CR or LF anywhere in the data
  is refused. That closes SMTP smuggling (SEC Consult, 2023): a peer that ends DATA at
  ``\\n.\\n``, ``\\r.\\n``, ``\\n.\\r\\n``… can no longer disagree with us about where a
  message ends, because such a message is refused whole (the DATA reader,
  :meth:`gateway_smtp.protocol.PliSMTP._problem`).
- RFC 5322 §2.2 and §3.6: header fields are ``name: value`` with a printable-ASCII name,
  continuation lines start with white space, exactly one ``From:``.
- RFC 6532 / RFC 6531 §3.2: UTF-8 in headers only in an SMTPUTF8 transaction, and then it
  must be valid UTF-8; 8-bit text parts declared (or defaulting to) UTF-8 must be valid.
- RFC 2045/2046: a multipart whose boundary is missing or never closed, a header block
  without its separator, parts nested absurdly deep or too many parts: refused as malformed.

:func:`check_message` returns the refusal (a :class:`~gateway_smtp.replies.Reply`) or None.
It reads the data once for framing-independent checks and parses MIME only when the message
is multipart or carries 8-bit bytes, so a plain ASCII note costs a header scan.
"""

from __future__ import annotations

import email.errors
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from gateway_smtp.replies import R, Reply

__all__ = ["check_message", "header_section", "MAX_PARTS", "MAX_DEPTH"]

MAX_PARTS = 1000
MAX_DEPTH = 20
_HEADER_NAME = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_FATAL_DEFECTS = (
    email.errors.NoBoundaryInMultipartDefect,
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
    email.errors.MissingHeaderBodySeparatorDefect,
    email.errors.FirstHeaderLineIsContinuationDefect,
    email.errors.MisplacedEnvelopeHeaderDefect,
)
_UTF8_CHARSETS = frozenset({"", "utf-8", "utf8", "us-ascii", "ascii"})


def header_section(data: bytes) -> tuple[bytes, bytes]:
    """(headers without the blank line, body); a message without body is all headers."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data, b""
    return data[: end + 2], data[end + 4 :]


def check_message(data: bytes, *, smtputf8: bool) -> Reply | None:
    """The refusal for ``data`` (CRLF-framed, dot-unstuffed), or None when acceptable."""
    headers, body = header_section(data)
    refused = _check_headers(headers, smtputf8=smtputf8)
    if refused is not None:
        return refused
    content_type = _header_value(headers, b"content-type").lower()
    if b"multipart/" in content_type or not data.isascii():
        return _check_mime(data)
    return None


def _check_headers(headers: bytes, *, smtputf8: bool) -> Reply | None:
    if not headers.strip():
        return R.NO_FROM
    lines = headers.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    from_count = 0
    for index, line in enumerate(lines):
        if line[:1] in (b" ", b"\t"):
            if index == 0:
                return R.BAD_HEADER
            continue
        if not _HEADER_NAME.match(line):
            return R.BAD_HEADER
        if line[:5].lower() == b"from:":
            from_count += 1
    if not headers.isascii():
        try:
            headers.decode("utf-8")
        except UnicodeDecodeError:
            return R.NOT_UTF8
        if not smtputf8:
            return R.EIGHTBIT_HEADER
    if from_count != 1:
        return R.NO_FROM
    return None


def _header_value(headers: bytes, name: bytes) -> bytes:
    """The first value of header ``name`` (unfolded), or b''."""
    current: bytes | None = None
    for line in headers.split(b"\r\n"):
        if current is not None:
            if line[:1] in (b" ", b"\t"):
                current += line
                continue
            return current
        field, colon, value = line.partition(b":")
        if colon and field.strip().lower() == name:
            current = value
    return current or b""


def _check_mime(data: bytes) -> Reply | None:
    try:
        message = BytesParser(policy=compat32).parsebytes(data)
        stack: list[tuple[Message, int]] = [(message, 0)]
        parts = 0
        while stack:
            part, depth = stack.pop()
            parts += 1
            if parts > MAX_PARTS or depth > MAX_DEPTH:
                return R.BAD_MIME
            if any(isinstance(d, _FATAL_DEFECTS) for d in part.defects):
                return R.BAD_MIME
            if part.is_multipart():
                payload = part.get_payload()
                if not isinstance(payload, list) or not payload:
                    return R.BAD_MIME
                for child in payload:
                    if not isinstance(child, Message):
                        return R.BAD_MIME
                    stack.append((child, depth + 1))
            elif not _text_is_valid(part):
                return R.NOT_UTF8_BODY
    except (RecursionError, ValueError, LookupError):
        return R.BAD_MIME
    return None


def _text_is_valid(part: Message) -> bool:
    """8-bit text declared (or defaulting to) UTF-8 or ASCII must decode as UTF-8."""
    if part.get_content_maintype() != "text":
        return True
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding in {"base64", "quoted-printable"}:
        return True
    charset = str(part.get_content_charset("") or "").lower()
    if charset not in _UTF8_CHARSETS:
        return True
    # For 7bit/8bit/binary parts, decode=True gives the bytes as they arrived.
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return True
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
