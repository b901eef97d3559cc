"""Multipart uploads (RFC 7578) streamed to disk, with size limits and content checks.

:func:`receive_multipart` reads the request body as it arrives and writes each file part to
its own temporary file: a 25 MB upload never sits whole in memory. Text fields (the JSON
``metadata``) are kept in memory up to ``max_field_size``. The whole body is bounded by
``max_total`` (413 as soon as it is exceeded, naming the part being read, and at once when
``Content-Length`` announces too much). The SHA-256 of the raw body is computed on the way,
for the ``Idempotency-Key`` check.

:func:`require_type` checks a file by its content (:func:`messaging.content.detect_type`,
libmagic), never by its name or declared type: a "PDF" that is not one is refused with a
422 problem naming its field.

Temporary files are removed when the :class:`Upload` is closed (use it as a context
manager).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Self

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from messaging.content import SNIFF_BYTES, detect_type
from web.problems import ApiError, FieldError

__all__ = ["UploadedFile", "Upload", "receive_multipart", "receive_raw", "require_type"]


@dataclass
class UploadedFile:
    field: str
    filename: str
    declared_type: str
    path: Path
    size: int

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def read(self) -> bytes:
        return self.path.read_bytes()

    def head(self) -> bytes:
        with self.path.open("rb") as f:
            return f.read(SNIFF_BYTES)


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    digest: str = ""
    size: int = 0
    directory: Path | None = None

    def file(self, name: str) -> UploadedFile | None:
        return next((f for f in self.files if f.field == name), None)

    def close(self) -> None:
        for item in self.files:
            item.path.unlink(missing_ok=True)
        if self.directory is not None:
            try:
                self.directory.rmdir()
            except OSError:
                pass  # not empty: a file we could not unlink is already logged by the OS

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _too_large(limit: int, part: str | None) -> ApiError:
    where = [FieldError(part, f"{part}: the request exceeds {limit} bytes", "body")] if part else []
    return ApiError(413, "Request too large", f"the request body exceeds {limit} bytes", where)


def _check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, None)


async def receive_raw(request: Request, *, max_total: int, directory: Path | None) -> Upload:
    """A non-multipart body (``message/rfc822``) streamed to one temporary file."""
    _check_length(request, max_total)
    folder = Path(tempfile.mkdtemp(prefix="pli-upload-", dir=directory))
    upload = Upload(directory=folder)
    digest = hashlib.sha256()
    path = folder / "body"
    size = 0
    try:
        with path.open("wb") as sink:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_total:
                    raise _too_large(max_total, "body")
                digest.update(chunk)
                sink.write(chunk)
        upload.files.append(
            UploadedFile("body", "", request.headers.get("content-type", ""), path, size)
        )
        if not upload.files[0].path.exists():  # pragma: no cover - written just above
            raise OSError("upload vanished")
    except BaseException:
        path.unlink(missing_ok=True)
        upload.close()
        raise
    upload.digest = digest.hexdigest()
    upload.size = size
    return upload


class _State:
    def __init__(self, folder: Path, max_field: int) -> None:
        self.folder = folder
        self.max_field = max_field
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[str, str] = {}
        self.name: str | None = None
        self.filename: str | None = None
        self.content_type = ""
        self.sink: BinaryIO | None = None
        self.path: Path | None = None
        self.size = 0
        self.text = bytearray()
        self.error: ApiError | None = None
        self.upload: Upload | None = None
        self.count = 0


async def receive_multipart(
    request: Request,
    *,
    max_total: int,
    max_field_size: int,
    max_parts: int = 64,
    directory: Path | None = None,
) -> Upload:
    """Parse a ``multipart/form-data`` body as it streams in (see the module docstring)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(
            415,
            "Unsupported media type",
            "this endpoint takes multipart/form-data with a boundary",
            [FieldError("Content-Type", "expected multipart/form-data", "header")],
        )
    _check_length(request, max_total)
    folder = Path(tempfile.mkdtemp(prefix="pli-upload-", dir=directory))
    upload = Upload(directory=folder)
    state = _State(folder, max_field_size)
    state.upload = upload

    def on_part_begin() -> None:
        state.headers = {}
        state.name = state.filename = None
        state.sink = None
        state.size = 0
        state.text = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[state.header_field.decode("latin-1").lower()] = state.header_value.decode(
            "utf-8", "replace"
        )
        state.header_field = state.header_value = b""

    def on_headers_finished() -> None:
        state.count += 1
        if state.count > max_parts:
            state.error = ApiError(400, "Too many parts", f"at most {max_parts} parts")
            return
        _, disposition = parse_options_header(state.headers.get("content-disposition", ""))
        name = disposition.get(b"name")
        if name is None:
            state.error = ApiError(
                400, "Invalid multipart body", "a part has no name in its Content-Disposition"
            )
            return
        state.name = name.decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        state.content_type = state.headers.get("content-type", "")
        if filename is not None:
            state.filename = filename.decode("utf-8", "replace")
            fd, raw_path = tempfile.mkstemp(dir=state.folder)
            state.path = Path(raw_path)
            state.sink = os.fdopen(fd, "wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.error is not None:
            return
        chunk = data[start:end]
        state.size += len(chunk)
        if state.sink is not None:
            state.sink.write(chunk)
        else:
            if state.size > state.max_field:
                state.error = ApiError(
                    413,
                    "Field too large",
                    f"field {state.name!r} exceeds {state.max_field} bytes",
                    [FieldError(state.name or "?", f"at most {state.max_field} bytes", "body")],
                )
                return
            state.text += chunk

    def on_part_end() -> None:
        if state.error is not None or state.name is None:
            return
        if state.sink is not None and state.path is not None:
            state.sink.close()
            state.sink = None
            upload.files.append(
                UploadedFile(
                    state.name, state.filename or "", state.content_type, state.path, state.size
                )
            )
            state.path = None
        else:
            try:
                upload.fields[state.name] = bytes(state.text).decode("utf-8")
            except UnicodeDecodeError:
                state.error = ApiError.bad_parameter(state.name, "is not UTF-8 text", "body")

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    digest = hashlib.sha256()
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_total:
                raise _too_large(max_total, state.name)
            digest.update(chunk)
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart raises its own errors on bad framing
                raise ApiError(400, "Invalid multipart body", str(exc) or "malformed") from None
            if state.error is not None:
                raise state.error
        parser.finalize()
        if state.error is not None:
            raise state.error
    except BaseException:
        if state.sink is not None:
            state.sink.close()
        if state.path is not None:
            state.path.unlink(missing_ok=True)
        upload.close()
        raise
    upload.digest = digest.hexdigest()
    upload.size = total
    return upload


def require_type(item: UploadedFile, expected: str, *, what: str) -> None:
    """Refuse (422) a file whose content is not of type ``expected``."""
    found = detect_type(item.head())
    if found != expected:
        message = f"{what} must be {expected}, its content is {found}"
        raise ApiError(
            422,
            "Unacceptable content",
            f"{item.field}: {message}",
            [FieldError(item.field, message, "body")],
        )
