"""The webmail's consent signing (web/frontend/src/consent.js) in Chromium against the
Python reference (messaging/kinds/consent.py): the same canonical JSON, the same digests,
signatures that the registry accepts; and the key re-wrap (``resealSlot``) against
``crypto.reseal_slot``'s reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page

import crypto
from messaging.consent import ConsentRegistry
from messaging.errors import InvalidMessage
from messaging.kinds import parts
from messaging.kinds.consent import (
    ConsentRequest,
    ConsentResponse,
    ConsentRevocation,
    Decision,
    Scope,
)
from messaging.types import Address

DOCTOR = Address.parse("elodie.dupre@medecin.pli.test")
PATIENT = Address.parse("180017512345678@patient.pli.test")
ASKED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
DOCUMENT = b"Compte rendu de consultation"

SIGN_IN_PAGE = """
([request, encryptionSecret, signingSeed, patient, answeredAt, revokedAt, decision]) => {
  const c = globalThis.pliCrypto;
  const consent = globalThis.pliConsent;
  const keys = c.mailboxKeys(c.fromHex(encryptionSecret), c.fromHex(signingSeed));
  const response = consent.answer(request, decision, keys, patient, new Date(answeredAt));
  const revocation = decision === "grant"
    ? consent.revoke(response, keys, patient, new Date(revokedAt)) : null;
  return {
    requestDigest: consent.requestDigest(request),
    response,
    responseDigest: consent.responseDigest(response),
    revocation,
  };
}
"""

PURPOSES = {
    "plain": "Suivi de votre traitement",
    "accents-and-quotes": 'Suivi cardiologique — « cœur » "entre guillemets" \\ fin',
    "beyond-the-bmp": "Rééducation 🫀 après l'opération ✓",
}
SCOPES = {
    "record": Scope.record(),
    "categories": Scope.of_categories("11488-4", "34133-9"),
    "document": Scope.of_document("0123456789abcdef0123456789abcdef"),
}


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("purpose", PURPOSES)
async def test_an_answer_signed_in_the_browser_is_the_one_python_verifies(
    page: Page, purpose: str, scope: str
) -> None:
    keys = crypto.generate_keys()
    request = ConsentRequest.new(
        professional=DOCTOR,
        patient=PATIENT,
        scope=SCOPES[scope],
        purpose=PURPOSES[purpose],
        duration_days=30,
        at=ASKED,
    )
    answered = ASKED + timedelta(hours=2, microseconds=999_000)
    revoked = ASKED + timedelta(days=3)
    out: dict[str, Any] = await page.evaluate(
        SIGN_IN_PAGE,
        [
            request.to_json(),
            keys.encryption_secret.hex(),
            keys.signing_seed.hex(),
            str(PATIENT),
            answered.isoformat(),
            revoked.isoformat(),
            "grant",
        ],
    )
    assert out["requestDigest"] == request.digest()
    response = ConsentResponse.from_json(out["response"])
    response.verify([keys.signing_public])
    assert response.request_hash == request.digest()
    assert response.decision is Decision.GRANT
    assert response.answered_at == answered.replace(microsecond=0), "to the second, in UTC"
    assert out["responseDigest"] == response.digest()
    revocation = ConsentRevocation.from_json(out["revocation"])
    revocation.verify([keys.signing_public])
    registry = ConsentRegistry(PATIENT, [keys.signing_public])
    registry.add_request(request)
    assert registry.add_response(response) is not None
    grant = registry.add_revocation(revocation)
    assert grant.ends_at == revoked

    # Another key, or a field changed after signing, is refused by the Python reader.
    with pytest.raises(InvalidMessage) as forged:
        response.verify([crypto.generate_keys().signing_public])
    assert forged.value.code == "consent-forged"
    edited = {**out["response"], "decision": "refuse"}
    with pytest.raises(InvalidMessage):
        ConsentResponse.from_json(edited).verify([keys.signing_public])


async def test_a_refusal_signed_in_the_browser_grants_nothing(page: Page) -> None:
    keys = crypto.generate_keys()
    request = ConsentRequest.new(
        professional=DOCTOR,
        patient=PATIENT,
        scope=Scope.record(),
        purpose="Suivi",
        duration_days=10,
        at=ASKED,
    )
    out = await page.evaluate(
        SIGN_IN_PAGE,
        [
            request.to_json(),
            keys.encryption_secret.hex(),
            keys.signing_seed.hex(),
            str(PATIENT),
            ASKED.isoformat(),
            ASKED.isoformat(),
            "refuse",
        ],
    )
    assert out["revocation"] is None
    registry = ConsentRegistry(PATIENT, [keys.signing_public])
    registry.add_request(request)
    assert registry.add_response(ConsentResponse.from_json(out["response"])) is None
    assert registry.pending_requests() == []


CANONICAL = """
(values) => values.map((v) => {
  try { return { ok: globalThis.pliConsent.canonicalJson(v) }; }
  catch (e) { return { error: e.name + ": " + e.message }; }
})
"""


async def test_the_canonical_json_is_pythons_and_the_rest_is_refused(page: Page) -> None:
    accepted: list[Any] = [
        {"b": 1, "a": [True, False, None, "é"], "c": {"z": "\u2028", "y": -(2**53 - 1)}},
        # Python sorts keys by code point; UTF-16 order would put the emoji first.
        {"\uffff": 1, "😀": 2, "A": 3, "é": 4},
        {"quote": 'a"b', "backslash": "a\\b", "slash": "a/b"},
    ]
    results = await page.evaluate(CANONICAL, accepted)
    assert [r["ok"].encode() for r in results] == [parts.canonical_json(v) for v in accepted]
    refused = await page.evaluate(
        """() => [1.5, 2 ** 60, "a\\u0000b", "\\ud800", {"k": "\\udc00x"}, "\\u0085"]
            .map((v) => { try { globalThis.pliConsent.canonicalJson(v); return null; }
                          catch (e) { return e.name; } })"""
    )
    assert refused == ["ConsentError"] * 6


async def test_the_browser_refuses_to_sign_what_is_not_the_patients(page: Page) -> None:
    keys = crypto.generate_keys()
    request = ConsentRequest.new(
        professional=DOCTOR,
        patient=Address.parse("290017512345678@patient.pli.test"),
        scope=Scope.record(),
        purpose="Suivi",
        duration_days=10,
        at=ASKED,
    )
    message = await page.evaluate(
        """([request, e, s, patient]) => {
             const c = globalThis.pliCrypto;
             const keys = c.mailboxKeys(c.fromHex(e), c.fromHex(s));
             try { globalThis.pliConsent.answer(request, "grant", keys, patient); return null; }
             catch (error) { return error.message; }
           }""",
        [request.to_json(), keys.encryption_secret.hex(), keys.signing_seed.hex(), str(PATIENT)],
    )
    assert message == "this request is not addressed to you"


async def test_a_slot_rewrapped_in_the_browser_opens_for_the_professional(page: Page) -> None:
    patient = crypto.generate_keys()
    professional = crypto.generate_keys()
    stranger = crypto.generate_keys()
    header = crypto.RoutingHeader(
        envelope_id="0123456789abcdef0123456789abcdef",
        thread_id="thr",
        kind="document",
        sender=str(DOCTOR),
        recipients=(str(PATIENT),),
        size=len(DOCUMENT),
        date="2026-12-01T09:30:00Z",
        provenance="e2e",
        signer=patient.signing_key.public,
    )
    envelope, sealed = crypto.seal_bytes(
        header, DOCUMENT, signer=patient.signing_key, recipients=[patient.encryption_public]
    )
    rewrap = """([slot, e, s, to]) => {
      const c = globalThis.pliCrypto;
      const keys = c.mailboxKeys(c.fromHex(e), c.fromHex(s));
      try { return c.toHex(c.resealSlot(c.fromHex(slot), keys, c.fromHex(to))); }
      catch (error) { return "refused: " + error.message; }
    }"""
    made = await page.evaluate(
        rewrap,
        [
            sealed.slots[0].hex(),
            patient.encryption_secret.hex(),
            patient.signing_seed.hex(),
            professional.encryption_public.raw.hex(),
        ],
    )
    plaintext, _ = crypto.open_bytes(envelope, bytes.fromhex(made), professional)
    assert plaintext == DOCUMENT
    with pytest.raises(crypto.EnvelopeError):
        crypto.open_bytes(envelope, bytes.fromhex(made), stranger)
    # Keys that do not open the slot re-wrap nothing.
    refused = await page.evaluate(
        rewrap,
        [
            sealed.slots[0].hex(),
            stranger.encryption_secret.hex(),
            stranger.signing_seed.hex(),
            professional.encryption_public.raw.hex(),
        ],
    )
    assert refused == "refused: not a recipient (the slot does not open)"
