"""Content-addressed, write-once blob stores: ``FileBlobStore`` and ``InMemoryBlobStore``.

A blob is an encrypted envelope (ciphertext only: the store never sees plaintext). Its
address is the lower-case hex SHA-256 of its bytes, so equal blobs are stored once and a
stored blob never changes.

Layout of :class:`FileBlobStore`: ``root/ab/cd/<digest>`` where ``ab`` and ``cd`` are the
first two pairs of hex digits (at most 65 536 directories, each with few files), and
``root/tmp/`` for blobs being written.

Implementation notes (the invariants):

- **Durable before referenced.** ``finish()`` flushes and fsyncs the file, links it under
  its address, then fsyncs the directory that holds the new name (and the parents of any
  directory it created). Only then does it return the :class:`BlobRef` that a delivery
  may commit: a committed message never points at a blob lost in a power cut.
- **Write-once.** The file is put in place with ``link(2)``, which fails if the name
  exists: a blob is never overwritten, even by two writers racing with the same bytes;
  the loser discards its temporary file.
- **Nothing half-written is visible.** Bytes go to a temporary file under ``root/tmp``
  (same file system, so linking is atomic); leaving the writer's context without
  ``finish()`` removes it. A crash can leave files in ``root/tmp``, never under an address.
- **Private.** Files are created 0o600, directories 0o700.
- **Blocking.** All of it is blocking file I/O: call it from a worker thread
  (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from messaging.errors import NotFound
from messaging.types import BlobRef

__all__ = ["FileBlobStore", "InMemoryBlobStore"]

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_DIR_MODE = 0o700


def _check_digest(ref: BlobRef) -> None:
    # A digest becomes a path: anything but 64 hex digits could escape the root.
    if not _DIGEST_RE.match(ref.digest):
        raise NotFound(f"no blob {ref.digest!r}: not a SHA-256 hex digest")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    """Blobs as files under ``root``; see the module docstring for the invariants."""

    def __init__(self, root: Path) -> None:
        # No I/O here: directories are made by the first writer, in its worker thread.
        self.root = Path(root)
        self._tmp = self.root / "tmp"

    def path_of(self, ref: BlobRef) -> Path:
        """Where the blob ``ref`` lives (whether or not it exists)."""
        _check_digest(ref)
        return self.root / ref.digest[:2] / ref.digest[2:4] / ref.digest

    def _make_dirs(self, path: Path) -> None:
        """Create ``path`` and missing parents 0o700, fsyncing each new entry's parent."""
        missing: list[Path] = []
        current = path
        while not current.exists():
            missing.append(current)
            current = current.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=_DIR_MODE)
            except FileExistsError:
                continue  # another writer made it
            directory.chmod(_DIR_MODE)  # whatever the umask
            _fsync_dir(directory.parent)

    @contextlib.contextmanager
    def writer(self) -> Iterator[_FileBlobWriter]:
        """A writer for one new blob; blocking (use from a worker thread)."""
        self._make_dirs(self._tmp)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="blob-")  # mode 0o600
        writer = _FileBlobWriter(self, os.fdopen(fd, "wb"), Path(name))
        try:
            yield writer
        finally:
            writer._discard()

    def open(self, ref: BlobRef) -> BinaryIO:
        """Open the blob for reading. Raises ``NotFound`` if missing or of another size."""
        path = self.path_of(ref)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"no blob {ref.digest}") from None
        size = os.fstat(handle.fileno()).st_size
        if size != ref.size:
            handle.close()
            raise NotFound(f"blob {ref.digest} has {size} bytes, not {ref.size}")
        return handle

    def exists(self, ref: BlobRef) -> bool:
        try:
            return self.path_of(ref).stat().st_size == ref.size
        except (NotFound, FileNotFoundError):
            return False

    def remove(self, ref: BlobRef) -> None:
        """Delete a blob no envelope names any more (the purge); blocking, idempotent."""
        self.path_of(ref).unlink(missing_ok=True)


class _FileBlobWriter:
    """Streams bytes into a temporary file while hashing them."""

    def __init__(self, store: FileBlobStore, handle: BinaryIO, temp: Path) -> None:
        self._store = store
        self._handle: BinaryIO | None = handle
        self._temp = temp
        self._hash = hashlib.sha256()
        self._size = 0
        self._ref: BlobRef | None = None

    def write(self, data: bytes, /) -> int:
        if self._handle is None:
            raise ValueError("this blob writer is finished")
        self._handle.write(data)
        self._hash.update(data)
        self._size += len(data)
        return len(data)

    def finish(self) -> BlobRef:
        """Make the blob durable under its content address and return its reference."""
        if self._handle is None:
            raise ValueError("this blob writer is finished")
        handle, self._handle = self._handle, None
        try:
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            handle.close()
        ref = BlobRef(self._hash.hexdigest(), self._size)
        target = self._store.path_of(ref)
        self._store._make_dirs(target.parent)
        try:
            os.link(self._temp, target)
        except FileExistsError:
            pass  # write-once: the same bytes are already stored
        else:
            _fsync_dir(target.parent)
        self._temp.unlink(missing_ok=True)
        self._ref = ref
        return ref

    def _discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._ref is None:
            self._temp.unlink(missing_ok=True)


class InMemoryBlobStore:
    """Blobs in a dictionary; the same write-once, content-addressed contract."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def writer(self) -> Iterator[_MemoryBlobWriter]:
        yield _MemoryBlobWriter(self)

    def _put(self, data: bytes) -> BlobRef:
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        with self._lock:
            self._blobs.setdefault(ref.digest, data)
        return ref

    def open(self, ref: BlobRef) -> BinaryIO:
        with self._lock:
            data = self._blobs.get(ref.digest)
        if data is None or len(data) != ref.size:
            raise NotFound(f"no blob {ref.digest!r} of {ref.size} bytes")
        return io.BytesIO(data)

    def exists(self, ref: BlobRef) -> bool:
        with self._lock:
            data = self._blobs.get(ref.digest)
        return data is not None and len(data) == ref.size


class _MemoryBlobWriter:
    def __init__(self, store: InMemoryBlobStore) -> None:
        self._store = store
        self._buffer: io.BytesIO | None = io.BytesIO()

    def write(self, data: bytes, /) -> int:
        if self._buffer is None:
            raise ValueError("this blob writer is finished")
        return self._buffer.write(data)

    def finish(self) -> BlobRef:
        if self._buffer is None:
            raise ValueError("this blob writer is finished")
        data, self._buffer = self._buffer.getvalue(), None
        return self._store._put(data)
