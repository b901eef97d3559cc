"""The outbound relay: takes due messages from the queue and hands them to peer MXs.

RFC 5321 §4.5.4 (retry strategy: exponential back-off, a give-up time), RFC 3461 (DSN
parameters carried to the peer or honoured here), RFC 3464 (the reports), RFC 3207
(STARTTLS required, mutual TLS against the trust anchor: see :mod:`relay_client`).

A cycle: :meth:`OutboundQueue.claim` the due messages (their recipients leased, so a
relay killed mid-attempt retries them after the lease), open each one's sealed copy with
the queue key, try its recipients grouped by domain — at most ``concurrency_per_domain``
connections to a domain at once — then record each recipient's outcome:

- delivered (``2xx``), or refused for good (``5xx``, an unknown domain, a null MX);
- still queued (``4xx``, no connection, TLS refused) with the next attempt at
  ``base · 2^(attempts-1)`` capped at ``max``, times a random factor in ``1 ± jitter`` so
  that a peer coming back is not hit by every queue at the same second;
- failed for age, when still queued ``max_age`` after it was accepted (status 5.4.7).

When every recipient is final, a failure report goes to the sender (for recipients whose
``NOTIFY`` asks for it; ``NEVER`` silences it, the null reverse path too), and a
``relayed`` report for ``NOTIFY=SUCCESS`` when the peer did not offer DSN itself; then the
message and its sealed copy are deleted. A recipient still queued ``delay_notice`` after
acceptance gets one ``delayed`` report. Reports are delivered into the sender's mailbox
through :meth:`DeliveryService.receive`. Every outcome is in the trace, without content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import crypto
from gateway_smtp.relay_client import Envelope, Reply, send_once
from gateway_smtp.relay_dsn import report_bytes
from gateway_smtp.relay_routes import RouteError, Routes
from messaging.clock import SystemClock
from messaging.dsn import DsnAction, RecipientStatus
from messaging.errors import PliError
from messaging.outbound import (
    AttemptResult,
    OutboundQueue,
    QueuedMessage,
    QueuedRecipient,
    RecipientState,
    open_queued,
)
from messaging.ports import Clock
from messaging.service import DeliveryService
from messaging.types import Address, MessageKind, TraceEntry

__all__ = ["RelayPolicy", "RelayWorker"]

log = logging.getLogger("pli.relay")


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    helo: str
    """Our name in EHLO and in reports (``Reporting-MTA``)."""
    postmaster: Address
    """The sender of our reports."""
    concurrency_per_domain: int = 4
    batch: int = 32
    poll_seconds: float = 1.0
    lease_seconds: float = 600.0
    timeout_seconds: float = 60.0
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    retry_jitter: float = 0.2
    delay_notice_seconds: float = 4 * 3600.0
    max_age_seconds: float = 5 * 24 * 3600.0
    rng: random.Random = field(default_factory=random.Random, compare=False)


class RelayWorker:
    """Runs relay cycles until stopped; :meth:`run_once` is one cycle (tests, tools)."""

    def __init__(
        self,
        *,
        queue: OutboundQueue,
        queue_keys: crypto.MailboxKeys,
        routes: Routes,
        tls: ssl.SSLContext,
        delivery: DeliveryService,
        trace: Callable[[TraceEntry], Awaitable[None]],
        policy: RelayPolicy,
        clock: Clock | None = None,
    ) -> None:
        if tls.minimum_version < ssl.TLSVersion.TLSv1_2 or tls.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError("the relay's TLS context must verify peers and require TLS 1.2")
        self._queue = queue
        self._keys = queue_keys
        self._routes = routes
        self._tls = tls
        self._delivery = delivery
        self._trace = trace
        self._policy = policy
        self._clock = clock or SystemClock()
        self._domains: dict[str, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Start a cycle now (a message was just queued)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except Exception as error:  # noqa: BLE001 - the worker outlives any one cycle
                # The database away (Unavailable), a restart mid-cycle: the leases bring the
                # recipients back, so the next poll simply tries again.
                log.warning("relay cycle failed", extra={"error": type(error).__name__})
                busy = 0
            if busy:
                continue
            self._wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED),
                    self._policy.poll_seconds,
                )
            for waiter in waits:
                waiter.cancel()

    async def run_once(self) -> int:
        """Relay every due message once; the number of messages tried."""
        now = self._clock.now()
        lease = now + timedelta(seconds=self._policy.lease_seconds)
        claimed = await self._queue.claim(now, lease, self._policy.batch)
        await asyncio.gather(*(self._relay(queued, now) for queued in claimed))
        return len(claimed)

    # -- one message ----------------------------------------------------------------------

    async def _relay(self, queued: QueuedMessage, now: datetime) -> None:
        message = queued.message
        plaintext = await asyncio.to_thread(open_queued, message, self._keys)
        due = [r for r in queued.pending if r.next_attempt <= now]
        by_domain: dict[str, list[QueuedRecipient]] = {}
        for recipient in due:
            by_domain.setdefault(recipient.address.domain, []).append(recipient)
        replies: dict[Address, tuple[Reply, str, bool]] = {}
        outcomes = await asyncio.gather(
            *(self._to_domain(domain, rs, queued, plaintext) for domain, rs in by_domain.items())
        )
        results: list[AttemptResult] = []
        for answers, recorded in outcomes:
            replies.update(answers)
            results += recorded
        order = {r.address: i for i, r in enumerate(due)}
        results.sort(key=lambda result: order[result.address])
        for result in results:
            await self._trace(
                TraceEntry(
                    actor="relay",
                    action={
                        RecipientState.DELIVERED: "relay",
                        RecipientState.FAILED: "relay-failed",
                        RecipientState.QUEUED: "relay-deferred",
                    }[result.state],
                    subject=str(result.address),
                    at=result.at,
                    details={
                        "queue": message.queue_id,
                        "status": result.status,
                        "remote": result.remote_mta,
                    },
                )
            )
        after = await self._queue.get(message.queue_id)
        delayed = [r for r, res in zip(due, results, strict=True) if res.delay_reported]
        if delayed:
            await self._report(after, "delayed", [self._status(after, r.address) for r in delayed])
        if after.pending:
            return
        failed = [r for r in after.recipients if r.state is RecipientState.FAILED]
        wanted = [r for r in failed if r.recipient.wants("FAILURE")]
        relayed = [
            r
            for r in after.recipients
            if r.state is RecipientState.DELIVERED
            and r.recipient.wants("SUCCESS")
            and not replies.get(r.address, (None, "", True))[2]
        ]
        statuses = [self._status(after, r.address) for r in wanted + relayed]
        if statuses:
            await self._report(after, "failed" if wanted else "relayed", statuses, plaintext)
        await self._queue.remove(message.queue_id)

    async def _to_domain(
        self,
        domain: str,
        recipients: list[QueuedRecipient],
        queued: QueuedMessage,
        plaintext: bytes,
    ) -> tuple[dict[Address, tuple[Reply, str, bool]], list[AttemptResult]]:
        """Try ``recipients`` of one domain and record their outcome.

        The outcome is recorded before the domain's connection slot is given back: at most
        ``concurrency_per_domain`` messages per domain are ever handed over and not yet
        recorded, which bounds what a crash can make us send twice.
        """
        gate = self._domains.setdefault(
            domain, asyncio.Semaphore(self._policy.concurrency_per_domain)
        )
        async with gate:
            answers = await self._attempt(domain, recipients, queued, plaintext)
            results = [self._result(queued, r, *answers[r.address]) for r in recipients]
            await self._queue.record(queued.message.queue_id, results)
            return answers, results

    async def _attempt(
        self,
        domain: str,
        recipients: list[QueuedRecipient],
        queued: QueuedMessage,
        plaintext: bytes,
    ) -> dict[Address, tuple[Reply, str, bool]]:
        try:
            hops = await self._routes.hops(domain)
        except RouteError as error:
            reply = Reply.local(error.status, error.reason)
            return {r.address: (reply, "", False) for r in recipients}
        envelope = Envelope(
            mail_from="" if queued.message.mail_from is None else str(queued.message.mail_from),
            recipients=tuple(r.recipient for r in recipients),
            envid=queued.message.envid,
            ret=queued.message.ret,
        )
        answers: dict[Address, tuple[Reply, str, bool]] = {}
        for hop in hops:
            pending = tuple(
                r.recipient
                for r in recipients
                if r.address not in answers or not _final(answers[r.address][0])
            )
            if not pending:
                break
            replies, dsn = await asyncio.to_thread(
                send_once,
                hop,
                Envelope(envelope.mail_from, pending, envelope.envid, envelope.ret),
                plaintext,
                context=self._tls,
                helo=self._policy.helo,
                timeout=self._policy.timeout_seconds,
            )
            for recipient in pending:
                answers[recipient.address] = (replies[str(recipient.address)], hop.host, dsn)
            if all(_final(reply) for reply, _, _ in answers.values()):
                break
        return answers

    def _result(
        self, queued: QueuedMessage, recipient: QueuedRecipient, reply: Reply, mta: str, _dsn: bool
    ) -> AttemptResult:
        now = self._clock.now()
        if reply.delivered:
            state = RecipientState.DELIVERED
            return AttemptResult(recipient.address, state, reply.status, reply.diagnostic, now, mta)
        if reply.permanent or reply.status.startswith("5"):
            status = reply.status if reply.status.startswith("5") else "5.0.0"
            return AttemptResult(
                recipient.address, RecipientState.FAILED, status, reply.diagnostic, now, mta
            )
        age = (now - queued.message.created_at).total_seconds()
        if age >= self._policy.max_age_seconds:
            return AttemptResult(
                recipient.address,
                RecipientState.FAILED,
                "5.4.7",
                f"{reply.diagnostic} (gave up after {int(age)} s)"[:900],
                now,
                mta,
            )
        delay = min(
            self._policy.retry_max_seconds,
            self._policy.retry_base_seconds * 2 ** min(recipient.attempts, 30),
        )
        jitter = self._policy.retry_jitter
        delay *= self._policy.rng.uniform(1 - jitter, 1 + jitter)
        notice = (
            not recipient.delay_reported
            and age >= self._policy.delay_notice_seconds
            and recipient.recipient.wants("DELAY")
            and queued.message.mail_from is not None
        )
        return AttemptResult(
            recipient.address,
            RecipientState.QUEUED,
            reply.status if reply.status.startswith("4") else "4.0.0",
            reply.diagnostic,
            now,
            mta,
            next_attempt=now + timedelta(seconds=delay),
            delay_reported=notice,
        )

    def _status(self, queued: QueuedMessage, address: Address) -> RecipientStatus:
        state = next(r for r in queued.recipients if r.address == address)
        action = {
            RecipientState.FAILED: DsnAction.FAILED,
            RecipientState.QUEUED: DsnAction.DELAYED,
            RecipientState.DELIVERED: DsnAction.RELAYED,
        }[state.state]
        status = state.status
        if not status or status[0] != {"failed": "5", "delayed": "4"}.get(action.value, "2"):
            status = {"failed": "5.0.0", "delayed": "4.0.0"}.get(action.value, "2.0.0")
        orcpt = state.recipient.orcpt
        original = None
        if orcpt.lower().startswith("rfc822;"):
            with contextlib.suppress(PliError):
                original = Address.parse(orcpt.split(";", 1)[1])
        return RecipientStatus(
            final_recipient=address,
            action=action,
            status=status,
            diagnostic=state.diagnostic,
            original_recipient=original,
            remote_mta=state.remote_mta,
            last_attempt=state.next_attempt if action is DsnAction.FAILED else None,
        )

    async def _report(
        self,
        queued: QueuedMessage,
        event: str,
        statuses: list[RecipientStatus],
        plaintext: bytes | None = None,
    ) -> None:
        sender = queued.message.mail_from
        if sender is None or not statuses:
            return  # the null reverse path is never reported on (RFC 3461 §6.2)
        try:
            if await self._delivery.route(sender):
                await self._trace(_dropped(sender, queued, "the sender is not local"))
                return
            if plaintext is None:
                plaintext = await asyncio.to_thread(open_queued, queued.message, self._keys)
            raw = report_bytes(
                queued.message,
                sender,
                statuses,
                plaintext=plaintext,
                reporting_mta=self._policy.helo,
                postmaster=self._policy.postmaster,
                event=event,
                now=self._clock.now(),
            )
            await self._delivery.receive(
                self._policy.postmaster,
                [sender],
                raw,
                gateway=crypto.GatewayInfo(peer=self._policy.helo, tls=""),
                kind=MessageKind.RECEIPT,
            )
        except PliError as error:
            # A sender who closed their mailbox meanwhile: the report has nowhere to go.
            log.warning("report not delivered", extra={"queue": queued.message.queue_id})
            await self._trace(_dropped(sender, queued, str(error)[:200]))
            return
        await self._trace(
            TraceEntry(
                actor="relay",
                action=f"report-{event}",
                subject=str(sender),
                at=self._clock.now(),
                details={"queue": queued.message.queue_id},
            )
        )


def _final(reply: Reply) -> bool:
    return reply.delivered or reply.permanent or reply.status.startswith("5")


def _dropped(sender: Address, queued: QueuedMessage, why: str) -> TraceEntry:
    return TraceEntry(
        actor="relay",
        action="report-dropped",
        subject=str(sender),
        at=queued.message.created_at,
        details={"queue": queued.message.queue_id, "reason": why},
    )
