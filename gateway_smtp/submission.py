"""Message submission for mail clients: 587 with STARTTLS, 465 with implicit TLS.

RFC 6409 (message submission), RFC 8314 (implicit TLS for submission), RFC 3207
(STARTTLS), RFC 4954 (AUTH), RFC 4616 (PLAIN), the LOGIN mechanism of
draft-murchison-sasl-login, DOMAIN.md ("Message format": ``X-MSS-NIL``, the ``From:`` label).

- Nothing but EHLO, NOOP, STARTTLS and QUIT before TLS; AUTH before TLS is ``530 5.7.0``.
- AUTH PLAIN / LOGIN with an *app password*: one Argon2id run unlocks the account's key
  bundle, kept in the session to sign what it submits. Failures are answered after a delay
  that grows with each failure of the session, counted per peer, and end the session after
  ``max_auth_failures``.
- ``MAIL FROM`` and the ``From:`` header must be the authenticated mailbox (``553 5.7.1``,
  ``550 5.7.1``); there is no delegation yet, so "a mailbox it may send for" is itself.
- ``RCPT``: a local mailbox is checked as on the MX; a remote one must be in the trust space
  (``550 5.7.1``) and is queued by the delivery service's relay, in the same transaction as
  the local copies.
- ``DATA``: hygiene, then ``From:`` gets the mailbox's label (``Titre_Prénom_NOM_Entité``),
  ``X-MSS-NIL``, ``Message-ID`` and ``Date`` are added when missing, and the delivery service
  seals an ``e2e`` envelope signed with the sender's key and keeps the Sent copy.
"""

from __future__ import annotations

import asyncio
import binascii
import email.utils
import logging
from base64 import b64decode

from gateway_smtp.common import (
    advertise,
    answer_integration_mdn,
    error_reply,
    formatted_from,
    handle_exception,
    header_values,
    parse_path,
    prepend_headers,
    refuse,
    replace_header,
)
from gateway_smtp.hygiene import check_message
from gateway_smtp.limits import AuthFailures
from gateway_smtp.protocol import PliEnvelope, PliSession, PliSMTP
from gateway_smtp.replies import R, Reply
from messaging import AccountService, DeliveryService, UnlockedAccount
from messaging.errors import PliError, RuleViolation, Unavailable
from messaging.gateways import GatewaySupport
from messaging.mime import NIL_HEADER, PRODUCT_REFERENCE, new_message_id
from messaging.outbound import DsnRequest, is_local_domain
from messaging.patient_rules import Correspondent, PatientFacts, check_patient_message
from messaging.ports import Clock
from messaging.types import AccountRecord, Address, CredentialKind, MailboxKind

__all__ = ["SubmissionHandler"]

log = logging.getLogger("gateway_smtp.submission")

_TEMPORARY_AUTH = "454 4.7.0 Temporary authentication failure"
_MAX_CREDENTIALS = 1024


class SubmissionHandler:
    """aiosmtpd handler of the submission fronts (587 and 465)."""

    front = "submission"

    def __init__(
        self,
        *,
        delivery: DeliveryService,
        accounts: AccountService,
        support: GatewaySupport,
        clock: Clock,
        local_domain: str,
        failures: AuthFailures | None = None,
        answer_mdn: bool = True,
    ) -> None:
        self._delivery = delivery
        self._accounts = accounts
        self._support = support
        self._clock = clock
        self._local_domain = local_domain
        self.failures = failures or AuthFailures()
        self._answer_mdn = answer_mdn

    async def handle_exception(self, error: Exception) -> str:
        return await handle_exception(error)

    async def handle_EHLO(
        self,
        server: PliSMTP,
        session: PliSession,
        envelope: PliEnvelope,  # noqa: ARG002 - aiosmtpd's hook signature
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return advertise(responses, auth=True, dsn=server.dsn)

    # -- AUTH -------------------------------------------------------------------------------

    async def handle_AUTH(
        self,
        server: PliSMTP,
        session: PliSession,
        envelope: PliEnvelope,  # noqa: ARG002 - aiosmtpd's hook signature
        args: list[str],
    ) -> str | None:
        mechanism = args[0].upper()
        credentials = await self._credentials(server, mechanism, args[1:])
        if credentials is None:
            return None  # the exchange was aborted and already answered
        if isinstance(credentials, Reply):
            return await self._failed(server, credentials)
        address, password = credentials
        try:
            unlocked = await self._accounts.unlock(address, password, CredentialKind.APP_PASSWORD)
        except Unavailable:
            return _TEMPORARY_AUTH
        except PliError:
            return await self._failed(server, R.AUTH_FAILED, address=address)
        session.authenticated = True
        session.unlocked = unlocked
        log.info("smtp authenticated", extra={"front": self.front, "address": str(address)})
        return str(R.AUTH_OK)

    async def _credentials(
        self, server: PliSMTP, mechanism: str, initial: list[str]
    ) -> tuple[Address, str] | Reply | None:
        if mechanism == "PLAIN":
            blob = await _response(server, initial[0] if initial else None, "")
            if blob is None:
                return None
            if isinstance(blob, Reply):
                return blob
            parts = blob.split(b"\x00")
            if len(parts) != 3:
                return R.AUTH_FAILED
            authzid, login, password = parts
            if authzid and authzid != login:
                return R.AUTH_FAILED  # acting for another mailbox: no delegation
        else:  # LOGIN: aiosmtpd accepts only the mechanisms it implements
            login_blob = await _response(server, initial[0] if initial else None, "Username:")
            if login_blob is None or isinstance(login_blob, Reply):
                return login_blob
            password_blob = await _response(server, None, "Password:")
            if password_blob is None or isinstance(password_blob, Reply):
                return password_blob
            login, password = login_blob, password_blob
        try:
            return Address.parse(login.decode("utf-8")), password.decode("utf-8")
        except (UnicodeDecodeError, PliError):
            return R.AUTH_FAILED

    async def _failed(
        self, server: PliSMTP, reply: Reply, address: Address | None = None
    ) -> str | None:
        count = self.failures.record(server.peer_host)
        session = server.pli_session()
        session.auth_failures += 1
        log.warning(
            "smtp authentication failed",
            extra={"front": self.front, "peer": server.peer_host, "count": count},
        )
        await self._support.trace(
            server.peer_host,
            f"smtp-{self.front}-auth-failed",
            str(address or ""),
            {"session": server.session_id, "failures": str(session.auth_failures)},
        )
        # Slowed, more with each failure of the session: guessing costs time, not only CPU.
        await asyncio.sleep(server.limits.auth_failure_delay * session.auth_failures)
        if session.auth_failures >= server.limits.max_auth_failures:
            await server.push(str(reply))
            await server._close_with(str(R.AUTH_TOO_MANY))  # noqa: SLF001 - same package
            return None  # answered above
        return str(reply)

    # -- envelope ---------------------------------------------------------------------------

    def _unlocked(self, session: PliSession) -> UnlockedAccount:
        # aiosmtpd's auth_required answers 530 to MAIL, RCPT and DATA before AUTH.
        assert session.unlocked is not None  # noqa: S101
        return session.unlocked

    async def _refuse(self, server: PliSMTP, reply: Reply, *, subject: str, stage: str) -> str:
        unlocked = server.pli_session().unlocked
        actor = str(unlocked.account.address) if unlocked else server.peer_host
        return await refuse(
            self._support,
            reply,
            actor=actor,
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
        parsed = parse_path(address, smtputf8="SMTPUTF8" in mail_options)
        if isinstance(parsed, Reply):
            return await self._refuse(server, parsed, subject=address, stage="mail")
        if parsed != self._unlocked(session).account.address:
            return await self._refuse(server, R.SENDER_NOT_OWNED, subject=address, stage="mail")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return str(R.SENDER_OK)

    async def handle_RCPT(
        self,
        server: PliSMTP,
        session: PliSession,
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
        if parsed in recipients:
            return str(R.DUPLICATE_RECIPIENT)
        try:
            if is_local_domain(parsed.domain, self._local_domain):
                account = await self._support.check_recipient(parsed)
                refused = _patient_rule(self._unlocked(session).account, account, self._clock)
                if refused is not None:
                    return await self._refuse(server, refused, subject=str(parsed), stage="rcpt")
            elif not await self._delivery.route(parsed):
                # Not ours, and the service has no relay to take it: refused, never lost.
                return await self._refuse(server, R.RELAY_DENIED, subject=str(parsed), stage="rcpt")
        except RuleViolation as violation:
            reply = R.RELAY_DENIED if violation.code == "relay-denied" else error_reply(violation)
            return await self._refuse(server, reply, subject=str(parsed), stage="rcpt")
        except PliError as error:
            return await self._refuse(server, error_reply(error), subject=str(parsed), stage="rcpt")
        recipients.append(parsed)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return str(R.RECIPIENT_OK)

    async def data_refused(
        self, server: PliSMTP, session: PliSession, envelope: PliEnvelope, refusal: str
    ) -> None:
        unlocked = session.unlocked
        await self._support.trace(
            str(unlocked.account.address) if unlocked else server.peer_host,
            f"smtp-{self.front}-refuse",
            str(envelope.mail_from or ""),
            {"stage": "data", "reply": refusal[:9], "session": server.session_id},
        )

    async def handle_DATA(self, server: PliSMTP, session: PliSession, envelope: PliEnvelope) -> str:
        data = envelope.data
        unlocked = self._unlocked(session)
        account = unlocked.account
        refused = check_message(data, smtputf8=envelope.smtp_utf8)
        if refused is not None:
            return await self._refuse(server, refused, subject=str(account.address), stage="data")
        senders = [a for _n, a in email.utils.getaddresses(header_values(data, "From")) if a]
        try:
            owned = len(senders) == 1 and Address.parse(senders[0]) == account.address
        except PliError:
            owned = False
        if not owned:
            return await self._refuse(
                server, R.FROM_NOT_OWNED, subject=str(account.address), stage="data"
            )
        message = _complete(data, account.display_name, account.address, self._clock)
        recipients = list(envelope.recipients)
        try:
            submitted = await self._delivery.send(
                account.address,
                unlocked.keys,
                recipients,
                message,
                dsn=DsnRequest(
                    envid=envelope.envid,
                    ret=envelope.ret,
                    notify=dict(envelope.notify),
                    orcpt=dict(envelope.orcpt),
                ),
            )
        except Exception as error:  # every failure becomes a reply
            return await self._refuse(
                server, error_reply(error), subject=str(account.address), stage="data"
            )
        log.info(
            "smtp accepted",
            extra={
                "front": self.front,
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
                message=prepend_headers(message, [("Return-Path", f"<{account.address}>")]),
                now=self._clock.now(),
            )
        return f"250 2.0.0 OK queued as {submitted.envelope_id}"


def _patient_rule(sender: AccountRecord, recipient: AccountRecord, clock: Clock) -> Reply | None:
    """The patient rule that needs nothing but the two accounts: no patient-to-patient mail.

    The rules that need the thread (a patient only replies) or the patient's blocks are the
    delivery service's, at DATA, where the message and its thread are known.
    """
    if sender.kind is not MailboxKind.PAT:
        return None
    violations = check_patient_message(
        PatientFacts(sender.address),
        [Correspondent(recipient.address, recipient.kind)],
        None,
        clock.now(),
    )
    for violation in violations:
        if violation.code == "patient-to-patient":
            return Reply(550, "5.7.1", "A patient cannot write to a patient", violation.code)
    return None


def _complete(data: bytes, label: str, address: Address, clock: Clock) -> bytes:
    """The submitted message with the fields DOMAIN.md and RFC 6409 §8 want present."""
    message = replace_header(data, "From", formatted_from(label, address))
    added: list[tuple[str, str]] = []
    if not header_values(message, NIL_HEADER):
        added.append((NIL_HEADER, PRODUCT_REFERENCE))
    if not header_values(message, "Message-ID"):
        added.append(("Message-ID", new_message_id(address.domain)))
    if not header_values(message, "Date"):
        added.append(("Date", email.utils.format_datetime(clock.now())))
    return prepend_headers(message, added) if added else message


async def _response(server: PliSMTP, initial: str | None, challenge: str) -> bytes | Reply | None:
    """An AUTH response: the initial one (RFC 4954 §4) or the answer to a challenge."""
    if initial is not None:
        if initial == "=":
            return b""
        if len(initial) > _MAX_CREDENTIALS:
            return R.AUTH_FAILED
        try:
            return b64decode(initial.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            await server.push("501 5.5.2 Cannot decode base64")
            return None
    answer = await server.challenge_auth(challenge)
    if not isinstance(answer, bytes):
        return None  # "*" or bad base64: aiosmtpd answered 501 already
    return answer
