"""The webmail's JavaScript passes the envelope-v1 test vectors in Chromium, and envelopes
cross between the browser and the Python reference implementation in both directions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

import crypto

VECTORS = Path(__file__).resolve().parents[1] / "crypto" / "vectors" / "envelope-v1.json"

CHECK_VECTORS = (Path(__file__).parent / "check_vectors.js").read_text()


async def test_the_javascript_passes_every_envelope_vector(page: Page) -> None:
    vectors = json.loads(VECTORS.read_text())
    result: dict[str, Any] = await page.evaluate(CHECK_VECTORS, vectors)
    assert result["fails"] == []
    assert result["counts"] == {
        "keys": len(vectors["keys"]),
        "argon2id": len(vectors["argon2id"]),
        "recovery": len(vectors["recovery_keys"]["accepted_inputs_text"])
        + len(vectors["recovery_keys"]["refused_inputs_text"]),
        "bundles": len(vectors["bundles"]),
        "bundle_failures": len(vectors["bundle_failures"]),
        "headers": len(vectors["headers"]),
        "header_failures": len(vectors["header_failures"]),
        "envelopes": len(vectors["envelopes"]),
        "envelope_failures": len(vectors["envelope_failures"]),
    }


SEAL_IN_PAGE = """
([signingSeed, encryptionSecret, recipientPublic, plaintextHex, chunk]) => {
  const c = globalThis.pliCrypto;
  const signer = c.mailboxKeys(c.fromHex(encryptionSecret), c.fromHex(signingSeed));
  const sealed = c.sealEnvelope(
    { id: "0123456789abcdef0123456789abcdef", thread: "thr-1", type: "note",
      from: "élodie.dupré@medecin.pli.test", to: ["180017512345678@patient.pli.test"],
      date: "2026-11-22T10:00:00Z", prov: "e2e" },
    c.fromHex(plaintextHex), signer, [c.fromHex(recipientPublic)], chunk);
  return [c.toHex(sealed.envelope), c.toHex(sealed.slots[0])];
}
"""

OPEN_IN_PAGE = """
([envelopeHex, slotHex, secretHex]) => {
  const c = globalThis.pliCrypto;
  const keys = c.mailboxKeys(c.fromHex(secretHex), new Uint8Array(32));
  const opened = c.openEnvelope(c.fromHex(envelopeHex), c.fromHex(slotHex), keys);
  return [c.toHex(opened.plaintext), opened.header.from, opened.header.prov, opened.header.sigkey];
}
"""


@pytest.mark.parametrize("size", [0, 1, 70_000, 200_001])
async def test_sealed_in_the_browser_opens_in_python_and_the_reverse(page: Page, size: int) -> None:
    sender = crypto.generate_keys()
    recipient = crypto.generate_keys()
    plaintext = bytes((i * 7 + 3) % 256 for i in range(size))
    envelope_hex, slot_hex = await page.evaluate(
        SEAL_IN_PAGE,
        [
            sender.signing_seed.hex(),
            sender.encryption_secret.hex(),
            recipient.encryption_public.raw.hex(),
            plaintext.hex(),
            65536,
        ],
    )
    opened_plain, opened = crypto.open_bytes(
        bytes.fromhex(envelope_hex), bytes.fromhex(slot_hex), recipient
    )
    assert opened_plain == plaintext
    assert opened.header.sender == "élodie.dupré@medecin.pli.test"
    assert opened.header.signer == sender.signing_public

    header = crypto.RoutingHeader(
        envelope_id="py-1",
        thread_id="thr-py",
        kind="document",
        sender="labo@ch-exemple.pli.test",
        recipients=("180017512345678@patient.pli.test",),
        size=size,
        date="2026-11-22T11:00:00Z",
        provenance="gateway",
        signer=sender.signing_key.public,
        gateway=crypto.GatewayInfo(peer="mx.ch-exemple.fr", tls="sha256:00"),
    )
    envelope, result = crypto.seal_bytes(
        header, plaintext, signer=sender.signing_key, recipients=[recipient.encryption_public]
    )
    plain_hex, sender_text, provenance, sigkey = await page.evaluate(
        OPEN_IN_PAGE, [envelope.hex(), result.slots[0].hex(), recipient.encryption_secret.hex()]
    )
    assert bytes.fromhex(plain_hex) == plaintext
    assert (sender_text, provenance) == ("labo@ch-exemple.pli.test", "gateway")
    assert sigkey == header.to_bytes().decode().split('"sigkey":"')[1].split('"')[0]


async def test_a_tampered_browser_envelope_is_refused_by_python(page: Page) -> None:
    sender = crypto.generate_keys()
    recipient = crypto.generate_keys()
    envelope_hex, slot_hex = await page.evaluate(
        SEAL_IN_PAGE,
        [
            sender.signing_seed.hex(),
            sender.encryption_secret.hex(),
            recipient.encryption_public.raw.hex(),
            (b"bonjour " * 100).hex(),
            64,
        ],
    )
    envelope = bytearray.fromhex(envelope_hex)
    envelope[-100] ^= 1
    with pytest.raises(crypto.EnvelopeError):
        crypto.open_bytes(bytes(envelope), bytes.fromhex(slot_hex), recipient)
