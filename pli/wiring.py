"""The only place that chooses implementations: SQL store and directory, tiered blobs, the
transparency-logged key directory, in-process notifications.

Everything else receives its collaborators through its constructor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import crypto
from directory import SqlDirectory
from directory.keys import TransparentKeyDirectory
from gateway_smtp.allowlist import AllowListSource
from gateway_smtp.relay import RelayWorker
from mailbox_store import SqlMailboxStore, TieredBlobStore
from mailbox_store.webmail import SqlWebmailStore
from messaging import (
    AccountService,
    DeliveryService,
    InProcessNotifier,
    Limits,
    SystemClock,
)
from messaging.notices import NoticeNotSent, NoticeSender, RoutingNoticeSender
from messaging.patient_delivery import PatientDeliveryRules
from messaging.patients import PatientService
from messaging.ports import Clock
from messaging.retention import RetentionPolicy
from messaging.sealed import SealedIntake
from messaging.signin_codes import (
    CodeSender,
    DemoCodeSender,
    RoutingCodeSender,
    SignInCode,
    SmtpCodeSender,
)
from messaging.sms import KannelSmsSender
from messaging.transparency import KeyVerifier
from messaging.verified_keys import VerifiedKeyDirectory
from messaging.webmail import WebmailLimits, WebmailService
from pli.relay_wiring import relay_worker, relaying
from pli.secrets import InstanceSecrets, create_secrets, load_secrets
from pli.settings import Settings, SettingsError
from pli.smtp_wiring import allowlist_source
from pli.tls import TlsFiles, ensure_local_authority

__all__ = ["Pli", "open_pli", "initialise"]


@dataclass
class Pli:
    """The wired application: what commands and fronts use."""

    settings: Settings
    secrets: InstanceSecrets
    store: SqlMailboxStore
    blobs: TieredBlobStore
    directory: SqlDirectory
    key_log: TransparentKeyDirectory
    keys: VerifiedKeyDirectory
    notifier: InProcessNotifier
    clock: Clock
    accounts: AccountService
    delivery: DeliveryService
    patient_rules: PatientDeliveryRules
    patients: PatientService
    relay: RelayWorker | None = None
    """The outbound relay worker ``pli serve`` runs (None when ``relay_enabled`` is off)."""
    allowlist: AllowListSource | None = None
    """The trust space's allow-list: peers the MX accepts and the relay delivers to."""
    webmail: WebmailService | None = None
    webmail_store: SqlWebmailStore | None = None
    intake: SealedIntake | None = None
    """Envelopes sealed by their sender (webmail, the API's sealing client): one for both."""

    def sealed_intake(self) -> SealedIntake:
        """The one intake of client-sealed envelopes, which :func:`open_pli` makes."""
        if self.intake is None:
            raise RuntimeError("only open_pli wires the sealed intake")
        return self.intake

    async def close(self) -> None:
        """Finish the commits in flight, remember the trusted log head, release databases."""
        try:
            if self.webmail_store is not None:
                await self.webmail_store.close()
            await self.store.close()
        finally:
            _save_trusted_head(self.settings, self.keys.verifier.state())
            await self.directory.close()


def initialise(settings: Settings) -> None:
    """Create the data directory layout and the instance secrets (idempotent)."""
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.resolved_blob_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    create_secrets(settings.secrets_dir)
    if settings.tls_cert is None:
        ensure_local_authority(settings.tls_dir, _local_names(settings))


def _local_names(settings: Settings) -> tuple[str, ...]:
    return ("localhost", "127.0.0.1", settings.domain)


def tls_files(settings: Settings) -> TlsFiles:
    """The instance's certificate, key and trust anchor: configured, or the local authority."""
    if settings.tls_cert is None or settings.tls_key is None:
        local = ensure_local_authority(settings.tls_dir, _local_names(settings))
        cert, key, ca = local.cert, local.key, local.ca
    else:
        cert, key = settings.tls_cert, settings.tls_key
        ca = settings.trust_anchor or settings.tls_dir / "ca.pem"
    return TlsFiles(cert=cert, key=key, ca=settings.trust_anchor or ca, crl=settings.trust_crl)


def log_id(settings: Settings) -> str:
    """The name of this instance's key log, in every tree head it signs."""
    return f"{settings.domain}/keys/v1"


def _trusted_head_file(settings: Settings) -> Path:
    return settings.home / "state" / "trusted-log-head"


def _load_trusted_head(settings: Settings) -> bytes | None:
    try:
        return _trusted_head_file(settings).read_bytes() or None
    except FileNotFoundError:
        return None


def _save_trusted_head(settings: Settings, state: bytes) -> None:
    if not state:
        return
    path = _trusted_head_file(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".new")
    temporary.write_bytes(state)
    temporary.replace(path)


async def open_pli(settings: Settings, *, clock: Clock | None = None) -> Pli:
    secrets = load_secrets(settings.secrets_dir)
    clock = clock or SystemClock()
    # Before the store opens: a wrong SMS setting is refused with nothing to close.
    outside = outside_senders(settings, clock)
    url = settings.resolved_database_url
    store = await SqlMailboxStore.open(
        url,
        group_commit_max=settings.group_commit_max,
        blob_dir=settings.resolved_blob_dir,
        inline_blob_max=settings.inline_blob_max,
        watch_poll_interval=settings.watch_poll_interval,
    )
    try:
        directory = await SqlDirectory.open(url, clock=clock)
    except BaseException:
        await store.close()
        raise
    key_log = directory.key_log(secrets.log_key, log_id=log_id(settings))
    verifier = KeyVerifier(
        secrets.log_key.public, log_id(settings), state=_load_trusted_head(settings)
    )
    keys = VerifiedKeyDirectory(key_log, verifier)
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
        publisher=key_log,
        directory=directory,
    )
    patient_rules = PatientDeliveryRules(
        store=store,
        patients=store.patients,
        keys=keys,
        clock=clock,
        directory=directory,
        notices=outside.notices,
        notice_link=settings.notice_link or f"https://{settings.domain}/",
    )
    allowlist = allowlist_source(settings)
    delivery = DeliveryService(
        store=store,
        blobs=store.blobs,
        keys=keys,
        notifier=notifier,
        clock=clock,
        operator_key=secrets.operator_key,
        limits=Limits(settings.max_message_size, settings.max_recipients),
        patients=patient_rules,
        relaying=relaying(settings, secrets, store, peers=allowlist),
    )
    patients = PatientService(
        store=store,
        patients=store.patients,
        blobs=store.blobs,
        keys=keys,
        delivery=delivery,
        rules=patient_rules,
        clock=clock,
        retention=RetentionPolicy(retention_years=settings.retention_years),
    )
    relay = relay_worker(settings, secrets, store, delivery, clock, tls_files(settings))
    pli = Pli(
        settings,
        secrets,
        store,
        store.blobs,
        directory,
        key_log,
        keys,
        notifier,
        clock,
        accounts,
        delivery,
        patient_rules,
        patients,
        relay,
        allowlist,
    )

    pli.intake = SealedIntake(
        store=store,
        blobs=store.blobs,
        keys=keys,
        notifier=notifier,
        clock=clock,
        limits=Limits(settings.max_message_size, settings.max_recipients),
        patients=patient_rules,
    )
    pli.webmail_store = SqlWebmailStore.open(url)
    pli.webmail = WebmailService(
        store=store,
        blobs=store.blobs,
        sessions=pli.webmail_store,
        accounts=accounts,
        intake=pli.intake,
        codes=outside.codes,
        notifier=notifier,
        clock=clock,
        instance_secret=secrets.instance_key,
        operator_key=secrets.operator_key.public.raw,
        log_key=secrets.log_key.public.raw,
        log_id=log_id(settings),
        limits=WebmailLimits(
            session_idle_seconds=settings.webmail_session_idle_seconds,
            session_max_seconds=settings.webmail_session_max_seconds,
            code_seconds=settings.webmail_code_seconds,
            code_attempts=settings.webmail_code_attempts,
        ),
        sms_codes=outside.sms_codes,
    )
    return pli


@dataclass(frozen=True, slots=True)
class OutsideSenders:
    """What carries notices and sign-in codes outside the trust space: the smarthost and the
    SMS gateway, each built once and shared by both."""

    notices: NoticeSender | None
    """E-mail notices through the smarthost, SMS through the gateway; neither: none sent."""
    codes: CodeSender
    sms_codes: bool
    """Whether ``codes`` can send by SMS (the webmail then offers a phone)."""


def outside_senders(settings: Settings, clock: Clock | None = None) -> OutsideSenders:
    """The smarthost and the SMS gateway when configured; without either, in demo mode only,
    codes go to a file in the data directory."""
    email = smarthost(settings, clock)
    sms = sms_sender(settings)
    if email is None and sms is None:
        codes: CodeSender = (
            DemoCodeSender(demo_codes_file(settings)) if settings.demo else _NoCodeSender()
        )
        return OutsideSenders(None, codes, sms_codes=settings.demo)
    return OutsideSenders(
        RoutingNoticeSender(email=email, sms=sms),
        RoutingCodeSender(email=email, sms=sms),
        sms_codes=sms is not None,
    )


def smarthost(settings: Settings, clock: Clock | None = None) -> SmtpCodeSender | None:
    """The SMTP smarthost of notices and sign-in codes, when one is configured."""
    if settings.notice_smarthost is None:
        return None
    return SmtpCodeSender(
        settings.notice_smarthost,
        settings.notice_smarthost_port,
        settings.notice_from or f"ne-pas-repondre@{settings.domain}",
        settings.notice_starttls,
        clock=clock,
    )


def sms_sender(settings: Settings) -> KannelSmsSender | None:
    """The SMS gateway when one is configured (URL, username and password file)."""
    if settings.sms_gateway_url is None:
        return None
    if settings.sms_gateway_username is None or settings.sms_gateway_password_file is None:
        raise SettingsError(
            "sms_gateway_url needs sms_gateway_username and sms_gateway_password_file"
        )
    try:
        password = settings.sms_gateway_password_file.read_text(encoding="utf-8").strip()
        return KannelSmsSender(
            settings.sms_gateway_url,
            settings.sms_gateway_username,
            password,
            sender=settings.sms_sender,
            timeout=settings.sms_timeout_seconds,
        )
    except OSError as exc:
        raise SettingsError(f"sms_gateway_password_file: {exc.strerror}") from None
    except ValueError as exc:
        raise SettingsError(f"sms_gateway_url: {exc}") from None


def demo_codes_file(settings: Settings) -> Path:
    return settings.home / "demo-signin-codes.txt"


class _NoCodeSender:
    async def send_code(self, code: SignInCode) -> None:  # noqa: ARG002 - refuses any
        raise NoticeNotSent("no smarthost is configured for sign-in codes", permanent=True)
