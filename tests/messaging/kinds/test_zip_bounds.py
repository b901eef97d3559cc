from __future__ import annotations

import io
import struct
import zipfile
from datetime import UTC, datetime

import pytest

from messaging.errors import InvalidMessage
from messaging.ziputil import ZipEntry, ZipLimits, check_entry_name, read_zip, write_zip

DATE = datetime(2026, 11, 22, tzinfo=UTC)


def make(*entries: tuple[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def code_of(data: bytes, limits: ZipLimits | None = None) -> str:
    with pytest.raises(InvalidMessage) as caught:
        read_zip(data, limits)
    return caught.value.code


def test_written_archives_read_back_in_order_without_directories():
    entries = [ZipEntry("README.TXT", b"hello"), ZipEntry("IHE_XDM/SUBSET01/A.XML", b"<a/>")]
    data = write_zip(entries, date=DATE)
    assert read_zip(data) == tuple(entries)
    assert read_zip(make(("dir/", b""), ("dir/a", b"x"))) == (ZipEntry("dir/a", b"x"),)


def test_a_small_text_that_compresses_well_is_not_a_bomb():
    assert read_zip(make(("a.txt", b"a" * 60_000)))[0].data == b"a" * 60_000


def test_ratio_total_entry_and_count_limits_are_parameters():
    data = make(("a", b"\0" * 200_000))
    assert code_of(data) == "zip-bomb"
    assert read_zip(data, ZipLimits(max_ratio=2000))[0].data == b"\0" * 200_000
    assert code_of(make(("a", b"x" * 100), ("b", b"y" * 100)), ZipLimits(max_total_size=150)) == (
        "zip-too-large"
    )
    assert code_of(make(("a", b"x" * 100)), ZipLimits(max_entry_size=99)) == "zip-too-large"
    assert code_of(make(("a", b""), ("b", b"")), ZipLimits(max_entries=1)) == (
        "zip-too-many-entries"
    )


def test_a_directory_that_understates_sizes_is_caught_while_inflating():
    honest = make(("a", bytes(range(256)) * 400))
    # Patch the uncompressed size in the local header and in the central directory.
    local_at = honest.index(b"PK\x03\x04")
    central_at = honest.index(b"PK\x01\x02")
    forged = bytearray(honest)
    struct.pack_into("<I", forged, local_at + 22, 1000)
    struct.pack_into("<I", forged, central_at + 24, 1000)
    assert code_of(bytes(forged)) in {"zip-malformed", "zip-too-large"}


def test_encrypted_and_exotic_entries_are_refused():
    data = bytearray(make(("a", b"secret")))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature)
        flags = struct.unpack_from("<H", data, at + offset)[0]
        struct.pack_into("<H", data, at + offset, flags | 0x1)
    assert code_of(bytes(data)) == "zip-encrypted"
    assert code_of(make(("a", b"x" * 100), compression=zipfile.ZIP_BZIP2)) == "zip-unsupported"


def test_corrupt_and_non_zip_bytes_are_refused():
    assert code_of(make(("a", b"x" * 1000))[:-30]) == "zip-malformed"  # truncated
    assert code_of(b"%PDF-1.4\n") == "zip-not-zip"
    data = bytearray(make(("a", b"x" * 1000)))
    data[data.index(b"PK\x01\x02") - 5] ^= 0xFF  # a byte of the compressed data
    assert code_of(bytes(data)) == "zip-malformed"


@pytest.mark.parametrize(
    "name",
    [
        "../a",
        "a/../../b",
        "/etc/passwd",
        "C:/x",
        "c:x",
        "a\\b",
        "a//b",
        "./a",
        "a\x00b",
        "",
        "a" * 300,
    ],
)
def test_names_that_could_escape_the_archive_are_refused(name):
    with pytest.raises(InvalidMessage) as caught:
        check_entry_name(name)
    assert caught.value.code == "zip-path-traversal"


def test_pli_never_writes_what_it_would_refuse():
    with pytest.raises(InvalidMessage) as caught:
        write_zip([ZipEntry("../x", b"")], date=DATE)
    assert caught.value.code == "zip-path-traversal"
    with pytest.raises(InvalidMessage) as caught:
        write_zip([ZipEntry("A", b""), ZipEntry("a", b"")], date=DATE)
    assert caught.value.code == "zip-duplicate-entry"
