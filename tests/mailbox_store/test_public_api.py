"""The package's public face: its curated names, its ports, and what it never imports."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import mailbox_store
from mailbox_store import (
    FileBlobStore,
    InMemoryBlobStore,
    InMemoryMailboxStore,
    SqlMailboxStore,
    TieredBlobStore,
)
from messaging.ports import BlobStore, MailboxStore


def port_methods(port: type) -> set[str]:
    return {name for name in vars(port) if not name.startswith("_")}


def test_the_public_names_are_curated() -> None:
    assert sorted(mailbox_store.__all__) == [
        "CommitStats",
        "FileBlobStore",
        "InMemoryBlobStore",
        "InMemoryMailboxStore",
        "SqlMailboxStore",
        "TieredBlobStore",
        "migrate",
    ]
    for name in mailbox_store.__all__:
        assert getattr(mailbox_store, name) is not None


@pytest.mark.parametrize("implementation", [SqlMailboxStore, InMemoryMailboxStore])
def test_mailbox_stores_implement_every_method_of_the_port(implementation: type) -> None:
    for name in port_methods(MailboxStore):
        method = getattr(implementation, name)
        declared = getattr(MailboxStore, name)
        # Coroutines where the port has coroutines (``watch`` returns an async iterator).
        assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(declared), name
        expected = inspect.signature(declared)
        assert list(inspect.signature(method).parameters) == list(expected.parameters), name


@pytest.mark.parametrize("implementation", [FileBlobStore, InMemoryBlobStore, TieredBlobStore])
def test_blob_stores_implement_every_method_of_the_port(implementation: type) -> None:
    for name in port_methods(BlobStore):
        assert callable(getattr(implementation, name)), name


def test_the_store_never_imports_cryptography() -> None:
    package = Path(mailbox_store.__file__).parent
    for source in package.rglob("*.py"):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in {"crypto", "nacl"}, f"{source}: {name}"


def _typed(_store: MailboxStore, _blobs: BlobStore) -> None:
    """mypy checks here that the implementations satisfy the ports structurally."""


def test_the_implementations_type_check_as_the_ports(tmp_path: Path) -> None:
    _typed(InMemoryMailboxStore(), InMemoryBlobStore())
    _typed(InMemoryMailboxStore(), FileBlobStore(tmp_path))
    stores: list[type[MailboxStore]] = [SqlMailboxStore, InMemoryMailboxStore]
    assert len(stores) == 2
