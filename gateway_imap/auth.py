"""Logging in: app passwords through the account service, slowed and counted on failure.

RFC 3501 §6.2.3 (LOGIN), RFC 4959 (SASL-IR), RFC 4616 (the PLAIN mechanism), RFC 5530
(``AUTHENTICATIONFAILED``, ``UNAVAILABLE`` response codes).

A mail client logs in with the mailbox address and one of its *app passwords*
(``pli account app-password … create``), never the passphrase: a successful check unlocks
the account's keys for this session only (:meth:`messaging.mailbox_session.MailboxAccess.session`),
and logout or a timeout forgets them.

Failures are counted per account and per client network (an IPv6 client counts as its /64,
as in ``web/ratelimit.py``) in a sliding window. Each failure is answered after a delay
that doubles with the larger of the two counts (capped), and past ``max_failures`` in the
window a client network is refused without a check, so guessing is slow whichever of
address or source a guesser rotates. Memory is bounded: at most ``max_keys`` counters are
kept, least recently used first out.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from messaging.accounts import UnlockedAccount
from messaging.errors import AuthenticationFailed, InvalidAddress, MailboxClosed
from messaging.mailbox_session import MailboxAccess, MailboxSession
from messaging.types import Address, CredentialKind

__all__ = [
    "Unlocker",
    "ThrottleSettings",
    "LoginThrottle",
    "Authenticator",
    "LoginRefused",
    "decode_plain",
    "client_key",
]

log = logging.getLogger("pli.imap.auth")


class Unlocker(Protocol):
    async def unlock(
        self, address: Address, secret: str, kind: CredentialKind = ...
    ) -> UnlockedAccount: ...


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    window_seconds: float = 900.0
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_failures: int = 20
    max_keys: int = 100_000


def client_key(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class LoginThrottle:
    """Failure counters per account and per client network (see the module notes)."""

    def __init__(
        self, settings: ThrottleSettings, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._monotonic = monotonic
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, key: str) -> list[float]:
        horizon = self._monotonic() - self._settings.window_seconds
        times = [t for t in self._failures.get(key, []) if t > horizon]
        if times:
            self._failures[key] = times
            self._failures.move_to_end(key)
        else:
            self._failures.pop(key, None)
        return times

    def failures(self, account: str | None, client: str) -> int:
        counts = [len(self._recent("ip:" + client_key(client)))]
        if account is not None:
            counts.append(len(self._recent("acct:" + account.lower())))
        return max(counts)

    def blocked(self, client: str) -> bool:
        return len(self._recent("ip:" + client_key(client))) >= self._settings.max_failures

    def record_failure(self, account: str | None, client: str) -> float:
        """Count a failure; the delay to wait before answering it."""
        now = self._monotonic()
        keys = ["ip:" + client_key(client)]
        if account is not None:
            keys.append("acct:" + account.lower())
        for key in keys:
            self._recent(key)
            self._failures.setdefault(key, []).append(now)
            self._failures.move_to_end(key)
            # Bound each list too: a window only needs max_failures entries to decide.
            del self._failures[key][: -self._settings.max_failures * 2]
        while len(self._failures) > self._settings.max_keys:
            self._failures.popitem(last=False)
        count = self.failures(account, client)
        delay: float = self._settings.base_delay * 2.0 ** (count - 1)
        return min(self._settings.max_delay, delay)

    def record_success(self, account: str) -> None:
        self._failures.pop("acct:" + account.lower(), None)


class LoginRefused(Exception):
    """A login that failed; ``code`` is the RFC 5530 response code to answer with."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


class Authenticator:
    """Checks an address and app password and opens that account's mailbox session."""

    def __init__(
        self,
        *,
        accounts: Unlocker,
        access: MailboxAccess,
        throttle: LoginThrottle,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._accounts = accounts
        self._access = access
        self.throttle = throttle
        self._sleep = sleep

    async def login(self, user: str, password: str, client: str) -> MailboxSession:
        """The mailbox session of ``user``; raises :class:`LoginRefused`."""
        if self.throttle.blocked(client):
            log.warning("login refused: too many failures", extra={"client": client})
            raise LoginRefused("UNAVAILABLE", "too many failed logins, try again later")
        try:
            address = Address.parse(user)
        except InvalidAddress:
            address = None
        account_key = str(address) if address is not None else None
        try:
            if address is None or not password:
                raise AuthenticationFailed()
            unlocked = await self._accounts.unlock(address, password, CredentialKind.APP_PASSWORD)
        except (AuthenticationFailed, MailboxClosed):
            delay = self.throttle.record_failure(account_key, client)
            log.info(
                "login failed",
                extra={"account": account_key or "(invalid)", "client": client},
            )
            await self._sleep(delay)
            raise LoginRefused("AUTHENTICATIONFAILED", "invalid credentials") from None
        self.throttle.record_success(str(unlocked.account.address))
        log.info("login", extra={"account": str(unlocked.account.address), "client": client})
        return self._access.session(unlocked.account.address, unlocked.keys)


def decode_plain(response: bytes) -> tuple[str, str] | None:
    """The user and password of a SASL PLAIN response (RFC 4616), or None when malformed.

    An authorisation identity other than the user's own is refused (no proxy logins).
    """
    try:
        decoded = base64.b64decode(response, validate=True)
    except (binascii.Error, ValueError):
        return None
    pieces = decoded.split(b"\x00")
    if len(pieces) != 3:
        return None
    authz, user, password = pieces
    try:
        user_text = user.decode("utf-8")
        password_text = password.decode("utf-8")
        authz_text = authz.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if authz_text and authz_text.lower() != user_text.lower():
        return None
    return user_text, password_text
