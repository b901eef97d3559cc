"""Who is calling: HTTP Basic credentials of professionals (RFC 7617).

A professional authenticates with ``address:app-password`` in an ``Authorization: Basic``
header, the credentials their mail client already uses. Basic sends the password in the
clear, so it is only meaningful over TLS; the front refuses nothing on that ground because
TLS is terminated in front of it (see ``docs/api.md``).

:class:`Authenticator` is the port the routes depend on. :class:`AccountAuthenticator`
implements it over :class:`messaging.accounts.AccountService`:

- it checks an app password with ``unlock(..., CredentialKind.APP_PASSWORD)``, one Argon2id
  run, and accepts only PER, ORG and CAB mailboxes as professionals (a patient's or an
  application's credentials are no professional's);
- it remembers a successful check for ``ttl`` seconds, keyed by an HMAC of the address and
  the password under a key drawn at start-up and never stored, so that a client sending the
  same credentials on every request pays Argon2id once per ``ttl``. Failures are never
  remembered (nor are they cheap: the routes rate-limit them per client address). A revoked
  app password keeps working for at most ``ttl`` seconds on each front.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from messaging.accounts import UnlockedAccount
from messaging.errors import AuthenticationFailed, InvalidAddress, MailboxClosed
from messaging.types import Address, CredentialKind, MailboxKind

__all__ = [
    "Authenticator",
    "AccountAuthenticator",
    "Unlocker",
    "PROFESSIONAL_KINDS",
    "parse_basic",
]

PROFESSIONAL_KINDS = frozenset({MailboxKind.PER, MailboxKind.ORG, MailboxKind.CAB})
"""The mailbox types whose owners are professionals for the directory's faces."""

_MAX_CREDENTIALS = 1024


class Authenticator(Protocol):
    """Decides whether ``address`` / ``app_password`` are a professional's credentials."""

    async def professional(self, address: Address, app_password: str) -> Address | None:
        """The professional's address, or None for wrong credentials of any kind."""
        ...


class Unlocker(Protocol):
    """What :class:`AccountAuthenticator` needs of the account service."""

    async def unlock(
        self, address: Address, secret: str, kind: CredentialKind = ...
    ) -> UnlockedAccount: ...


def parse_basic(header: str) -> tuple[Address, str] | None:
    """The address and password of an ``Authorization: Basic`` header (RFC 7617 §2), or None.

    Anything else — another scheme, bad base64, no colon, invalid UTF-8, an address that
    does not parse — is None: to the caller every one of them is just wrong credentials.
    """
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "basic" or not token or len(token) > _MAX_CREDENTIALS:
        return None
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon or not password:
        return None
    try:
        return Address.parse(user), password
    except InvalidAddress:
        return None


class AccountAuthenticator:
    """An :class:`Authenticator` over the account service's app passwords, with a short cache."""

    def __init__(
        self,
        accounts: Unlocker,
        *,
        ttl: float = 60.0,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self._accounts = accounts
        self._ttl = ttl
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, tuple[float, Address]] = OrderedDict()

    def _cache_key(self, address: Address, app_password: str) -> bytes:
        material = f"{address}\x00{app_password}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, material, hashlib.sha256).digest()

    async def professional(self, address: Address, app_password: str) -> Address | None:
        key = self._cache_key(address, app_password)
        now = self._monotonic()
        hit = self._cache.get(key)
        if hit is not None:
            if hit[0] > now:
                self._cache.move_to_end(key)
                return hit[1]
            del self._cache[key]
        try:
            unlocked = await self._accounts.unlock(
                address, app_password, CredentialKind.APP_PASSWORD
            )
        except (AuthenticationFailed, MailboxClosed):
            return None
        account = unlocked.account
        if account.kind not in PROFESSIONAL_KINDS:
            return None
        if self._ttl > 0:
            self._cache[key] = (now + self._ttl, account.address)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return account.address
