"""A 30 MB message streams through temporary files in bounded memory."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from pathlib import Path

import pytest

from crypto import open_envelope, seal_envelope
from tests.crypto.support import ALICE, BOB, make_header

SIZE = 30 * 1024 * 1024
PEAK_LIMIT = 4 * 1024 * 1024


@pytest.mark.slow
def test_a_30_mb_message_streams_in_bounded_memory(tmp_path: Path) -> None:
    plaintext_path = tmp_path / "plaintext.eml"
    envelope_path = tmp_path / "envelope.pli"
    opened_path = tmp_path / "opened.eml"
    source_digest = hashlib.blake2b(digest_size=32)
    with plaintext_path.open("wb") as out:
        for _ in range(SIZE // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            source_digest.update(block)
            out.write(block)

    tracemalloc.start()
    try:
        started = time.perf_counter()
        with plaintext_path.open("rb") as source, envelope_path.open("wb") as sink:
            result = seal_envelope(
                make_header(size=SIZE),
                source,
                sink,
                signer=ALICE.signing_key,
                recipients=[BOB.encryption_public],
            )
        sealed = time.perf_counter()
        _, seal_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with envelope_path.open("rb") as source, opened_path.open("wb") as sink:
            opened = open_envelope(source, result.slots[0], BOB, sink)
        finished = time.perf_counter()
        _, open_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.envelope_size == envelope_path.stat().st_size
    assert opened.plaintext_size == SIZE == opened_path.stat().st_size
    assert opened.plaintext_digest == source_digest.digest()
    assert seal_peak < PEAK_LIMIT, f"sealing peaked at {seal_peak} bytes"
    assert open_peak < PEAK_LIMIT, f"opening peaked at {open_peak} bytes"
    # Loose bounds: only a pathological slowdown (a quadratic copy, say) should trip them.
    assert sealed - started < 30
    assert finished - sealed < 30
