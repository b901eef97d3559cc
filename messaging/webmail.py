"""The webmail's server side, without HTTP: sign-in by auth key and one-time code,
sessions, the sealed mailbox a browser reads, and client-sealed sending.

The browser holds the keys (``docs/webmail.md``). The server only ever sees:

- the **auth key** (32 bytes out of the browser's Argon2id run): checked against the
  stored hash by :meth:`~messaging.accounts.AccountService.check_auth_key`, never stored;
- the **sealed key bundle** it hands back after sign-in, which only the browser opens;
- envelopes and key slots, exactly as stored, and envelopes the browser sealed
  (accepted by :class:`~messaging.sealed.SealedIntake`).

Sign-in is two steps. :meth:`WebmailService.start_login` checks the auth key, draws a
6-digit code, sends it to the account's phone by SMS when one is registered, else to its
personal e-mail address (:mod:`messaging.signin_codes`, :mod:`messaging.sms`), and
returns an opaque *ticket*; :meth:`WebmailService.finish_login` trades ticket and code for
a session. Tickets, codes and session tokens are stored only as keyed hashes (a copy
of the database lets nobody sign in), expire (``WebmailLimits``), and a ticket dies after
``code_attempts`` wrong codes. The CSRF token is an HMAC of the session's hash: bound to
the session, nothing more to store, and useless with another session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import BinaryIO, Protocol

import crypto
from messaging.accounts import AccountService
from messaging.errors import AuthenticationFailed, InvalidMessage, PliError
from messaging.kinds.notification import Channel, check_phone
from messaging.ports import BlobStore, Clock, MailboxStore, Notifier
from messaging.sealed import SealedIntake
from messaging.service import Submitted
from messaging.signin_codes import CodeSender, SignInCode
from messaging.types import (
    AccountRecord,
    Address,
    Credential,
    CredentialKind,
    FolderRecord,
    MessageRecord,
)

__all__ = [
    "WebmailLimits",
    "PendingLogin",
    "WebSession",
    "Preferences",
    "WebmailStore",
    "WebmailService",
    "LoginTicket",
    "OpenSession",
    "CodeRefused",
    "NoCodeAddress",
    "SmsUnavailable",
    "LANGUAGES",
]

LANGUAGES = ("fr", "en")


class CodeRefused(PliError):
    """The one-time code is wrong, expired or used up; ``remaining`` tries are left."""

    def __init__(self, remaining: int) -> None:
        super().__init__("the code is wrong or expired")
        self.remaining = remaining


class NoCodeAddress(PliError):
    """The account has no personal address or phone to send a sign-in code to."""


class SmsUnavailable(PliError):
    """A phone for sign-in codes, on a server that has no SMS gateway."""


@dataclass(frozen=True, slots=True)
class WebmailLimits:
    session_idle_seconds: int = 15 * 60
    session_max_seconds: int = 8 * 3600
    code_seconds: int = 10 * 60
    code_attempts: int = 5


@dataclass(frozen=True, slots=True)
class PendingLogin:
    ticket_hash: bytes
    address: Address
    credential_id: str
    code_hash: bytes
    attempts: int
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class WebSession:
    token_hash: bytes
    address: Address
    credential_id: str
    created_at: datetime
    expires_at: datetime
    """Absolute end; the idle end is ``last_seen_at`` + the idle limit."""
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Preferences:
    address: Address
    notify_email: str | None = None
    language: str = "fr"
    notify_phone: str | None = None
    """E.164; when set, sign-in codes go there by SMS rather than to ``notify_email``."""


class WebmailStore(Protocol):
    """Pending sign-ins, sessions and preferences (``mailbox_store`` implements it)."""

    async def add_pending(self, pending: PendingLogin) -> None: ...

    async def get_pending(self, ticket_hash: bytes) -> PendingLogin | None: ...

    async def count_attempt(self, ticket_hash: bytes) -> None: ...

    async def delete_pending(self, ticket_hash: bytes) -> None: ...

    async def add_session(self, session: WebSession) -> None: ...

    async def get_session(self, token_hash: bytes) -> WebSession | None: ...

    async def touch_session(self, token_hash: bytes, at: datetime) -> None: ...

    async def delete_session(self, token_hash: bytes) -> None: ...

    async def delete_sessions(self, address: Address) -> None: ...

    async def get_preferences(self, address: Address) -> Preferences | None: ...

    async def set_preferences(self, preferences: Preferences) -> None: ...


@dataclass(frozen=True, slots=True)
class LoginTicket:
    ticket: str
    destination_hint: str
    """The personal address with most of it hidden (``c•••@example.org``)."""
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OpenSession:
    token: str
    """Goes into the cookie only; the server keeps its hash."""
    csrf: str
    session: WebSession


def _hint(destination: str) -> str:
    if destination.startswith("+"):
        return f"{destination[:3]}•••••{destination[-2:]}"
    local, _, domain = destination.partition("@")
    return f"{local[:1]}•••@{domain}"


class WebmailService:
    def __init__(
        self,
        *,
        store: MailboxStore,
        blobs: BlobStore,
        sessions: WebmailStore,
        accounts: AccountService,
        intake: SealedIntake,
        codes: CodeSender,
        notifier: Notifier,
        clock: Clock,
        instance_secret: bytes,
        operator_key: bytes | None = None,
        log_key: bytes | None = None,
        log_id: str | None = None,
        limits: WebmailLimits | None = None,
        sms_codes: bool = False,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._sessions = sessions
        self._accounts = accounts
        self._intake = intake
        self._codes = codes
        self._notifier = notifier
        self._clock = clock
        self._secret = instance_secret
        self.operator_key = operator_key
        """The operator's Ed25519 public key: the signer of ``gateway`` envelopes."""
        self.log_key = log_key
        self.log_id = log_id
        """The key transparency log's Ed25519 key and name: the browser checks tree heads."""
        self.limits = limits or WebmailLimits()
        self.sms_codes = sms_codes
        """Whether ``codes`` can send by SMS: a phone can be registered only then."""

    # -- hashing ----------------------------------------------------------------------------

    def _hash(self, purpose: bytes, value: bytes) -> bytes:
        return hmac.new(self._secret, purpose + b"\x00" + value, hashlib.blake2b).digest()[:32]

    def token_hash(self, token: str) -> bytes:
        return self._hash(b"webmail-session", token.encode())

    def csrf_for(self, token_hash: bytes) -> str:
        return self._hash(b"webmail-csrf", token_hash).hex()

    def check_csrf(self, token_hash: bytes, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(self.csrf_for(token_hash), presented)

    # -- sign-in ----------------------------------------------------------------------------

    async def login_parameters(
        self, address: Address, kind: CredentialKind
    ) -> tuple[bytes, crypto.Argon2Limits]:
        return await self._accounts.login_parameters(address, kind)

    async def start_login(
        self, address: Address, auth_key: bytes, kind: CredentialKind
    ) -> LoginTicket:
        """Check the auth key, send a one-time code; :class:`AuthenticationFailed` else."""
        if kind is CredentialKind.APP_PASSWORD:
            raise AuthenticationFailed()  # app passwords are for mail clients only
        try:
            key = crypto.AuthKey(auth_key)
        except crypto.KeyFormatError:
            raise AuthenticationFailed() from None
        _account, credential = await self._accounts.check_auth_key(address, key, kind)
        preferences = await self.preferences(address)
        # A phone registered while the server had an SMS gateway must not lock the patient
        # out once it has none: the e-mail address then takes over.
        if preferences.notify_phone and self.sms_codes:
            channel, destination = Channel.SMS, preferences.notify_phone
        elif preferences.notify_email:
            channel, destination = Channel.EMAIL, preferences.notify_email
        else:
            raise NoCodeAddress(
                "no personal e-mail address or phone is registered for sign-in codes; "
                "ask your care provider's Pli contact to register one"
            )
        ticket = secrets.token_urlsafe(32)
        code = f"{secrets.randbelow(1_000_000):06d}"
        ticket_hash = self._hash(b"webmail-ticket", ticket.encode())
        now = self._clock.now()
        expires = now + timedelta(seconds=self.limits.code_seconds)
        await self._sessions.add_pending(
            PendingLogin(
                ticket_hash=ticket_hash,
                address=address,
                credential_id=credential.id,
                code_hash=self._hash(b"webmail-code", ticket_hash + code.encode()),
                attempts=0,
                created_at=now,
                expires_at=expires,
            )
        )
        lang = preferences.language if preferences.language in LANGUAGES else "fr"
        await self._codes.send_code(
            SignInCode(destination, code, "en" if lang == "en" else "fr", channel)
        )
        return LoginTicket(ticket, _hint(destination), expires)

    async def finish_login(self, ticket: str, code: str) -> OpenSession:
        ticket_hash = self._hash(b"webmail-ticket", ticket.encode())
        pending = await self._sessions.get_pending(ticket_hash)
        now = self._clock.now()
        if pending is None or pending.expires_at <= now:
            raise CodeRefused(0)
        if pending.attempts >= self.limits.code_attempts:
            await self._sessions.delete_pending(ticket_hash)
            raise CodeRefused(0)
        expected = self._hash(b"webmail-code", ticket_hash + code.strip().encode())
        if not hmac.compare_digest(expected, pending.code_hash):
            await self._sessions.count_attempt(ticket_hash)
            remaining = self.limits.code_attempts - pending.attempts - 1
            if remaining <= 0:
                await self._sessions.delete_pending(ticket_hash)
            raise CodeRefused(max(remaining, 0))
        await self._sessions.delete_pending(ticket_hash)
        token = secrets.token_urlsafe(32)
        token_hash = self.token_hash(token)
        session = WebSession(
            token_hash=token_hash,
            address=pending.address,
            credential_id=pending.credential_id,
            created_at=now,
            expires_at=now + timedelta(seconds=self.limits.session_max_seconds),
            last_seen_at=now,
        )
        await self._sessions.add_session(session)
        return OpenSession(token, self.csrf_for(token_hash), session)

    async def session(self, token: str) -> WebSession | None:
        """The live session of a cookie token (sliding its idle end), or None."""
        token_hash = self.token_hash(token)
        session = await self._sessions.get_session(token_hash)
        if session is None:
            return None
        now = self._clock.now()
        idle_end = session.last_seen_at + timedelta(seconds=self.limits.session_idle_seconds)
        if session.expires_at <= now or idle_end <= now:
            await self._sessions.delete_session(token_hash)
            return None
        if now - session.last_seen_at > timedelta(seconds=30):
            await self._sessions.touch_session(token_hash, now)
            session = replace(session, last_seen_at=now)
        return session

    async def logout(self, session: WebSession) -> None:
        await self._sessions.delete_session(session.token_hash)

    async def credential(self, session: WebSession) -> Credential:
        """The credential the session signed in with: its sealed bundle opens in the browser."""
        for credential in await self._store.list_credentials(session.address):
            if credential.id == session.credential_id:
                return credential
        # The passphrase was changed elsewhere: this session's bundle is gone with it.
        await self._sessions.delete_session(session.token_hash)
        raise AuthenticationFailed()

    async def account(self, address: Address) -> AccountRecord:
        account = await self._store.get_account(address)
        if account is None:
            raise AuthenticationFailed()
        return account

    # -- preferences ------------------------------------------------------------------------

    async def preferences(self, address: Address) -> Preferences:
        return await self._sessions.get_preferences(address) or Preferences(address)

    async def set_preferences(
        self,
        address: Address,
        *,
        notify_email: str | None,
        language: str,
        notify_phone: str | None = None,
    ) -> Preferences:
        if language not in LANGUAGES:
            raise InvalidMessage(f"language must be one of {', '.join(LANGUAGES)}", "language")
        if notify_email is not None:
            notify_email = str(Address.parse(notify_email))
        if notify_phone is not None:
            check_phone(notify_phone)
            if not self.sms_codes:
                raise SmsUnavailable("this server sends no SMS: register an e-mail address")
        preferences = Preferences(address, notify_email, language, notify_phone)
        await self._sessions.set_preferences(preferences)
        return preferences

    # -- credentials ------------------------------------------------------------------------

    async def change_passphrase(
        self,
        session: WebSession,
        *,
        current_auth_key: bytes | None,
        salt: bytes,
        limits: crypto.Argon2Limits,
        auth_key: bytes,
        sealed_bundle: bytes,
    ) -> None:
        """Replace the passphrase credential with one the browser sealed.

        Signed in with the passphrase, the current auth key is asked again (a session left
        open on a shared computer cannot take the account over). Signed in with the
        recovery key, that sign-in was the proof. Every other session ends.
        """
        credential = await self._client_credential(
            session,
            current_auth_key,
            CredentialKind.PASSPHRASE,
            salt,
            limits,
            auth_key,
            sealed_bundle,
        )
        await self._accounts.replace_passphrase_credential(session.address, credential)
        await self._sessions.delete_sessions(session.address)
        now = self._clock.now()
        await self._sessions.add_session(
            replace(session, credential_id=credential.id, last_seen_at=now)
        )

    async def replace_recovery_key(
        self,
        session: WebSession,
        *,
        current_auth_key: bytes | None,
        salt: bytes,
        limits: crypto.Argon2Limits,
        auth_key: bytes,
        sealed_bundle: bytes,
    ) -> None:
        """Replace the recovery credential with one the browser sealed for a new recovery
        key (which the browser shows once). The same proof as a passphrase change."""
        credential = await self._client_credential(
            session,
            current_auth_key,
            CredentialKind.RECOVERY,
            salt,
            limits,
            auth_key,
            sealed_bundle,
        )
        old_ids = [
            c.id
            for c in await self._store.list_credentials(session.address)
            if c.kind is CredentialKind.RECOVERY
        ]
        await self._store.replace_credentials(session.address, old_ids, [credential])

    async def _client_credential(
        self,
        session: WebSession,
        current_auth_key: bytes | None,
        kind: CredentialKind,
        salt: bytes,
        limits: crypto.Argon2Limits,
        auth_key: bytes,
        sealed_bundle: bytes,
    ) -> Credential:
        signed_in_with = await self.credential(session)
        if signed_in_with.kind is CredentialKind.PASSPHRASE:
            try:
                proof = crypto.AuthKey(current_auth_key or b"")
            except crypto.KeyFormatError:
                raise AuthenticationFailed() from None
            if not crypto.check_auth_key(proof, signed_in_with.auth_hash):
                raise AuthenticationFailed()
        floor = self._accounts.passphrase_limits
        if limits.opslimit < floor.opslimit or limits.memlimit < floor.memlimit:
            raise InvalidMessage("the Argon2id limits are below the server's floor", "kdf-limits")
        if len(salt) != 16 or len(sealed_bundle) != 105:
            raise InvalidMessage("a salt is 16 bytes and a key bundle 105", "bundle")
        try:
            key = crypto.AuthKey(auth_key)
        except crypto.KeyFormatError:
            raise InvalidMessage("an auth key is 32 bytes", "auth-key") from None
        return Credential(
            id=uuid.uuid4().hex,
            kind=kind,
            label="recovery key" if kind is CredentialKind.RECOVERY else "passphrase",
            salt=salt,
            opslimit=limits.opslimit,
            memlimit=limits.memlimit,
            auth_hash=crypto.auth_key_hash(key),
            sealed_bundle=sealed_bundle,
            created_at=self._clock.now(),
        )

    async def app_password_parameters(self, address: Address) -> tuple[bytes, crypto.Argon2Limits]:
        account = await self.account(address)
        return self._accounts.app_password_salt(account), self._accounts.app_password_limits

    async def add_app_password(
        self, address: Address, label: str, auth_key: bytes, sealed_bundle: bytes
    ) -> Credential:
        """Store an app password's credential sealed in the browser (which shows it once)."""
        label = label.strip()
        if not 1 <= len(label) <= 64 or not label.isprintable():
            raise InvalidMessage("a label is 1 to 64 printable characters", "label")
        if len(sealed_bundle) != 105:
            raise InvalidMessage("a key bundle is 105 bytes", "bundle")
        try:
            key = crypto.AuthKey(auth_key)
        except crypto.KeyFormatError:
            raise InvalidMessage("an auth key is 32 bytes", "auth-key") from None
        salt, limits = await self.app_password_parameters(address)
        credential = Credential(
            id=uuid.uuid4().hex,
            kind=CredentialKind.APP_PASSWORD,
            label=label,
            salt=salt,
            opslimit=limits.opslimit,
            memlimit=limits.memlimit,
            auth_hash=crypto.auth_key_hash(key),
            sealed_bundle=sealed_bundle,
            created_at=self._clock.now(),
        )
        await self._store.add_credential(address, credential)
        return credential

    async def list_app_passwords(self, address: Address) -> list[Credential]:
        return await self._accounts.list_app_passwords(address)

    async def revoke_app_password(self, address: Address, credential_id: str) -> None:
        await self._accounts.revoke_app_password(address, credential_id)

    # -- mailbox ----------------------------------------------------------------------------

    async def folders(self, address: Address) -> list[FolderRecord]:
        return await self._store.list_folders(address)

    async def messages(self, address: Address, folder: str) -> list[MessageRecord]:
        return await self._store.list_messages(address, folder)

    async def message(self, address: Address, envelope_id: str) -> tuple[MessageRecord, bytes]:
        """The account's copy of an envelope and its key slot; NotFound for anyone else's."""
        stored = await self._store.find_message(address, envelope_id)
        return stored.record, stored.slot

    def open_envelope(self, record: MessageRecord) -> BinaryIO:
        """The stored envelope bytes (blocking reads: stream them from a worker thread)."""
        return self._blobs.open(record.blob)

    async def set_seen(self, address: Address, envelope_id: str, seen: bool) -> MessageRecord:
        record, _slot = await self.message(address, envelope_id)
        flags = set(record.flags)
        if seen:
            flags.add("\\Seen")
        else:
            flags.discard("\\Seen")
        updated = await self._store.set_flags(address, record.folder, record.uid, frozenset(flags))
        self._notifier.publish(address, f"flags {record.folder} {record.uid}")
        return updated

    async def send(
        self,
        sender: Address,
        envelope: BinaryIO,
        slots: Mapping[Address, bytes],
        sent_slot: bytes | None,
    ) -> Submitted:
        return await self._intake.accept(sender, envelope, slots, sent_slot=sent_slot)

    def events(self, address: Address) -> AsyncIterator[str]:
        return self._notifier.subscribe(address)
