"""The MX: peer operators of the trust space deliver to our mailboxes.

RFC 5321 (SMTP), RFC 3207 (STARTTLS, required before ``MAIL``), RFC 5280 (the peer's
client certificate, see :mod:`gateway_smtp.peers`), DOMAIN.md "Trust space and transport".

One transaction, step by step:

- ``MAIL``: TLS is on (``530 5.7.0`` otherwise, from aiosmtpd's ``require_starttls``); the
  peer presented a certificate chaining to the anchor (``530 5.7.0``); the sender's domain —
  the certificate's name for a null sender (bounces, receipts) — is on the allow-list
  (``550 5.7.1``), and is not one of ours (``550 5.7.1``: local users submit, peers never
  speak for them).
- ``RCPT``: a local mailbox (``550 5.7.1`` for any other domain: an MX never relays), known
  (``550 5.1.1``), open (``550 5.2.1``), at most ``max_recipients`` (``452 4.5.3``).
- ``DATA``: framing and MIME hygiene (:mod:`gateway_smtp.hygiene`), then the delivery
  service types the message, seals it for each recipient with ``gateway`` provenance naming
  the peer's verified identity, commits it — and only then do we answer ``250``. Storage
  that cannot be reached answers ``451 4.3.0``, with nothing stored.
"""

from __future__ import annotations

import logging

import crypto
from gateway_smtp.allowlist import AllowListSource
from gateway_smtp.common import (
    NULL_SENDER,
    advertise,
    answer_integration_mdn,
    error_reply,
    handle_exception,
    parse_path,
    prepend_headers,
    received_field,
    refuse,
)
from gateway_smtp.hygiene import check_message
from gateway_smtp.peers import peer_identity
from gateway_smtp.protocol import PliEnvelope, PliSession, PliSMTP
from gateway_smtp.replies import R, Reply
from messaging import DeliveryService
from messaging.errors import PliError
from messaging.gateways import GatewaySupport
from messaging.outbound import is_local_domain
from messaging.ports import Clock
from messaging.types import Address

__all__ = ["MxHandler"]

log = logging.getLogger("gateway_smtp.mx")


class MxHandler:
    """aiosmtpd handler of the MX front (its ``handle_*`` hooks)."""

    front = "mx"

    def __init__(
        self,
        *,
        delivery: DeliveryService,
        support: GatewaySupport,
        allowlist: AllowListSource,
        clock: Clock,
        local_domain: str,
        hostname: str,
        answer_mdn: bool = True,
    ) -> None:
        self._delivery = delivery
        self._support = support
        self._allowlist = allowlist
        self._clock = clock
        self._local_domain = local_domain
        self._hostname = hostname
        self._answer_mdn = answer_mdn

    async def handle_exception(self, error: Exception) -> str:
        return await handle_exception(error)

    async def handle_EHLO(
        self,
        server: PliSMTP,  # noqa: ARG002 - aiosmtpd's hook signature
        session: PliSession,
        envelope: PliEnvelope,  # noqa: ARG002
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return advertise(responses, auth=False)

    async def _refuse(
        self, server: PliSMTP, reply: Reply, *, subject: str, stage: str, actor: str = ""
    ) -> str:
        identity = server.pli_session().peer_identity
        return await refuse(
            self._support,
            reply,
            actor=actor or (identity.name if identity else server.peer_host),
            subject=subject,
            stage=stage,
            front=self.front,
            session_id=server.session_id,
        )

    async def handle_MAIL(
        self,
        server: PliSMTP,
        session: PliSession,
        envelope: PliEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        identity = peer_identity(server.ssl_object())
        if identity is None:
            return await self._refuse(server, R.CERT_REQUIRED, subject=address, stage="mail")
        session.peer_identity = identity
        if address == NULL_SENDER:
            domain = identity.name
        else:
            parsed = parse_path(address, smtputf8="SMTPUTF8" in mail_options)
            if isinstance(parsed, Reply):
                return await self._refuse(server, parsed, subject=address, stage="mail")
            domain = parsed.domain
        if not self._allowlist.allows(domain):
            return await self._refuse(server, R.NOT_ALLOWED_DOMAIN, subject=address, stage="mail")
        if address != NULL_SENDER and is_local_domain(domain, self._local_domain):
            # Our own users submit through 587/465 with their keys; a peer claiming one of our
            # addresses would let it speak as a local patient or doctor to the patient rules.
            return await self._refuse(
                server, R.LOCAL_SENDER_FROM_PEER, subject=address, stage="mail"
            )
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return str(R.SENDER_OK)

    async def handle_RCPT(
        self,
        server: PliSMTP,
        session: PliSession,  # noqa: ARG002 - aiosmtpd's hook signature
        envelope: PliEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        recipients = envelope.recipients
        if len(recipients) >= server.limits.max_recipients:
            return await self._refuse(server, R.TOO_MANY_RECIPIENTS, subject=address, stage="rcpt")
        parsed = parse_path(address, smtputf8=envelope.smtp_utf8)
        if isinstance(parsed, Reply):
            return await self._refuse(server, parsed, subject=address, stage="rcpt")
        if not is_local_domain(parsed.domain, self._local_domain):
            return await self._refuse(server, R.NO_RELAY_HERE, subject=address, stage="rcpt")
        if parsed in recipients:
            return str(R.DUPLICATE_RECIPIENT)
        try:
            await self._support.check_recipient(parsed)
        except PliError as error:
            return await self._refuse(server, error_reply(error), subject=str(parsed), stage="rcpt")
        recipients.append(parsed)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return str(R.RECIPIENT_OK)

    async def tls_refused(self, server: PliSMTP, reason: str) -> None:
        """Trace a peer whose certificate the TLS handshake refused (no SMTP reply exists)."""
        await self._support.trace(
            server.peer_host,
            f"smtp-{self.front}-refuse",
            server.peer_host,
            {"stage": "tls", "reason": reason[:200], "session": server.session_id},
        )

    async def data_refused(
        self, server: PliSMTP, session: PliSession, envelope: PliEnvelope, refusal: str
    ) -> None:
        """Trace a refusal decided while DATA was read (size, line, bare CR/LF)."""
        reason = _reason_of(refusal)
        identity = session.peer_identity
        await self._support.trace(
            identity.name if identity else server.peer_host,
            f"smtp-{self.front}-refuse",
            str(envelope.mail_from or ""),
            {"stage": "data", "reply": refusal[:9], "reason": reason, "session": server.session_id},
        )

    async def handle_DATA(self, server: PliSMTP, session: PliSession, envelope: PliEnvelope) -> str:
        data = envelope.data
        sender_text = str(envelope.mail_from)
        refused = check_message(data, smtputf8=envelope.smtp_utf8)
        if refused is not None:
            return await self._refuse(server, refused, subject=sender_text, stage="data")
        identity = session.peer_identity
        if identity is None:  # MAIL refused the session without one
            return str(R.CERT_REQUIRED)
        recipients = list(envelope.recipients)
        if sender_text == NULL_SENDER:
            sender = _daemon_of(identity.name)
            return_path = "<>"
        else:
            sender = Address.parse(sender_text)
            return_path = f"<{sender}>"
        now = self._clock.now()
        message = prepend_headers(
            data,
            [
                ("Return-Path", return_path),
                (
                    "Received",
                    received_field(
                        helo=str(session.host_name or ""),
                        peer_host=server.peer_host,
                        hostname=self._hostname,
                        protocol="ESMTPS",
                        session_id=server.session_id,
                        when=now,
                    ),
                ),
            ],
        )
        try:
            submitted = await self._delivery.receive(
                sender,
                recipients,
                message,
                gateway=crypto.GatewayInfo(peer=identity.name, tls=identity.tls),
            )
        except Exception as error:  # every failure becomes a reply
            return await self._refuse(server, error_reply(error), subject=sender_text, stage="data")
        log.info(
            "smtp accepted",
            extra={
                "front": self.front,
                "peer": identity.name,
                "envelope": submitted.envelope_id,
                "kind": submitted.kind.value,
                "recipients": len(recipients),
            },
        )
        if self._answer_mdn:
            await answer_integration_mdn(
                self._delivery,
                self._support,
                submitted=submitted,
                recipients=recipients,
                message=message,
                now=now,
            )
        if not submitted.envelope_id:
            # Every recipient already had this Message-ID from a peer that sent it twice
            # (killed between our 250 and its bookkeeping): accepted, stored once.
            return "250 2.0.0 OK already delivered"
        return f"250 2.0.0 OK queued as {submitted.envelope_id}"


def _daemon_of(name: str) -> Address:
    try:
        return Address.parse(f"mailer-daemon@{name}")
    except PliError:
        return Address("mailer-daemon", "peer.invalid")


def _reason_of(reply: str) -> str:
    for known in (R.BARE_NEWLINE, R.LINE_TOO_LONG, R.TOO_LARGE, R.NUL_BYTE):
        if reply == str(known):
            return known.reason
    return "data"
