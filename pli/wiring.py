"""The only place that chooses implementations: SQL store, file blobs, local key directory.

Everything else receives its collaborators through its constructor.
"""

from __future__ import annotations

from dataclasses import dataclass

import crypto
from mailbox_store import SqlMailboxStore, TieredBlobStore
from messaging import (
    AccountService,
    DeliveryService,
    InProcessNotifier,
    Limits,
    LocalKeyDirectory,
    SystemClock,
)
from messaging.ports import Clock
from pli.secrets import InstanceSecrets, create_secrets, load_secrets
from pli.settings import Settings

__all__ = ["Pli", "open_pli", "initialise"]


@dataclass
class Pli:
    """The wired application: what commands and fronts use."""

    settings: Settings
    secrets: InstanceSecrets
    store: SqlMailboxStore
    blobs: TieredBlobStore
    notifier: InProcessNotifier
    clock: Clock
    accounts: AccountService
    delivery: DeliveryService

    async def close(self) -> None:
        """Finish the commits in flight, then release the database."""
        await self.store.close()


def initialise(settings: Settings) -> None:
    """Create the data directory layout and the instance secrets (idempotent)."""
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.resolved_blob_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    create_secrets(settings.secrets_dir)


async def open_pli(settings: Settings, *, clock: Clock | None = None) -> Pli:
    secrets = load_secrets(settings.secrets_dir)
    clock = clock or SystemClock()
    store = await SqlMailboxStore.open(
        settings.resolved_database_url,
        group_commit_max=settings.group_commit_max,
        blob_dir=settings.resolved_blob_dir,
        inline_blob_max=settings.inline_blob_max,
    )
    blobs = store.blobs
    notifier = InProcessNotifier()
    accounts = AccountService(
        store=store,
        clock=clock,
        instance_secret=secrets.instance_key,
        passphrase_limits=crypto.Argon2Limits(
            settings.passphrase_opslimit, settings.passphrase_memlimit
        ),
        app_password_limits=crypto.Argon2Limits(
            settings.app_password_opslimit, settings.app_password_memlimit
        ),
    )
    delivery = DeliveryService(
        store=store,
        blobs=blobs,
        keys=LocalKeyDirectory(store),
        notifier=notifier,
        clock=clock,
        operator_key=secrets.operator_key,
        limits=Limits(settings.max_message_size, settings.max_recipients),
    )
    return Pli(settings, secrets, store, blobs, notifier, clock, accounts, delivery)
