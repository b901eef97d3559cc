"""Blob stores: content-addressed, write-once, durable before a reference is handed out."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from mailbox_store import FileBlobStore, InMemoryBlobStore
from messaging.errors import NotFound
from messaging.ports import BlobStore
from messaging.types import BlobRef

DATA = b"sealed envelope bytes " * 1000


def ref_of(data: bytes) -> BlobRef:
    return BlobRef(hashlib.sha256(data).hexdigest(), len(data))


def put(store: BlobStore, *chunks: bytes) -> BlobRef:
    with store.writer() as writer:
        for chunk in chunks:
            assert writer.write(chunk) == len(chunk)
        return writer.finish()


@pytest.fixture(params=["file", "memory"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "file":
        return FileBlobStore(tmp_path / "blobs")
    return InMemoryBlobStore()


# -- the contract, for both ---------------------------------------------------------------


def test_a_blob_is_addressed_by_the_sha256_of_its_bytes(blobs: BlobStore) -> None:
    ref = put(blobs, DATA[:100], DATA[100:])

    assert ref == ref_of(DATA)
    assert blobs.exists(ref)
    with blobs.open(ref) as handle:
        assert handle.read() == DATA


def test_equal_blobs_are_stored_once(blobs: BlobStore) -> None:
    assert put(blobs, DATA) == put(blobs, DATA[:7], DATA[7:])
    with blobs.open(ref_of(DATA)) as handle:
        assert handle.read() == DATA


def test_an_empty_blob_is_a_blob(blobs: BlobStore) -> None:
    ref = put(blobs)
    assert ref == ref_of(b"")
    with blobs.open(ref) as handle:
        assert handle.read() == b""


def test_a_missing_blob_is_not_found(blobs: BlobStore) -> None:
    missing = ref_of(b"never written")
    assert not blobs.exists(missing)
    with pytest.raises(NotFound):
        blobs.open(missing)


def test_a_blob_of_another_size_is_not_found(blobs: BlobStore) -> None:
    ref = put(blobs, DATA)
    wrong = BlobRef(ref.digest, ref.size + 1)
    assert not blobs.exists(wrong)
    with pytest.raises(NotFound):
        blobs.open(wrong)


def test_a_writer_left_without_finish_stores_nothing(blobs: BlobStore) -> None:
    with blobs.writer() as writer:
        writer.write(DATA)
    assert not blobs.exists(ref_of(DATA))

    with pytest.raises(RuntimeError), blobs.writer() as writer:
        writer.write(DATA)
        raise RuntimeError("sealing failed half-way")
    assert not blobs.exists(ref_of(DATA))


def test_a_finished_writer_takes_no_more_bytes(blobs: BlobStore) -> None:
    with blobs.writer() as writer:
        writer.write(b"x")
        writer.finish()
        with pytest.raises(ValueError, match="finished"):
            writer.write(b"y")
        with pytest.raises(ValueError, match="finished"):
            writer.finish()


# -- files --------------------------------------------------------------------------------


def test_files_live_under_two_levels_of_digest_directories(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    ref = put(store, DATA)

    path = tmp_path / ref.digest[:2] / ref.digest[2:4] / ref.digest
    assert path.read_bytes() == DATA
    assert store.path_of(ref) == path
    assert list((tmp_path / "tmp").iterdir()) == []


def test_files_are_private(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = FileBlobStore(root)
    old_umask = os.umask(0o022)
    try:
        ref = put(store, DATA)
        with store.writer() as writer:
            writer.write(b"pending")
            [temp] = (root / "tmp").iterdir()
            assert stat.S_IMODE(temp.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)

    path = store.path_of(ref)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (root, root / "tmp", path.parent, path.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_a_stored_blob_is_never_overwritten(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    ref = put(store, DATA)
    path = store.path_of(ref)
    inode = path.stat().st_ino

    assert put(store, DATA) == ref

    assert path.stat().st_ino == inode
    assert list((tmp_path / "tmp").iterdir()) == []


def test_racing_writers_of_the_same_bytes_both_succeed(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    barrier = threading.Barrier(8)
    refs: list[BlobRef] = []

    def write() -> None:
        with store.writer() as writer:
            writer.write(DATA)
            barrier.wait()
            refs.append(writer.finish())

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert refs == [ref_of(DATA)] * 8
    assert store.path_of(ref_of(DATA)).read_bytes() == DATA
    assert list((tmp_path / "tmp").iterdir()) == []


def test_an_abandoned_writer_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with store.writer() as writer:
        writer.write(DATA)
        assert len(list((tmp_path / "tmp").iterdir())) == 1
    assert list((tmp_path / "tmp").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]


def test_finish_fsyncs_the_file_before_naming_it_then_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileBlobStore(tmp_path)
    target = store.path_of(ref_of(DATA))
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    put(store, DATA)

    temp_dir = str(tmp_path / "tmp")
    temp_syncs = [i for i, (path, _) in enumerate(synced) if path.startswith(temp_dir + "/")]
    [temp_sync] = temp_syncs
    assert synced[temp_sync][1] is False  # the bytes are on disk before the name exists
    assert synced[-1] == (str(target.parent), True)  # then the new name is made durable
    # Every directory created on the way had its parent synced too.
    synced_paths = {path for path, _ in synced}
    for directory in (tmp_path / "tmp", target.parent.parent, target.parent):
        assert str(directory.parent) in synced_paths


def test_a_digest_cannot_escape_the_root(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    (tmp_path / "secret").write_bytes(b"x")

    for digest in ("../secret", "../../" + "a" * 56, "A" * 64, ""):
        evil = BlobRef(digest, 1)
        assert not store.exists(evil)
        with pytest.raises(NotFound):
            store.open(evil)


def test_a_new_store_does_no_io_until_first_write(tmp_path: Path) -> None:
    root = tmp_path / "later"
    store = FileBlobStore(root)
    assert not root.exists()
    assert not store.exists(ref_of(DATA))
    put(store, DATA)
    assert root.is_dir()
