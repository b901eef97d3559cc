"""Accounts and their credentials: creation, unlocking, passphrase change, app passwords,
recovery.

Every credential is one copy of the account's key bundle, sealed under a key derived by one
Argon2id run over a secret (the passphrase, an app password or the recovery key). The same
run yields the *authentication key*, of which only a hash is stored: it is all a server ever
checks, and the webmail can later send it instead of the passphrase.

Timing: an unknown address costs exactly what a known one costs. Every unlock performs one
Argon2id run with the configured limits over a salt that is indistinguishable from a real
one (a keyed hash of the address for unknown accounts), then one constant-time comparison.

App passwords are random (>= 80 bits) and typed into mail clients that log in often: they
share one salt per account (derived from the address and the instance secret) so one
Argon2id run finds the matching credential among all of them, whatever their number.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from dataclasses import dataclass

import crypto
from messaging.directory import Application, Directory, MailboxEntry
from messaging.errors import AccountExists, AuthenticationFailed, MailboxClosed, NotFound
from messaging.ports import Clock, KeyPublisher, MailboxStore
from messaging.types import AccountRecord, Address, Credential, CredentialKind, MailboxKind

__all__ = ["AccountService", "CreatedAccount", "UnlockedAccount", "NewAppPassword"]


@dataclass(frozen=True, slots=True)
class CreatedAccount:
    account: AccountRecord
    recovery_key: str
    """Shown once to the owner; never stored."""


@dataclass(frozen=True, slots=True)
class UnlockedAccount:
    account: AccountRecord
    keys: crypto.MailboxKeys
    credential_id: str
    credential_kind: CredentialKind


@dataclass(frozen=True, slots=True)
class NewAppPassword:
    credential: Credential
    password: str
    """Shown once; never stored."""


class AccountService:
    def __init__(
        self,
        *,
        store: MailboxStore,
        clock: Clock,
        instance_secret: bytes,
        passphrase_limits: crypto.Argon2Limits,
        app_password_limits: crypto.Argon2Limits,
        publisher: KeyPublisher | None = None,
        directory: Directory | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._secret = instance_secret
        self._passphrase_limits = passphrase_limits
        self._app_limits = app_password_limits
        self._publisher = publisher
        self._directory = directory

    # -- creation -----------------------------------------------------------------------

    async def create(
        self, address: Address, kind: MailboxKind, display_name: str, passphrase: str
    ) -> CreatedAccount:
        if await self._store.get_account(address) is not None:
            raise AccountExists(f"{address} already exists")
        keys = crypto.generate_keys()
        now = self._clock.now()
        account = AccountRecord(
            address=address,
            kind=kind,
            display_name=display_name,
            encryption_key=keys.encryption_public.raw,
            signing_key=keys.signing_public.raw,
            created_at=now,
        )
        recovery_key = crypto.generate_recovery_key()
        credentials = [
            await self._credential(keys, CredentialKind.PASSPHRASE, "passphrase", passphrase),
            await self._credential(keys, CredentialKind.RECOVERY, "recovery key", recovery_key),
        ]
        await self._store.create_account(account, credentials)
        # Published after the account exists, never before: a leaf for an address that
        # turned out to be taken would be a key swap.
        await self.publish(account)
        await self._list_in_directory(account)
        return CreatedAccount(account=account, recovery_key=recovery_key)

    async def _list_in_directory(self, account: AccountRecord) -> None:
        """A local mailbox is one of the directory's mailboxes too (found, and its key shown).

        A patient mailbox is listed only from a qualified identity (the directory's
        ``add_patient``), never from an account alone.
        """
        if self._directory is None or account.kind is MailboxKind.PAT:
            return
        if await self._directory.get_mailbox(account.address) is not None:
            return
        if account.kind is MailboxKind.APP:
            await self._directory.add_application(
                Application(account.address, name=account.display_name)
            )
        else:
            await self._directory.add_mailbox(
                MailboxEntry(account.address, account.kind, description=account.display_name)
            )

    async def publish(self, account: AccountRecord) -> None:
        """Publish the account's keys (again: republishing unchanged keys adds nothing)."""
        if self._publisher is not None:
            await self._publisher.publish(
                account.address, account.encryption_key, account.signing_key
            )

    async def publish_all(self) -> int:
        """Publish every open local account's keys; run at start-up to heal a failed publish."""
        count = 0
        for account in await self._store.list_accounts():
            if account.closed_at is None:
                await self.publish(account)
                count += 1
        return count

    # -- unlocking ----------------------------------------------------------------------

    async def unlock(
        self, address: Address, secret: str, kind: CredentialKind = CredentialKind.PASSPHRASE
    ) -> UnlockedAccount:
        """Open the key bundle with a secret; :class:`AuthenticationFailed` otherwise."""
        account = await self._store.get_account(address)
        candidates = (
            [c for c in await self._store.list_credentials(address) if c.kind is kind]
            if account is not None
            else []
        )
        if kind is CredentialKind.RECOVERY:
            secret = _normalise_recovery(secret)
        salt = self._salt_for(address, kind, candidates)
        limits = self._limits_for(kind, candidates)
        try:
            derived = await _derive(secret, salt, limits)
        except crypto.KeyFormatError:
            # An empty or malformed secret is a wrong secret: the same answer, and the
            # same cost, as any other wrong one.
            derived = await _derive("\x00invalid", salt, limits)
            candidates = []
        matched: Credential | None = None
        for credential in candidates:
            # Compare against every candidate so the work does not depend on the position.
            if crypto.check_auth_key(derived.auth_key, credential.auth_hash) and matched is None:
                matched = credential
        if account is None or matched is None:
            raise AuthenticationFailed()
        if account.closed_at is not None:
            raise MailboxClosed(f"{address} is closed")
        try:
            keys = crypto.open_bundle(matched.sealed_bundle, derived.bundle_key)
        except crypto.BundleError:
            raise AuthenticationFailed() from None
        await self._store.touch_credential(address, matched.id, self._clock.now())
        return UnlockedAccount(account, keys, matched.id, matched.kind)

    # -- changes ------------------------------------------------------------------------

    async def change_passphrase(self, address: Address, old: str, new: str) -> None:
        unlocked = await self.unlock(address, old)
        await self._set_passphrase(unlocked, new)

    async def reset_passphrase_with_recovery_key(
        self, address: Address, recovery_key: str, new: str
    ) -> None:
        unlocked = await self.unlock(address, recovery_key, CredentialKind.RECOVERY)
        await self._set_passphrase(unlocked, new)

    async def _set_passphrase(self, unlocked: UnlockedAccount, new: str) -> None:
        address = unlocked.account.address
        old_ids = [
            c.id
            for c in await self._store.list_credentials(address)
            if c.kind is CredentialKind.PASSPHRASE
        ]
        fresh = await self._credential(unlocked.keys, CredentialKind.PASSPHRASE, "passphrase", new)
        await self._store.replace_credentials(address, old_ids, [fresh])

    async def create_app_password(self, unlocked: UnlockedAccount, label: str) -> NewAppPassword:
        password = crypto.generate_app_password()
        credential = await self._credential(
            unlocked.keys, CredentialKind.APP_PASSWORD, label, password
        )
        await self._store.add_credential(unlocked.account.address, credential)
        return NewAppPassword(credential, password)

    async def list_app_passwords(self, address: Address) -> list[Credential]:
        return [
            c
            for c in await self._store.list_credentials(address)
            if c.kind is CredentialKind.APP_PASSWORD
        ]

    async def revoke_app_password(self, address: Address, credential_id: str) -> None:
        if not any(c.id == credential_id for c in await self.list_app_passwords(address)):
            raise NotFound(f"no app password {credential_id} for {address}")
        await self._store.revoke_credential(address, credential_id)

    # -- helpers ------------------------------------------------------------------------

    async def _credential(
        self, keys: crypto.MailboxKeys, kind: CredentialKind, label: str, secret: str
    ) -> Credential:
        if kind is CredentialKind.APP_PASSWORD:
            salt = self._keyed_salt(b"app", keys.encryption_public.raw)
            limits = self._app_limits
        else:
            if kind is CredentialKind.RECOVERY:
                secret = _normalise_recovery(secret)
            salt = crypto.new_salt()
            limits = self._passphrase_limits
        derived = await _derive(secret, salt, limits)
        return Credential(
            id=uuid.uuid4().hex,
            kind=kind,
            label=label,
            salt=salt,
            opslimit=limits.opslimit,
            memlimit=limits.memlimit,
            auth_hash=crypto.auth_key_hash(derived.auth_key),
            sealed_bundle=crypto.seal_bundle(keys, derived.bundle_key),
            created_at=self._clock.now(),
        )

    def _salt_for(
        self, address: Address, kind: CredentialKind, candidates: list[Credential]
    ) -> bytes:
        if candidates:
            # Credentials of one kind share their salt for app passwords; passphrase and
            # recovery credentials are one per account.
            return candidates[0].salt
        return self._keyed_salt(kind.value.encode(), str(address).encode())

    def _limits_for(
        self, kind: CredentialKind, candidates: list[Credential]
    ) -> crypto.Argon2Limits:
        if candidates:
            return crypto.Argon2Limits(candidates[0].opslimit, candidates[0].memlimit)
        return self._app_limits if kind is CredentialKind.APP_PASSWORD else self._passphrase_limits

    def _keyed_salt(self, purpose: bytes, value: bytes) -> bytes:
        return hmac.new(self._secret, purpose + b"\x00" + value, hashlib.blake2b).digest()[:16]

    # -- sign-in by auth key (the webmail derives it in the browser) ----------------------

    async def login_parameters(
        self, address: Address, kind: CredentialKind = CredentialKind.PASSPHRASE
    ) -> tuple[bytes, crypto.Argon2Limits]:
        """Salt and limits a client needs to derive its keys for ``kind``.

        An unknown address (or one without such a credential) gets the same kind of answer
        as a known one: a stable keyed salt and the configured limits, so the answer does
        not tell whether the account exists.
        """
        candidates = [c for c in await self._store.list_credentials(address) if c.kind is kind]
        return self._salt_for(address, kind, candidates), self._limits_for(kind, candidates)

    async def check_auth_key(
        self,
        address: Address,
        auth_key: crypto.AuthKey,
        kind: CredentialKind = CredentialKind.PASSPHRASE,
    ) -> tuple[AccountRecord, Credential]:
        """The credential whose auth hash matches; :class:`AuthenticationFailed` otherwise.

        The server sees the auth key only, never the secret; every candidate is compared
        so the work does not depend on which one matches.
        """
        account = await self._store.get_account(address)
        # The same queries whether or not the account exists: no timing tells which.
        credentials = await self._store.list_credentials(address)
        candidates = [c for c in credentials if c.kind is kind] if account is not None else []
        matched: Credential | None = None
        for credential in candidates:
            if crypto.check_auth_key(auth_key, credential.auth_hash) and matched is None:
                matched = credential
        if account is None or matched is None:
            raise AuthenticationFailed()
        if account.closed_at is not None:
            raise MailboxClosed(f"{address} is closed")
        await self._store.touch_credential(address, matched.id, self._clock.now())
        return account, matched

    async def replace_passphrase_credential(self, address: Address, credential: Credential) -> None:
        """Swap in a passphrase credential sealed by the client (new salt, hash, bundle)."""
        old_ids = [
            c.id
            for c in await self._store.list_credentials(address)
            if c.kind is CredentialKind.PASSPHRASE
        ]
        await self._store.replace_credentials(address, old_ids, [credential])

    def app_password_salt(self, account: AccountRecord) -> bytes:
        """The per-account salt shared by app passwords (a client seals their bundles)."""
        return self._keyed_salt(b"app", account.encryption_key)

    @property
    def passphrase_limits(self) -> crypto.Argon2Limits:
        return self._passphrase_limits

    @property
    def app_password_limits(self) -> crypto.Argon2Limits:
        return self._app_limits

    def salt_for_login(self, address: Address, credentials: list[Credential]) -> bytes:
        """The salt a client needs to derive its keys; a stable fake one for unknown addresses."""
        passphrase = [c for c in credentials if c.kind is CredentialKind.PASSPHRASE]
        return self._salt_for(address, CredentialKind.PASSPHRASE, passphrase)


async def _derive(secret: str, salt: bytes, limits: crypto.Argon2Limits) -> crypto.DerivedKeys:
    # Argon2id is built to take tens of milliseconds and megabytes: never on the event loop.
    return await asyncio.to_thread(crypto.derive_keys, secret, salt, limits)


def _normalise_recovery(secret: str) -> str:
    try:
        return crypto.normalize_recovery_key(secret)
    except crypto.KeyFormatError:
        # A malformed recovery key is just a wrong secret: same path, same cost.
        return secret
