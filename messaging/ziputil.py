"""Bounded reading and deterministic writing of zip archives (PKWARE APPNOTE 6.3).

Zip archives arrive from outside the trust boundary (the IHE XDM ``IHE_XDM.ZIP`` of health
document messages, IHE ITI TF-1 §16 and TF-3 §4.3). Reading one is only ever done through
:func:`read_zip`, which holds it to :class:`ZipLimits` and never writes to a file system, so a
hostile archive costs bounded memory and time and cannot name a path outside itself.

Checks, each with its :class:`~messaging.errors.InvalidMessage` code:

=========================  ==================================================================
``zip-not-zip``            the bytes are not a zip archive by content (libmagic)
``zip-malformed``          the archive does not parse, or an entry's CRC or size is wrong
``zip-too-many-entries``   more entries than ``max_entries``
``zip-path-traversal``     a name with ``..``, an absolute path, a backslash, a drive letter,
                           a control character or an empty segment
``zip-symlink``            an entry whose Unix mode is a symbolic link (or any non-regular file)
``zip-duplicate-entry``    two entries with the same name (compared case-insensitively: XDM
                           media are read on case-insensitive file systems)
``zip-encrypted``          an encrypted entry
``zip-unsupported``        a compression method other than stored or deflated
``zip-too-large``          more than ``max_total_size`` uncompressed bytes in all, or more
                           than ``max_entry_size`` in one entry
``zip-bomb``               an entry whose uncompressed size is more than ``max_ratio`` times
                           its compressed size
=========================  ==================================================================

Implementation notes: sizes are checked twice, first from the central directory before any
byte is inflated, then while inflating in bounded chunks, because a forged directory may
understate them. The ratio is only judged for entries above ``ratio_floor`` bytes: a small
text compresses very well and is harmless whatever its ratio.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from messaging.content import detect_type
from messaging.errors import InvalidMessage

__all__ = ["ZipLimits", "ZipEntry", "read_zip", "write_zip", "check_entry_name"]

_CHUNK = 64 * 1024
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_UNIX = 3  # "version made by" host system: external attributes hold a Unix mode


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Bounds for one archive; the defaults fit an XDM archive of a 25 MB message."""

    max_entries: int = 256
    max_total_size: int = 100 * 1024 * 1024
    max_entry_size: int = 50 * 1024 * 1024
    max_ratio: int = 100
    ratio_floor: int = 64 * 1024
    max_name_length: int = 255


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One regular file of an archive: its name (``/``-separated) and its bytes."""

    name: str
    data: bytes


def check_entry_name(name: str, max_length: int = 255) -> None:
    """Refuse a name that could escape the archive's root (``zip-path-traversal``)."""
    reason = None
    if not name or len(name) > max_length:
        reason = "is empty or too long"
    elif "\\" in name:
        reason = "contains a backslash"
    elif name.startswith("/"):
        reason = "is absolute"
    elif _DRIVE_RE.match(name):
        reason = "starts with a drive letter"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        reason = "contains a control character"
    else:
        segments = name.rstrip("/").split("/")
        if any(s in ("", ".", "..") for s in segments):
            reason = "has an empty, '.' or '..' segment"
    if reason is not None:
        raise InvalidMessage(f"zip entry name {name!r} {reason}", "zip-path-traversal")


def _check_info(info: zipfile.ZipInfo, limits: ZipLimits) -> None:
    check_entry_name(info.filename, limits.max_name_length)
    file_type = stat.S_IFMT(info.external_attr >> 16)
    # No type bits at all is what many writers (Python's zipfile among them) leave for a plain
    # file; any type other than a regular file or a directory is a link, device or pipe.
    if info.create_system == _UNIX and file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        kind = "a symbolic link" if file_type == stat.S_IFLNK else "not a regular file"
        raise InvalidMessage(f"zip entry {info.filename!r} is {kind}", "zip-symlink")
    if info.flag_bits & 0x1:
        raise InvalidMessage(f"zip entry {info.filename!r} is encrypted", "zip-encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InvalidMessage(
            f"zip entry {info.filename!r} uses compression method {info.compress_type}",
            "zip-unsupported",
        )
    if info.file_size > limits.max_entry_size:
        raise InvalidMessage(
            f"zip entry {info.filename!r} inflates to {info.file_size} bytes "
            f"(limit {limits.max_entry_size})",
            "zip-too-large",
        )
    _check_ratio(info.filename, info.file_size, info.compress_size, limits)


def _check_ratio(name: str, size: int, compressed: int, limits: ZipLimits) -> None:
    if size > limits.ratio_floor and size > limits.max_ratio * max(compressed, 1):
        raise InvalidMessage(
            f"zip entry {name!r} inflates {size} bytes from {compressed} "
            f"(more than {limits.max_ratio}:1)",
            "zip-bomb",
        )


def _inflate(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, limits: ZipLimits
) -> bytes:
    chunks: list[bytes] = []
    produced = 0
    with archive.open(info) as stream:
        while chunk := stream.read(_CHUNK):
            produced += len(chunk)
            # zipfile stops at the declared size (checked against the limits already), but a
            # bound that matters is not left to a library's internals: count for ourselves.
            if produced > info.file_size or produced > budget:  # pragma: no cover
                raise InvalidMessage(
                    f"zip entry {info.filename!r} inflates beyond its declared size",
                    "zip-too-large",
                )
            _check_ratio(info.filename, produced, info.compress_size, limits)
            chunks.append(chunk)
    return b"".join(chunks)


def read_zip(data: bytes, limits: ZipLimits | None = None) -> tuple[ZipEntry, ...]:
    """The regular files of a zip archive, in archive order, read under ``limits``.

    Directory entries are checked like files and then left out.
    """
    limits = limits or ZipLimits()
    if detect_type(data) != "application/zip":
        raise InvalidMessage("the archive is not a zip file by its content", "zip-not-zip")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise InvalidMessage(f"malformed zip archive: {exc}", "zip-malformed") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise InvalidMessage(
                f"zip archive has {len(infos)} entries (limit {limits.max_entries})",
                "zip-too-many-entries",
            )
        seen: set[str] = set()
        declared_total = 0
        for info in infos:
            _check_info(info, limits)
            key = info.filename.rstrip("/").casefold()
            if key in seen:
                raise InvalidMessage(
                    f"zip archive has two entries named {info.filename!r}", "zip-duplicate-entry"
                )
            seen.add(key)
            declared_total += info.file_size
        if declared_total > limits.max_total_size:
            raise InvalidMessage(
                f"zip archive inflates to {declared_total} bytes (limit {limits.max_total_size})",
                "zip-too-large",
            )
        entries: list[ZipEntry] = []
        remaining = limits.max_total_size
        for info in infos:
            if info.is_dir():
                continue
            try:
                content = _inflate(archive, info, remaining, limits)
            except InvalidMessage:  # pragma: no cover - see _inflate
                raise
            except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
                raise InvalidMessage(
                    f"zip entry {info.filename!r} is corrupt: {exc}", "zip-malformed"
                ) from None
            remaining -= len(content)
            entries.append(ZipEntry(info.filename, content))
    return tuple(entries)


def write_zip(entries: Sequence[ZipEntry], *, date: datetime) -> bytes:
    """A deflated archive of ``entries`` in the given order, every entry dated ``date``.

    Names are checked as a reader checks them, so Pli never writes what it would refuse.
    """
    buffer = io.BytesIO()
    stamp = (max(date.year, 1980), date.month, date.day, date.hour, date.minute, date.second)
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            check_entry_name(entry.name)
            if entry.name.casefold() in seen:
                raise InvalidMessage(
                    f"zip archive would have two entries named {entry.name!r}",
                    "zip-duplicate-entry",
                )
            seen.add(entry.name.casefold())
            info = zipfile.ZipInfo(entry.name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            # A regular file, rw-r--r--, made on Unix: what readers expect from a plain file.
            info.create_system = _UNIX
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, entry.data)
    return buffer.getvalue()
