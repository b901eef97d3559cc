"""Webhooks: events for API clients, signed, delivered by a background worker with retries.

Events (``data`` carries metadata only: ids, addresses, kinds, statuses, never content):

- ``message.delivered``: a message the client sent is committed in a recipient's mailbox
  (one event per recipient, emitted right after the commit);
- ``message.read``: a recipient opened it (its copy got ``\\Seen``; the worker polls the
  unread sends every ``worker_poll_seconds``);
- ``message.received``: a message arrived in the client's own inbox;
- ``receipt.received``: that message is a receipt (DSN, MDN, national integration MDN).

Signature (Ed25519, RFC 8032). Each request carries
``Pli-Webhook-Id``, ``Pli-Webhook-Timestamp`` (Unix seconds) and
``Pli-Webhook-Signature: ed25519=<base64url signature>`` over
``b"pli-webhook-v1\\x00" + timestamp + b"." + body``. The public key is published at
``GET /v1/webhooks/signing-key``; a receiver checks the signature and refuses a timestamp
more than five minutes away from its clock (replay), and may remember ids it has seen.
:func:`web.client.verify_webhook` does all of it. A key pair rather than a shared HMAC
secret: nothing a receiver stores lets anyone forge events, and the server stores no
per-webhook secret.

Delivery: a 2xx answer within ``webhook_timeout_seconds`` is success; anything else is
retried after ``webhook_first_backoff_seconds`` doubled at each attempt (with jitter), up to
``webhook_max_attempts``, then the delivery is ``failed``. Every attempt is in the delivery
log (``GET /v1/webhooks/deliveries``). Deliveries are rows of the database, so a restart
resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

import httpx

import crypto
from crypto.encoding import b64url_encode
from messaging.api_clients import SentRecipient, WebhookDelivery
from messaging.errors import NotFound
from messaging.types import Address, MessageKind
from web.api.context import ApiServices

__all__ = [
    "EVENTS",
    "SIGNATURE_CONTEXT",
    "signed_message",
    "sign_payload",
    "enqueue_event",
    "delivered_events",
    "WebhookWorker",
]

log = logging.getLogger("pli.web.webhooks")

EVENTS = frozenset({"message.delivered", "message.read", "message.received", "receipt.received"})
SIGNATURE_CONTEXT = b"pli-webhook-v1\x00"


def signed_message(timestamp: str, body: bytes) -> bytes:
    return SIGNATURE_CONTEXT + timestamp.encode("ascii") + b"." + body


def sign_payload(key: crypto.SigningKey, timestamp: str, body: bytes) -> str:
    return "ed25519=" + b64url_encode(key.sign(signed_message(timestamp, body)))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def enqueue_event(
    services: ApiServices, client_id: str, event: str, data: dict[str, object]
) -> int:
    """Queue ``event`` for every webhook of ``client_id`` that subscribed to it."""
    deliveries = await event_deliveries(services, client_id, event, data)
    await services.state.enqueue_deliveries(deliveries)
    return len(deliveries)


async def event_deliveries(
    services: ApiServices, client_id: str, event: str, data: dict[str, object]
) -> list[WebhookDelivery]:
    """The deliveries of ``event`` to the webhooks of ``client_id`` (not yet stored)."""
    hooks = [h for h in await services.state.list_webhooks(client_id) if event in h.events]
    if not hooks:
        return []
    now = services.clock.now()
    deliveries = []
    for hook in hooks:
        delivery_id = f"evt_{secrets.token_hex(12)}"
        body = {"id": delivery_id, "event": event, "created": _iso(now), "data": data}
        deliveries.append(
            WebhookDelivery(
                id=delivery_id,
                webhook_id=hook.id,
                client_id=client_id,
                event=event,
                payload=json.dumps(body, separators=(",", ":"), sort_keys=True),
                created_at=now,
                next_attempt_at=now,
            )
        )
    return deliveries


async def delivered_events(
    services: ApiServices, sends: Iterable[SentRecipient]
) -> list[WebhookDelivery]:
    """The ``message.delivered`` deliveries of ``sends`` (to store with them)."""
    found: list[WebhookDelivery] = []
    for send in sends:
        found += await event_deliveries(
            services,
            send.client_id,
            "message.delivered",
            {
                "envelope_id": send.envelope_id,
                "recipient": str(send.recipient),
                "kind": send.kind,
                "provenance": send.provenance,
                "status": "delivered",
                "at": _iso(send.delivered_at),
            },
        )
    return found


class WebhookWorker:
    """Polls for read messages and incoming ones, and delivers due webhook events."""

    def __init__(self, services: ApiServices, *, client: httpx.AsyncClient | None = None) -> None:
        self._services = services
        self._client = client
        self._subscriptions: dict[Address, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; errors of one round are logged, never fatal."""
        settings = self._services.settings
        own = self._client is None
        client = self._client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False
        )
        try:
            while not stop.is_set():
                try:
                    await self.run_once(client)
                except Exception:  # one bad round must not stop deliveries for good
                    log.exception("webhook round failed")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    waiter = asyncio.ensure_future(self._wake.wait())
                    stopper = asyncio.ensure_future(stop.wait())
                    try:
                        await asyncio.wait(
                            {waiter, stopper},
                            timeout=settings.worker_poll_seconds,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    finally:
                        waiter.cancel()
                        stopper.cancel()
        finally:
            for task in self._subscriptions.values():
                task.cancel()
            self._subscriptions.clear()
            if own:
                await client.aclose()

    async def run_once(self, client: httpx.AsyncClient) -> None:
        await self._follow_inboxes()
        await self._check_reads()
        await self._deliver_due(client)

    # -- sources of events ------------------------------------------------------------------

    async def _follow_inboxes(self) -> None:
        state = self._services.state
        hooks = await state.list_webhooks()
        wanted: dict[Address, str] = {}
        clients = {}
        for hook in hooks:
            if hook.events & {"message.received", "receipt.received"}:
                if hook.client_id not in clients:
                    clients[hook.client_id] = await state.get_client(hook.client_id)
                found = clients[hook.client_id]
                if found is not None and found.revoked_at is None:
                    wanted[found.address] = found.client_id
        for address, task in list(self._subscriptions.items()):
            if address not in wanted or task.done():
                task.cancel()
                del self._subscriptions[address]
        for address, client_id in wanted.items():
            if address not in self._subscriptions:
                self._subscriptions[address] = asyncio.create_task(self._follow(address, client_id))

    async def _follow(self, address: Address, client_id: str) -> None:
        async for event in self._services.notifier.subscribe(address):
            parts = event.split()
            if len(parts) != 3 or parts[0] != "exists" or not parts[2].isdigit():
                continue
            folder, uid = parts[1], int(parts[2])
            if folder.upper() != "INBOX":
                continue
            try:
                stored = await self._services.store.get_message(address, folder, uid)
            except NotFound:
                continue
            record = stored.record
            data: dict[str, object] = {
                "envelope_id": record.envelope_id,
                "folder": folder,
                "uid": uid,
                "sender": str(record.sender),
                "kind": record.kind.value,
                "provenance": record.provenance.value,
            }
            try:
                await enqueue_event(self._services, client_id, "message.received", data)
                if record.kind is MessageKind.RECEIPT:
                    await enqueue_event(self._services, client_id, "receipt.received", data)
            except Exception:
                log.exception("could not queue an incoming-message event")
            self.wake()

    async def _check_reads(self) -> None:
        services = self._services
        for send in await services.state.seen_sends(500):
            now = services.clock.now()
            if await services.state.mark_read(send.envelope_id, send.recipient, now):
                await enqueue_event(
                    services,
                    send.client_id,
                    "message.read",
                    {
                        "envelope_id": send.envelope_id,
                        "recipient": str(send.recipient),
                        "kind": send.kind,
                        "provenance": send.provenance,
                        "status": "read",
                        "at": _iso(now),
                    },
                )

    # -- delivery ---------------------------------------------------------------------------

    async def _deliver_due(self, client: httpx.AsyncClient) -> None:
        services = self._services
        hooks = {h.id: h for h in await services.state.list_webhooks()}
        due = await services.state.due_deliveries(services.clock.now(), 100)
        for delivery in due:
            hook = hooks.get(delivery.webhook_id)
            if hook is None:  # deleted since: give up on its events
                await services.state.update_delivery(
                    replace(delivery, state="failed", last_error="webhook deleted")
                )
                continue
            await self._attempt(client, hook.url, delivery)

    async def _attempt(
        self, client: httpx.AsyncClient, url: str, delivery: WebhookDelivery
    ) -> None:
        services = self._services
        settings = services.settings
        body = delivery.payload.encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Pli-Webhooks/1",
            "Pli-Webhook-Id": delivery.id,
            "Pli-Webhook-Event": delivery.event,
            "Pli-Webhook-Timestamp": timestamp,
            "Pli-Webhook-Signature": sign_payload(services.webhook_key, timestamp, body),
        }
        status: int | None = None
        error = ""
        try:
            response = await client.post(url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        attempts = delivery.attempts + 1
        now = services.clock.now()
        if not error:
            updated = replace(
                delivery,
                attempts=attempts,
                state="delivered",
                last_status=status,
                last_error="",
                delivered_at=now,
            )
        elif attempts >= settings.webhook_max_attempts:
            updated = replace(
                delivery, attempts=attempts, state="failed", last_status=status, last_error=error
            )
        else:
            backoff = settings.webhook_first_backoff_seconds * 2 ** (attempts - 1)
            backoff *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
            updated = replace(
                delivery,
                attempts=attempts,
                last_status=status,
                last_error=error,
                next_attempt_at=now + timedelta(seconds=backoff),
            )
        await services.state.update_delivery(updated)
