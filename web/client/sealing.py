"""The sealing client (see :mod:`web.client`)."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import BinaryIO, Self

import httpx

import crypto
from crypto.encoding import b64url_decode, b64url_encode
from messaging.transparency import KeyProof, KeyVerificationError, KeyVerifier
from messaging.types import Address

__all__ = ["SealingClient", "SealingError", "KeyRefused", "VerifiedKeys"]


class SealingError(Exception):
    """The server refused a request; ``status`` and the problem details say why."""

    def __init__(self, status: int, problem: dict[str, object]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")


class KeyRefused(Exception):
    """A recipient's key could not be verified against the transparency log."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"the key of {address} is refused: {reason}")


@dataclass(frozen=True, slots=True)
class VerifiedKeys:
    address: Address
    encryption_key: bytes
    signing_key: bytes


class SealingClient:
    """Seal on this machine and send through Pli's API (module :mod:`web.client`)."""

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str,
        client_secret: str,
        log_key: bytes,
        log_id: str,
        verifier_state: bytes | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._own_http = http is None
        self._client_id = client_id
        self._secret = client_secret
        self._verifier = KeyVerifier(crypto.SigningPublicKey(log_key), log_id, state=verifier_state)
        self._token: str | None = None
        self._token_expiry = 0.0
        self._keys: crypto.MailboxKeys | None = None
        self._address: Address | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    @property
    def verifier_state(self) -> bytes:
        """Persist this and pass it back next time: the log head this client trusts."""
        return self._verifier.state()

    # -- plumbing -------------------------------------------------------------------------

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase}
            raise SealingError(response.status_code, problem if isinstance(problem, dict) else {})
        return response

    async def token(self) -> str:
        if self._token is None or time.monotonic() >= self._token_expiry:
            response = self._check(
                await self._http.post(
                    "/v1/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(self._client_id, self._secret),
                )
            )
            body = response.json()
            self._token = str(body["access_token"])
            self._token_expiry = time.monotonic() + int(body["expires_in"]) - 10
        return self._token

    async def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    async def own_keys(self) -> tuple[Address, crypto.MailboxKeys]:
        """The client mailbox's keys, opened here from the bundle sealed under the secret."""
        if self._keys is None or self._address is None:
            response = self._check(
                await self._http.get("/v1/mailbox/key-bundle", headers=await self._headers())
            )
            body = response.json()
            limits = crypto.Argon2Limits(int(body["opslimit"]), int(body["memlimit"]))
            derived = await asyncio.to_thread(
                crypto.derive_keys, self._secret, b64url_decode(body["salt"]), limits
            )
            self._keys = crypto.open_bundle(
                b64url_decode(body["sealed_bundle"]), derived.bundle_key
            )
            self._address = Address.parse(body["address"])
        return self._address, self._keys

    # -- keys -------------------------------------------------------------------------------

    async def lookup(self, address: str) -> VerifiedKeys:
        """The keys of ``address``, verified against the log, or :class:`KeyRefused`."""
        parsed = Address.parse(address)
        params = {}
        trusted = self._verifier.trusted_head
        if trusted is not None:
            params["known_size"] = str(trusted.tree_size)
        response = await self._http.get(f"/v1/directory/mailboxes/{parsed}", params=params)
        if response.status_code == 404:
            raise KeyRefused(str(parsed), "not in the directory")
        body = self._check(response).json()
        keys, proof = body.get("keys"), body.get("proof")
        if not isinstance(keys, dict) or not isinstance(proof, dict):
            raise KeyRefused(str(parsed), "no published key with a proof")
        found = VerifiedKeys(
            parsed,
            b64url_decode(str(keys["encryption_key"])),
            b64url_decode(str(keys["signing_key"])),
        )
        try:
            self._verifier.verify(parsed, found, KeyProof.from_json(proof))
        except KeyVerificationError as exc:
            raise KeyRefused(str(parsed), f"{exc.reason.value}: {exc}") from None
        return found

    # -- sending ----------------------------------------------------------------------------

    async def send(
        self,
        recipients: Sequence[str],
        message: bytes | BinaryIO,
        *,
        kind: str = "note",
        thread_id: str | None = None,
        idempotency_key: str | None = None,
        keep_sent_copy: bool = True,
    ) -> dict[str, object]:
        """Seal ``message`` (RFC 5322 bytes) here and deliver it; the API's answer (201)."""
        sender, keys = await self.own_keys()
        verified = [await self.lookup(r) for r in recipients]
        source = io.BytesIO(message) if isinstance(message, bytes | bytearray) else message
        start = source.tell()
        size = source.seek(0, io.SEEK_END) - start
        source.seek(start)
        random_ids = secrets.token_bytes(32)
        header = crypto.RoutingHeader(
            envelope_id=random_ids[:16].hex(),
            thread_id=thread_id or random_ids[16:].hex(),
            kind=kind,
            sender=str(sender),
            recipients=tuple(str(v.address) for v in verified),
            size=size,
            date=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            provenance=crypto.PROVENANCE_E2E,
            signer=keys.signing_public,
        )
        targets = [crypto.EncryptionPublicKey(v.encryption_key) for v in verified]
        if keep_sent_copy:
            targets.append(keys.encryption_public)
        with tempfile.TemporaryFile() as sink:
            result = await asyncio.to_thread(
                crypto.seal_envelope,
                header,
                source,
                sink,
                signer=keys.signing_key,
                recipients=targets,
            )
            sink.seek(0)
            slots = {
                str(v.address): b64url_encode(slot)
                for v, slot in zip(verified, result.slots, strict=False)
            }
            data = {"slots": json.dumps(slots)}
            if keep_sent_copy:
                data["sent_slot"] = b64url_encode(result.slots[-1])
            headers = await self._headers()
            headers["Idempotency-Key"] = idempotency_key or f"seal-{header.envelope_id}"
            response = self._check(
                await self._http.post(
                    "/v1/messages/sealed",
                    data=data,
                    files={"envelope": ("envelope.pli", sink, "application/octet-stream")},
                    headers=headers,
                )
            )
        answer = response.json()
        assert isinstance(answer, dict)  # noqa: S101 - the API's 201 body is an object
        return answer
