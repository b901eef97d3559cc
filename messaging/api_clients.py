"""API clients of the application API: who they are, what they may do, what they sent.

An API client is software (a hospital information system, a laboratory, a pharmacy) that
acts for one local mailbox, normally an ``APP`` mailbox (``ORG`` and ``PER`` mailboxes may
have clients too, when the organisation lets software act for them). Its credentials are
OAuth 2.0 client credentials (RFC 6749 §4.4): a public ``client_id`` and a secret.

Decisions:

- **The client secret is an app password of the client's mailbox**, labelled
  ``api-client:<client_id>`` (:mod:`messaging.accounts`). So it is stored only as a hash
  (Argon2id auth hash), and it unlocks the mailbox's key bundle exactly as a mail client's
  app password does: a client that authenticates can open its own mailbox (read its inbox,
  its receipts) and sign the structured parts of prescriptions and certificates, and the
  server holds the private key only while a token issued for that secret is alive.
- **Rotation without downtime**: :meth:`ApiClientService.rotate` adds a new secret and keeps
  the previous one; at most :data:`LIVE_SECRETS` are live, the oldest is revoked when a
  third is made. The software switches to the new secret at leisure.
- **Scopes** (:class:`Scope`) bound what a client may do; they are chosen when the client is
  created and shown by ``pli api-client list``.

The state of the API (clients, idempotency keys, sent messages and their per-recipient
status, webhooks and their delivery log) lives behind the :class:`ApiState` port,
implemented over SQL in ``mailbox_store/api_state.py``. It holds no message content.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from messaging.accounts import AccountService, NewAppPassword, UnlockedAccount
from messaging.errors import AuthenticationFailed, MailboxClosed, NotFound, RuleViolation
from messaging.ports import Clock, MailboxStore
from messaging.types import Address, Credential, CredentialKind, MailboxKind, TraceEntry

__all__ = [
    "LIVE_SECRETS",
    "Scope",
    "ApiClient",
    "IdempotencyRecord",
    "SentRecipient",
    "Webhook",
    "WebhookDelivery",
    "ApiState",
    "ApiClientService",
    "NewClient",
    "AuthenticatedClient",
    "CLIENT_KINDS",
]

LIVE_SECRETS = 2
CLIENT_KINDS = frozenset({MailboxKind.APP, MailboxKind.ORG, MailboxKind.PER})
_LABEL_PREFIX = "api-client:"


class Scope(StrEnum):
    """What a client may do; a token carries the scopes it was granted."""

    SEND_NOTE = "send:note"
    SEND_DOCUMENT = "send:document"
    SEND_PRESCRIPTION = "send:prescription"
    SEND_CERTIFICATE = "send:certificate"
    SEND_APPOINTMENT = "send:appointment"
    SEND_MIME = "send:mime"
    SEND_SEALED = "send:sealed"
    READ_MAILBOX = "read:mailbox"
    WEBHOOKS = "webhooks"


@dataclass(frozen=True, slots=True)
class ApiClient:
    client_id: str
    address: Address
    name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None
    rate_per_minute: int | None = None
    """Requests per minute for this client; None: the API's default."""
    daily_quota: int | None = None
    """Messages per UTC day; None: unlimited."""


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """One ``Idempotency-Key`` of one client: the request's hash and, once done, the answer."""

    client_id: str
    key: str
    request_hash: str
    created_at: datetime
    status: int | None = None
    """None while the first request with this key is still running."""
    body: bytes = b""
    headers: str = ""


@dataclass(frozen=True, slots=True)
class SentRecipient:
    """The status of one recipient of one message sent through the API."""

    envelope_id: str
    client_id: str
    recipient: Address
    kind: str
    provenance: str
    status: str
    """``delivered`` (committed in the recipient's mailbox) or ``read``."""
    delivered_at: datetime
    read_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    client_id: str
    url: str
    events: frozenset[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event for one webhook, and the history of trying to deliver it."""

    id: str
    webhook_id: str
    client_id: str
    event: str
    payload: str
    """The JSON body, exactly as signed and sent (metadata only, never content)."""
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    state: str = "pending"
    """``pending``, ``delivered`` or ``failed`` (gave up after the last retry)."""
    last_status: int | None = None
    last_error: str = ""
    delivered_at: datetime | None = None


class ApiState(Protocol):
    """Storage of the application API's own state (see the module docstring)."""

    async def create_client(self, client: ApiClient) -> None: ...

    async def get_client(self, client_id: str) -> ApiClient | None: ...

    async def list_clients(self) -> list[ApiClient]: ...

    async def revoke_client(self, client_id: str, at: datetime) -> None: ...

    async def claim_idempotency(
        self, record: IdempotencyRecord, *, stale_before: datetime
    ) -> IdempotencyRecord | None:
        """Claim ``(client_id, key)`` for a new request; None when claimed.

        The existing record otherwise (done, or still running); a running claim older than
        ``stale_before`` (its request died) is taken over.
        """
        ...

    async def complete_idempotency(
        self,
        client_id: str,
        key: str,
        status: int,
        body: bytes,
        headers: str,
        sends: Sequence[SentRecipient] = (),
        events: Sequence[WebhookDelivery] = (),
    ) -> None:
        """Store the answer, and the sends and events it reports, in one transaction."""
        ...

    async def release_idempotency(self, client_id: str, key: str) -> None:
        """Forget a claim whose request failed before doing anything (it may be retried)."""
        ...

    async def record_sends(
        self, sends: Sequence[SentRecipient], events: Sequence[WebhookDelivery] = ()
    ) -> None:
        """Record the sends and queue their webhook events, in one transaction."""
        ...

    async def record_calls(self, entries: Sequence[TraceEntry]) -> None:
        """Write trace lines of API calls in one transaction (the store's trace)."""
        ...

    async def list_sends(self, client_id: str, envelope_id: str) -> list[SentRecipient]: ...

    async def unread_sends(self, limit: int) -> list[SentRecipient]:
        """Recipients not yet known to have read, oldest first."""
        ...

    async def mark_read(self, envelope_id: str, recipient: Address, at: datetime) -> bool:
        """True when this call changed the status (so the event is emitted once)."""
        ...

    async def seen_sends(self, limit: int) -> list[SentRecipient]:
        """Of the ``limit`` oldest sends not yet known as read, those whose recipient's copy
        (its first: INBOX before other folders, then lowest UID) is now ``\\Seen``."""
        ...

    async def count_sends_since(self, client_id: str, since: datetime) -> int:
        """Messages (envelopes) the client sent since ``since``."""
        ...

    async def create_webhook(self, webhook: Webhook) -> None: ...

    async def list_webhooks(self, client_id: str | None = None) -> list[Webhook]: ...

    async def delete_webhook(self, client_id: str, webhook_id: str) -> None:
        """Raises ``NotFound`` when the client has no such webhook."""
        ...

    async def enqueue_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None: ...

    async def due_deliveries(self, now: datetime, limit: int) -> list[WebhookDelivery]: ...

    async def update_delivery(self, delivery: WebhookDelivery) -> None: ...

    async def list_deliveries(self, client_id: str, limit: int) -> list[WebhookDelivery]:
        """Newest first."""
        ...


@dataclass(frozen=True, slots=True)
class NewClient:
    client: ApiClient
    secret: str
    """Shown once; never stored."""


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    client: ApiClient
    unlocked: UnlockedAccount


def _label(client_id: str) -> str:
    return f"{_LABEL_PREFIX}{client_id}"


class ApiClientService:
    """Create, authenticate, rotate and revoke API clients."""

    def __init__(
        self, *, state: ApiState, accounts: AccountService, store: MailboxStore, clock: Clock
    ) -> None:
        self._state = state
        self._accounts = accounts
        self._store = store
        self._clock = clock

    @property
    def state(self) -> ApiState:
        return self._state

    async def create(
        self,
        address: Address,
        passphrase: str,
        *,
        name: str,
        scopes: frozenset[str],
        rate_per_minute: int | None = None,
        daily_quota: int | None = None,
    ) -> NewClient:
        """A client acting for ``address``, whose owner proves it with the passphrase."""
        unknown = scopes - {s.value for s in Scope}
        if unknown:
            raise RuleViolation("unknown-scope", f"unknown scopes: {', '.join(sorted(unknown))}")
        unlocked = await self._accounts.unlock(address, passphrase)
        if unlocked.account.kind not in CLIENT_KINDS:
            raise RuleViolation(
                "not-a-client-mailbox",
                f"{address} is a {unlocked.account.kind.value} mailbox; API clients act for "
                "APP, ORG or PER mailboxes",
            )
        client = ApiClient(
            client_id=f"pli_{secrets.token_hex(10)}",
            address=unlocked.account.address,
            name=name,
            scopes=frozenset(scopes),
            created_at=self._clock.now(),
            rate_per_minute=rate_per_minute,
            daily_quota=daily_quota,
        )
        made = await self._accounts.create_app_password(unlocked, _label(client.client_id))
        await self._state.create_client(client)
        return NewClient(client, made.password)

    async def rotate(self, client_id: str, passphrase: str) -> NewClient:
        """A new secret; the previous one stays live, older ones are revoked."""
        client = await self._live(client_id)
        unlocked = await self._accounts.unlock(client.address, passphrase)
        made: NewAppPassword = await self._accounts.create_app_password(unlocked, _label(client_id))
        mine = [
            c
            for c in await self._accounts.list_app_passwords(client.address)
            if c.label == _label(client_id)
        ]
        mine.sort(key=lambda c: c.created_at)
        for old in mine[: max(0, len(mine) - LIVE_SECRETS)]:
            await self._accounts.revoke_app_password(client.address, old.id)
        return NewClient(client, made.password)

    async def revoke(self, client_id: str) -> ApiClient:
        """Revoke the client and every one of its secrets (tokens die at their expiry)."""
        client = await self._live(client_id)
        for credential in await self._accounts.list_app_passwords(client.address):
            if credential.label == _label(client_id):
                await self._accounts.revoke_app_password(client.address, credential.id)
        await self._state.revoke_client(client_id, self._clock.now())
        return client

    async def authenticate(self, client_id: str, secret: str) -> AuthenticatedClient:
        """The client and its unlocked mailbox; :class:`AuthenticationFailed` otherwise."""
        client = await self._state.get_client(client_id)
        # An unknown client still costs one Argon2id run (on a fixed, fake address): the
        # answer time does not say which client ids exist.
        address = client.address if client is not None else Address("unknown", "invalid.pli")
        try:
            unlocked = await self._accounts.unlock(
                address, secret, kind=CredentialKind.APP_PASSWORD
            )
        except MailboxClosed:
            raise AuthenticationFailed() from None
        if client is None or client.revoked_at is not None:
            raise AuthenticationFailed()
        labels = {c.id: c.label for c in await self._accounts.list_app_passwords(client.address)}
        if labels.get(unlocked.credential_id) != _label(client_id):
            # Another secret of the same mailbox (a mail client's app password, another API
            # client's secret): not this client's.
            raise AuthenticationFailed()
        return AuthenticatedClient(client, unlocked)

    async def credentials_of(self, client: ApiClient) -> list[Credential]:
        """The live secrets of ``client`` (their hashes and sealed key bundles)."""
        return [
            c
            for c in await self._accounts.list_app_passwords(client.address)
            if c.label == _label(client.client_id)
        ]

    async def list_clients(self) -> list[ApiClient]:
        return await self._state.list_clients()

    async def _live(self, client_id: str) -> ApiClient:
        client = await self._state.get_client(client_id)
        if client is None or client.revoked_at is not None:
            raise NotFound(f"no live API client {client_id}")
        return client
