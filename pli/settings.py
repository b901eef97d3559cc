"""Pli's settings: a TOML file in the data directory, overridden by ``PLI_*`` variables.

Precedence, highest first: explicit arguments (the command line), environment variables
(``PLI_DOMAIN``, ``PLI_DATABASE_URL``…), ``$PLI_HOME/pli.toml``, defaults. Limits are
settings, never constants buried in code. Outside demo mode, :func:`check_safety` refuses the
defaults that are only fit for a laptop demo.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "SettingsError", "load_settings", "check_safety", "default_home"]

_TOML_PATH: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml", default=None)

# libsodium's crypto_pwhash_argon2id interactive limits: the floor for a real deployment.
INTERACTIVE_OPSLIMIT = 2
INTERACTIVE_MEMLIMIT = 64 * 1024 * 1024
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class SettingsError(Exception):
    """Settings that cannot be used; the message says which and why."""


def default_home() -> Path:
    env = os.environ.get("PLI_HOME")
    return Path(env) if env else Path.cwd() / "pli-data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLI_", extra="forbid")

    home: Path = Field(default_factory=default_home)
    demo: bool = False
    domain: str = "pli.localhost"
    database_url: str | None = None
    blob_dir: Path | None = None

    host: str = "127.0.0.1"
    http_port: int = 8080
    smtp_port: int = 2525
    submission_port: int = 2587
    imap_port: int = 2143
    imaps_port: int = 2993
    """IMAP over implicit TLS (RFC 8314); ``imap_port`` offers STARTTLS."""

    # TLS: certificates under the trust space's authority in production; ``pli init`` makes a
    # local authority under $PLI_HOME/tls when these are unset (see pli/tls.py).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trust_anchor: Path | None = None
    trust_crl: Path | None = None

    passphrase_opslimit: int = INTERACTIVE_OPSLIMIT
    passphrase_memlimit: int = INTERACTIVE_MEMLIMIT
    app_password_opslimit: int = INTERACTIVE_OPSLIMIT
    app_password_memlimit: int = INTERACTIVE_MEMLIMIT

    max_message_size: int = 25 * 1024 * 1024
    max_recipients: int = 100
    group_commit_max: int = 64
    inline_blob_max: int = 64 * 1024
    shutdown_grace_seconds: float = 30.0
    log_level: str = "INFO"

    # Patients (issue 4): retention after closure, the purge schedule, and the smarthost
    # that carries content-free notices to patients' personal addresses (none: no notices).
    retention_years: int = Field(default=10, ge=0)
    purge_interval_seconds: float = Field(default=24 * 3600.0, gt=0)
    notice_smarthost: str | None = None
    notice_smarthost_port: int = 25
    notice_starttls: bool = True
    notice_from: str | None = None
    notice_link: str | None = None
    """Where a notice tells the patient to read (the webmail); https only."""
    # Outbound relay to peer operators (gateway_smtp/relay.py, docs/operations.md).
    relay_enabled: bool = True
    relay_peer_domains: list[str] = Field(default_factory=list)
    """Peer domains we relay to while the trust-space allow-list is not configured."""
    relay_routes: dict[str, str] = Field(default_factory=dict)
    """Static routes, ``domain -> host:port``; other domains are found by MX lookup."""
    relay_port: int = 25
    relay_helo: str | None = None
    relay_concurrency_per_domain: int = 4
    relay_batch: int = 32
    relay_poll_seconds: float = 1.0
    relay_lease_seconds: float = 600.0
    relay_timeout_seconds: float = 60.0
    relay_retry_base_seconds: float = 60.0
    relay_retry_max_seconds: float = 3600.0
    relay_retry_jitter: float = 0.2
    relay_delay_notice_seconds: float = 4 * 3600.0
    relay_max_age_seconds: float = 5 * 24 * 3600.0

    # SMTP fronts (gateway_smtp/, docs/smtp.md): the MX listens on smtp_port, submission
    # with STARTTLS on submission_port, with implicit TLS on submissions_port.
    submissions_port: int = 2465
    smtp_hostname: str | None = None
    """Name in the greeting and in Received fields; the domain when unset."""
    smtp_allowlist: Path | None = None
    """The trust space's allow-list (XML, DOMAIN.md); without it, domain + relay_peer_domains."""
    smtp_allowlist_refresh_seconds: float = 3600.0
    smtp_max_line_length: int = 1000
    smtp_max_commands: int = 10_000
    smtp_max_errors: int = 20
    smtp_max_connections_per_peer: int = 50
    smtp_max_auth_failures: int = 3
    smtp_auth_failure_delay_seconds: float = 1.0
    smtp_timeout_seconds: float = 300.0
    smtp_crl_refresh_seconds: float = 3600.0
    # IMAP gateway limits (gateway_imap/parser.py checks them before reading a byte of a
    # literal, and before authentication).
    imap_max_line: int = 64 * 1024
    imap_max_command: int = 256 * 1024
    imap_max_literal_unauthenticated: int = 4096
    imap_max_literal: int = 64 * 1024
    imap_max_depth: int = 16
    imap_login_timeout_seconds: float = 60.0
    imap_idle_timeout_seconds: float = 30 * 60.0
    imap_max_connections: int = 1000
    imap_cache_bytes: int = 32 * 1024 * 1024
    """Decrypted messages kept per IMAP session (least recently used out)."""

    watch_poll_interval: float = 0.25
    """Seconds between two reads of the watched folders' state on SQLite, which has no
    notifications (IDLE hears of other processes' changes within this); PostgreSQL uses
    LISTEN/NOTIFY and ignores it."""
    # Webmail (messaging/webmail.py): session lifetimes and one-time sign-in codes, which go
    # through the notices' smarthost (none: codes cannot be sent, except to a file in demo
    # mode).
    webmail_session_idle_seconds: int = 15 * 60
    webmail_session_max_seconds: int = 8 * 3600
    webmail_code_seconds: int = 10 * 60
    webmail_code_attempts: int = 5
    # SMS (messaging/sms.py): a Kannel gateway's sendsms URL carries sign-in codes and notices
    # to patients' phones (none: no SMS, and the webmail offers no phone for codes). Its
    # password is read from a file, never from this file or the environment.
    sms_gateway_url: str | None = None
    """e.g. ``https://sms.example.org:13013/cgi-bin/sendsms``; http only on loopback."""
    sms_gateway_username: str | None = None
    sms_gateway_password_file: Path | None = None
    sms_sender: str = "Pli"
    """The ``from`` the phone shows (an alphanumeric sender ID, or a number)."""
    sms_timeout_seconds: float = 10.0

    # Application API (web/api): token lifetime, each client's default rate, the addresses
    # of the TLS terminator trusted to forward client certificates (RFC 8705), webhooks.
    api_token_seconds: int = 600
    api_rate_per_minute: float = 6000.0
    api_request_timeout_seconds: float = 60.0
    api_trusted_proxies: list[str] = Field(default_factory=list)
    api_webhook_max_attempts: int = 8
    api_webhook_allow_http: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - unused on purpose
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _TOML_PATH.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml is not None and toml.exists():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    # -- derived paths --------------------------------------------------------------------

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'pli.db'}"

    @property
    def resolved_blob_dir(self) -> Path:
        return self.blob_dir or self.home / "blobs"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def settings_file(self) -> Path:
        return self.home / "pli.toml"


def load_settings(
    home: Path | None = None,
    **overrides: Any,  # noqa: ANN401 - any field of Settings
) -> Settings:
    """Settings for ``home`` (or ``$PLI_HOME``), reading its ``pli.toml`` when present."""
    base = (home or default_home()).resolve()
    token = _TOML_PATH.set(base / "pli.toml")
    try:
        return Settings(home=base, **overrides)
    finally:
        _TOML_PATH.reset(token)


def check_safety(settings: Settings) -> None:
    """Refuse, outside demo mode, what would be unsafe with patients' data."""
    if settings.demo:
        return
    problems: list[str] = []
    if (
        settings.passphrase_opslimit < INTERACTIVE_OPSLIMIT
        or settings.passphrase_memlimit < INTERACTIVE_MEMLIMIT
    ):
        problems.append(
            "passphrase_opslimit/passphrase_memlimit are below Argon2id's interactive "
            f"limits ({INTERACTIVE_OPSLIMIT}, {INTERACTIVE_MEMLIMIT} bytes)"
        )
    if (
        settings.app_password_opslimit < INTERACTIVE_OPSLIMIT
        or settings.app_password_memlimit < INTERACTIVE_MEMLIMIT
    ):
        problems.append("app_password_opslimit/app_password_memlimit are below interactive limits")
    if settings.host not in LOOPBACK:
        problems.append(
            f"host {settings.host!r} is not loopback and TLS is not configured yet: "
            "keep 127.0.0.1 or put a TLS front in place"
        )
    if problems:
        raise SettingsError("unsafe settings outside demo mode:\n  - " + "\n  - ".join(problems))
