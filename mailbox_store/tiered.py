"""Small blobs in the database, large ones as files: one :class:`BlobStore` for both.

Why: a file blob costs a create, a write, two fsyncs and a link before its delivery may
commit, which for a 5 KB note costs more than sealing it. A blob of at most
``inline_max`` bytes is instead kept in memory when its writer finishes and written into
the ``inline_blobs`` table *by the delivery transaction that references it*: the group
commit's single flush makes it durable together with its message, and no file is touched.
Larger blobs go to :class:`~mailbox_store.blobs.FileBlobStore` (durable before the
delivery commits, as before).

Implementation notes (the invariants):

- Where a blob lives follows from its size alone (``size <= inline_max``: the database),
  so a reader never has to look in two places.
- A pending small blob is only in memory until its delivery commits or fails; a crash in
  between loses it together with its never-acknowledged delivery.
- The port is blocking (used from worker threads); reading an inline blob runs the query
  on the store's event loop and waits for it, so it must not be called from that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO

from mailbox_store.blobs import FileBlobStore
from messaging.errors import NotFound
from messaging.ports import BlobWriter
from messaging.types import BlobRef

__all__ = ["TieredBlobStore"]

Fetch = Callable[[str], Awaitable[bytes | None]]


class TieredBlobStore:
    def __init__(
        self,
        files: FileBlobStore,
        *,
        inline_max: int,
        fetch: Fetch,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._files = files
        self.inline_max = inline_max
        self._fetch = fetch
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[bytes, int]] = {}

    def is_inline(self, ref: BlobRef) -> bool:
        return ref.size <= self.inline_max

    def remove(self, ref: BlobRef) -> None:
        """Delete a file blob no envelope names any more (inline ones go with their rows)."""
        if not self.is_inline(ref):
            self._files.remove(ref)

    # -- writing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[BlobWriter]:
        writer = _TieredWriter(self)
        try:
            yield writer
        finally:
            writer.close()

    def _hold(self, data: bytes) -> BlobRef:
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        with self._lock:
            held = self._pending.get(ref.digest)
            self._pending[ref.digest] = (data, (held[1] if held else 0) + 1)
        return ref

    def pending(self, ref: BlobRef) -> bytes | None:
        """The bytes of a small blob awaiting its delivery transaction."""
        with self._lock:
            held = self._pending.get(ref.digest)
        return held[0] if held else None

    def release(self, ref: BlobRef) -> None:
        """Forget a pending blob once its delivery committed or failed."""
        with self._lock:
            held = self._pending.get(ref.digest)
            if held is None:
                return
            if held[1] <= 1:
                del self._pending[ref.digest]
            else:
                self._pending[ref.digest] = (held[0], held[1] - 1)

    # -- reading ------------------------------------------------------------------------

    def open(self, ref: BlobRef) -> BinaryIO:
        if not self.is_inline(ref):
            return self._files.open(ref)
        data = self.pending(ref)
        if data is None:
            data = self._fetch_blocking(ref.digest)
        if data is None or len(data) != ref.size:
            raise NotFound(f"no blob {ref.digest} of {ref.size} bytes")
        return io.BytesIO(data)

    def exists(self, ref: BlobRef) -> bool:
        try:
            self.open(ref).close()
        except NotFound:
            return False
        return True

    def _fetch_blocking(self, digest: str) -> bytes | None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("TieredBlobStore.open blocks: call it from a worker thread")

        async def fetch() -> bytes | None:
            return await self._fetch(digest)

        return asyncio.run_coroutine_threadsafe(fetch(), self._loop).result()


class _TieredWriter:
    """Buffers up to ``inline_max`` bytes; beyond that, streams into a file blob."""

    def __init__(self, store: TieredBlobStore) -> None:
        self._store = store
        self._buffer = bytearray()
        self._spill_context: AbstractContextManager[BlobWriter] | None = None
        self._spill: BlobWriter | None = None
        self._finished = False

    def write(self, data: bytes, /) -> int:
        if self._finished:
            raise ValueError("this blob writer is finished")
        if self._spill is not None:
            return self._spill.write(data)
        self._buffer += data
        if len(self._buffer) > self._store.inline_max:
            self._spill_context = self._store._files.writer()
            self._spill = self._spill_context.__enter__()
            self._spill.write(bytes(self._buffer))
            self._buffer = bytearray()
        return len(data)

    def finish(self) -> BlobRef:
        if self._finished:
            raise ValueError("this blob writer is finished")
        self._finished = True
        if self._spill is not None:
            return self._spill.finish()
        return self._store._hold(bytes(self._buffer))

    def close(self) -> None:
        if self._spill_context is not None:
            self._spill_context.__exit__(None, None, None)
            self._spill_context = None
