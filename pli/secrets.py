"""The instance's own secrets, kept as files under ``$PLI_HOME/secrets`` (mode 0600).

- ``instance.key``: 32 random bytes keying the fake salts of unknown accounts and the
  per-account app-password salts (so they cannot be precomputed by an outsider).
- ``operator.key``: the Ed25519 seed of the operator signing key that signs ``gateway``
  envelopes.
- ``log.key``: the Ed25519 seed of the key-transparency log's signing key (its public half
  is what clients pin); kept apart from the operator key so either can be rotated alone.
- ``queue.key``: the X25519 secret and Ed25519 seed (64 bytes) of the outbound queue: messages
  waiting for a peer are sealed for it at rest (``messaging/outbound.py``).

They are created once by ``pli init`` and never printed or logged.
"""

from __future__ import annotations

import os
import secrets as random
from dataclasses import dataclass, field
from pathlib import Path

import crypto

__all__ = ["InstanceSecrets", "create_secrets", "load_secrets", "SecretsMissing"]


class SecretsMissing(Exception):
    """The data directory was not initialised (run ``pli init``)."""


@dataclass(frozen=True, slots=True)
class InstanceSecrets:
    instance_key: bytes = field(repr=False)
    operator_key: crypto.SigningKey = field(repr=False)
    log_key: crypto.SigningKey = field(repr=False)
    queue_keys: crypto.MailboxKeys | None = field(default=None, repr=False)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def create_secrets(directory: Path) -> None:
    """Create missing secrets; existing ones are never replaced."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    instance = directory / "instance.key"
    operator = directory / "operator.key"
    if not instance.exists():
        _write_new(instance, random.token_bytes(32))
    if not operator.exists():
        _write_new(operator, crypto.generate_signing_key().seed)
    log = directory / "log.key"
    if not log.exists():
        _write_new(log, crypto.generate_signing_key().seed)
    queue = directory / "queue.key"
    if not queue.exists():
        keys = crypto.generate_keys()
        _write_new(queue, keys.encryption_secret + keys.signing_seed)


def load_secrets(directory: Path) -> InstanceSecrets:
    try:
        instance = (directory / "instance.key").read_bytes()
        seed = (directory / "operator.key").read_bytes()
        if not (directory / "log.key").exists():
            create_secrets(directory)  # a data directory from before the key log
        log_seed = (directory / "log.key").read_bytes()
        if not (directory / "queue.key").exists():
            create_secrets(directory)  # a data directory from before the outbound queue
        queue = (directory / "queue.key").read_bytes()
    except FileNotFoundError:
        raise SecretsMissing(
            f"{directory.parent} is not initialised: run `pli init` first"
        ) from None
    return InstanceSecrets(
        instance,
        crypto.SigningKey.from_seed(seed),
        crypto.SigningKey.from_seed(log_seed),
        crypto.MailboxKeys(queue[:32], queue[32:]),
    )
