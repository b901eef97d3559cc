"""Write ``tests/crypto/vectors/envelope-v1.json``, the test vectors of docs/envelope.md.

Run from the project root::

    .venv/bin/python -m tests.crypto.make_vectors

Everything that can be deterministic is: keys come from fixed seeds, salts and the bundle
nonce are fixed, the canonical headers, hashes, digests and Ed25519 signatures (which are
deterministic) follow. Envelopes and key slots cannot be: libsodium draws the secretstream
header and the ``crypto_box_seal`` ephemeral key itself. So envelope vectors are *open*
vectors (an implementation must open them and find the expected plaintext, hashes and
signature) and each run of this script writes new envelope bytes. ``test_vectors.py``
checks that the committed file opens, and that its deterministic parts are reproduced.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from crypto import (
    Argon2Limits,
    GatewayInfo,
    MailboxKeys,
    RoutingHeader,
    auth_key_hash,
    derive_keys,
    seal_bytes,
)
from crypto.bundle import _seal_bundle_with_nonce
from crypto.encoding import blake2b_256
from crypto.envelope import header_hash, signature_message
from crypto.kdf import BundleKey, normalize_secret
from crypto.passwords import _recovery_key_from_bytes
from tests.crypto.support import (
    ALICE,
    BOB,
    CAROL,
    OPERATOR,
    FakeSigner,
    fixed_bytes,
    forge,
    make_header,
    split,
    with_header,
)

VECTORS_PATH = Path(__file__).parent / "vectors" / "envelope-v1.json"

PARTIES: dict[str, MailboxKeys] = {
    "alice": ALICE,
    "bob": BOB,
    "carol": CAROL,
    "operator": OPERATOR,
}

RECOVERY_KEY = _recovery_key_from_bytes(fixed_bytes("recovery-key", 32))

# (name, secret, limits): the secrets a person types, and Pli's own generated secrets.
ARGON2_CASES: list[tuple[str, str, Argon2Limits]] = [
    ("ascii-passphrase", "correct horse battery staple", Argon2Limits.TEST_MINIMUM),
    # Full-width letters, a ligature and a decomposed accent: NFKC gives "Pass fi Café".
    ("nfkc-passphrase", "\uff30\uff41\uff53\uff53 \ufb01 Cafe\u0301", Argon2Limits.TEST_MINIMUM),
    ("app-password", "k7qz-m2xp-4hvd-9wce", Argon2Limits.TEST_MINIMUM),
    ("recovery-key", RECOVERY_KEY, Argon2Limits.TEST_MINIMUM),
    ("interactive-passphrase", "correct horse battery staple", Argon2Limits.INTERACTIVE),
]

# (name, description, signer, chunk_size, plaintext, gateway)
ENVELOPE_CASES: list[tuple[str, str, str, int, bytes, GatewayInfo | None]] = [
    ("empty", "0-byte plaintext: no data frame, only the final frame", "alice", 65536, b"", None),
    (
        "short-utf8",
        "a short UTF-8 text in one data frame",
        "alice",
        65536,
        "Bonjour Dr Martin, résultats reçus ✓\n".encode(),
        None,
    ),
    (
        "three-chunks-gateway",
        "40 bytes in chunks of 16 (frames of 16, 16, 8), gateway provenance, operator signer",
        "operator",
        16,
        b"Subject: CR\r\n\r\nCompte rendu: normal.\r\n\r\n",
        GatewayInfo(peer="mx.ch-exemple.fr", tls="sha256:" + fixed_bytes("tls", 32).hex()),
    ),
]


def _keys_section() -> dict[str, dict[str, str]]:
    section = {}
    for name, keys in PARTIES.items():
        section[name] = {
            "encryption_secret": keys.encryption_secret.hex(),
            "encryption_public": keys.encryption_public.raw.hex(),
            "encryption_public_b64": keys.encryption_public.b64(),
            "signing_seed": keys.signing_seed.hex(),
            "signing_public": keys.signing_public.raw.hex(),
            "signing_public_b64": keys.signing_public.b64(),
            "signing_public_fingerprint": keys.signing_public.fingerprint(),
        }
    return section


def _argon2_section() -> list[dict[str, Any]]:
    section = []
    for name, secret, limits in ARGON2_CASES:
        salt = fixed_bytes(f"salt/{name}", 16)
        derived = derive_keys(secret, salt, limits)
        section.append(
            {
                "name": name,
                "secret_text": secret,
                "secret_nfkc_utf8": normalize_secret(secret).hex(),
                "salt": salt.hex(),
                "opslimit": limits.opslimit,
                "memlimit": limits.memlimit,
                "output": (derived.auth_key.raw + derived.bundle_key.raw).hex(),
                "auth_key": derived.auth_key.raw.hex(),
                "bundle_key": derived.bundle_key.raw.hex(),
                "auth_key_hash": auth_key_hash(derived.auth_key).hex(),
            }
        )
    return section


def _recovery_keys_section() -> dict[str, Any]:
    compact = RECOVERY_KEY.replace("-", "")
    return {
        "raw": fixed_bytes("recovery-key", 32).hex(),
        "canonical_text": RECOVERY_KEY,
        "accepted_inputs_text": [
            RECOVERY_KEY,
            RECOVERY_KEY.lower(),
            compact,
            " ".join(RECOVERY_KEY.split("-")),
            f"  {RECOVERY_KEY.lower().replace('-', ' - ')}  ",
        ],
        "refused_inputs_text": [
            "",
            compact[:-4],  # too short
            compact + "AAAA",  # too long
            compact[:-1] + "B",  # non-zero unused trailing bits
            compact[:-2] + "0" + compact[-1],  # 0 is not in the base32 alphabet
            compact[:-2] + "\u00c9" + compact[-1],  # not ASCII
        ],
    }


def _bundle_key(case: str) -> BundleKey:
    """The bundle key of the Argon2id vector named ``case``."""
    secret = {name: secret for name, secret, _ in ARGON2_CASES}[case]
    salt = fixed_bytes(f"salt/{case}", 16)
    return derive_keys(secret, salt, Argon2Limits.TEST_MINIMUM).bundle_key


def _bundle_sections() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    vectors = []
    blobs = {}
    for party, case in (("alice", "ascii-passphrase"), ("bob", "recovery-key")):
        keys = PARTIES[party]
        bundle_key = _bundle_key(case)
        nonce = fixed_bytes(f"bundle-nonce/{party}", 24)
        blob = _seal_bundle_with_nonce(keys, bundle_key, nonce)
        blobs[party] = (blob, bundle_key)
        vectors.append(
            {
                "name": f"{party}-under-{case}",
                "bundle_key": bundle_key.raw.hex(),
                "nonce": nonce.hex(),
                "encryption_secret": keys.encryption_secret.hex(),
                "signing_seed": keys.signing_seed.hex(),
                "blob": blob.hex(),
            }
        )
    blob, bundle_key = blobs["alice"]
    wrong_key = blobs["bob"][1]
    failures = [
        ("wrong-key", "alice's bundle with bob's bundle key", blob, wrong_key),
        ("tampered-ciphertext", "one bit of the ciphertext flipped", _flip(blob, 30), bundle_key),
        ("tampered-tag", "one bit of the Poly1305 tag flipped", _flip(blob, -1), bundle_key),
        ("tampered-nonce", "one bit of the nonce flipped", _flip(blob, 1), bundle_key),
        ("unknown-version", "version byte 0x02", b"\x02" + blob[1:], bundle_key),
        ("truncated", "last byte missing", blob[:-1], bundle_key),
    ]
    return vectors, [
        {
            "name": name,
            "description": description,
            "blob": data.hex(),
            "bundle_key": key.raw.hex(),
            "expect": "BundleError",
        }
        for name, description, data, key in failures
    ]


def _flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    mutable = bytearray(data)
    mutable[index] ^= mask
    return bytes(mutable)


def _header_sections() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    headers = [
        (
            "e2e-unicode",
            make_header(
                size=1234,
                envelope_id="01JDX8Q7ZK3M4N5P6Q7R8S9T0V",
                thread_id="01JDX8Q7ZK3M4N5P6Q7R8S9T0W",
                sender="élodie.dupré@medecin.pli.test",
                recipients=("180017512345678@patient.pli.test", "secrétariat@ch-exemple.pli.test"),
                kind="prescription",
            ),
        ),
        (
            "gateway",
            make_header(
                size=0,
                signer=OPERATOR,
                gateway=GatewayInfo(peer="mx.ch-x.fr", tls="CN=mx.ch-x.fr,O=CH X"),
                kind="document",
                sender="labo@ch-x.fr",
            ),
        ),
        (
            "gateway-empty-identity",
            make_header(size=7, signer=OPERATOR, gateway=GatewayInfo(peer="", tls="")),
        ),
    ]
    vectors = [
        {
            "name": name,
            "fields": json.loads(header.to_bytes()),
            "canonical_text": header.to_bytes().decode(),
            "canonical": header.to_bytes().hex(),
            "header_hash": header_hash(header.to_bytes()).hex(),
        }
        for name, header in headers
    ]
    base = make_header(size=5).to_bytes().decode()
    document = json.loads(base)

    def variant(**changes: Any) -> str:
        return json.dumps({**document, **changes}, sort_keys=True, separators=(",", ":"))

    refused = [
        ("whitespace", base.replace(",", ", ")),
        ("keys-not-sorted", '{"v":1,' + base[1:].replace(',"v":1', "")),
        ("escaped-non-ascii", variant(**{"from": "\u00e9@pli.test"})),  # ensure_ascii escapes
        ("duplicate-key", base[:-1] + ',"v":1}'),
        ("unknown-key", variant(x=1)),
        (
            "missing-key",
            json.dumps(
                {k: v for k, v in document.items() if k != "thread"},
                sort_keys=True,
                separators=(",", ":"),
            ),
        ),
        ("version-2", variant(v=2)),
        ("size-float", base.replace('"size":5', '"size":5.0')),
        ("size-negative", variant(size=-1)),
        ("size-above-2^53-1", variant(size=2**53)),
        ("size-boolean", variant(size=True)),
        ("date-with-offset", variant(date="2026-11-22T10:00:00+00:00")),
        ("date-fractional-seconds", variant(date="2026-11-22T10:00:00.000Z")),
        ("date-impossible", variant(date="2026-02-30T10:00:00Z")),
        ("control-character", variant(**{"from": "a\nb@pli.test"})),
        ("recipients-not-a-list", variant(to="bob@pli.test")),
        ("recipient-not-a-string", variant(to=[1])),
        ("prov-unknown", variant(prov="smtp")),
        ("e2e-with-gw", variant(gw={"peer": "", "tls": ""})),
        ("gateway-without-gw", variant(prov="gateway")),
        ("gw-extra-key", variant(prov="gateway", gw={"peer": "", "tls": "", "x": ""})),
        ("sigkey-padded", variant(sigkey=document["sigkey"] + "=")),
        ("sigkey-short", variant(sigkey=document["sigkey"][:-1])),
        ("not-an-object", "[]"),
        ("nan", base.replace('"size":5', '"size":NaN')),
    ]
    failures: list[dict[str, Any]] = [
        {"name": name, "input_text": text, "input": text.encode().hex(), "expect": "EnvelopeError"}
        for name, text in refused
    ]
    failures.append(
        {
            "name": "invalid-utf8",
            "input_text": None,
            "input": (base[:-2].encode() + b"\xff}").hex(),
            "expect": "EnvelopeError",
        }
    )
    return vectors, failures


def _envelope_plan(
    name: str, signer: str, chunk_size: int, plaintext: bytes, gateway: GatewayInfo | None
) -> tuple[RoutingHeader, dict[str, Any]]:
    """The header of a case and every deterministic field of its vector."""
    keys = PARTIES[signer]
    header = make_header(
        size=len(plaintext),
        signer=keys,
        gateway=gateway,
        envelope_id=f"env-{name}",
        sender="labo@ch-exemple.fr" if gateway else "sophie.martin@medecin.pli.test",
        recipients=("bob@patient.pli.test", "sophie.martin@medecin.pli.test"),
    )
    header_bytes = header.to_bytes()
    digest = blake2b_256(plaintext)
    message = signature_message(header_hash(header_bytes), digest)
    full, rest = divmod(len(plaintext), chunk_size)
    frame_lengths = [chunk_size + 17] * full + ([rest + 17] if rest else []) + [64 + 17]
    return header, {
        "signer": signer,
        "signer_public_b64": keys.signing_public.b64(),
        "recipient": "bob",
        "recipient_encryption_secret": BOB.encryption_secret.hex(),
        "chunk_size": chunk_size,
        "header": header_bytes.hex(),
        "header_hash": header_hash(header_bytes).hex(),
        "plaintext": plaintext.hex(),
        "plaintext_digest": digest.hex(),
        "signature_message": message.hex(),
        "signature": keys.signing_key.sign(message).hex(),
        "frame_lengths": frame_lengths,
    }


def envelope_expectations() -> list[dict[str, Any]]:
    """The deterministic fields of every envelope vector, by case, in order."""
    expectations = []
    for name, description, signer, chunk_size, plaintext, gateway in ENVELOPE_CASES:
        _, fields = _envelope_plan(name, signer, chunk_size, plaintext, gateway)
        expectations.append({"name": name, "description": description, **fields})
    return expectations


def _envelope_sections() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    vectors = []
    sealed = {}
    for name, description, signer, chunk_size, plaintext, gateway in ENVELOPE_CASES:
        header, fields = _envelope_plan(name, signer, chunk_size, plaintext, gateway)
        envelope, result = seal_bytes(
            header,
            plaintext,
            signer=PARTIES[signer].signing_key,
            recipients=[BOB.encryption_public, ALICE.encryption_public],
            chunk_size=chunk_size,
        )
        sealed[name] = (envelope, result.slots[0])
        vectors.append(
            {
                "name": name,
                "description": description,
                **fields,
                "slot": result.slots[0].hex(),
                "envelope": envelope.hex(),
            }
        )
    return vectors, _envelope_failures(sealed)


def _envelope_failures(sealed: dict[str, tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    envelope, slot = sealed["three-chunks-gateway"]
    parts = split(envelope)
    frames = parts.frames
    plaintext = b"Subject: CR\r\n\r\nCompte rendu: normal.\r\n\r\n"
    other_slot = sealed["short-utf8"][1]

    def rebuilt(new_frames: list[bytes]) -> bytes:
        return parts.prefix + parts.header + parts.stream_header + b"".join(new_frames)

    tampered_header = parts.header.replace(
        b'"env-three-chunks-gateway"', b'"env-three-chunks-gatewaz"'
    )
    wrongly_signed, wrongly_signed_slot = forge(
        make_header(size=len(plaintext), signer=ALICE),
        plaintext,
        BOB.encryption_public,
        signer=CAROL.signing_key,
    )
    too_long, too_long_slot = forge(
        make_header(size=len(plaintext) - 1),
        plaintext,
        BOB.encryption_public,
        signer=ALICE.signing_key,
        actual_size=len(plaintext),
    )
    short_signature, short_signature_slot = forge(
        make_header(size=len(plaintext)),
        plaintext,
        BOB.encryption_public,
        signer=FakeSigner(ALICE.signing_key, signature=bytes(63)),
    )
    cases: list[tuple[str, str, bytes, bytes, MailboxKeys, str, str]] = [
        ("bad-magic", "magic PLIX", b"PLIX" + envelope[4:], slot, BOB, "EnvelopeError", "prefix"),
        (
            "unknown-version",
            "version byte 2",
            envelope[:4] + b"\x02" + envelope[5:],
            slot,
            BOB,
            "EnvelopeError",
            "prefix",
        ),
        (
            "header-too-long",
            "header_len 65537",
            envelope[:5] + struct.pack(">I", 65537) + envelope[9:],
            slot,
            BOB,
            "EnvelopeError",
            "prefix",
        ),
        (
            "tampered-header",
            "one character of the envelope id changed; still canonical JSON",
            with_header(envelope, tampered_header),
            slot,
            BOB,
            "EnvelopeError",
            "frame",
        ),
        (
            "header-not-canonical",
            "the same header with a space after the first comma",
            with_header(envelope, parts.header.replace(b",", b", ", 1)),
            slot,
            BOB,
            "EnvelopeError",
            "header",
        ),
        (
            "wrong-recipient",
            "a slot for bob opened with carol's keys",
            envelope,
            slot,
            CAROL,
            "EnvelopeError",
            "slot",
        ),
        (
            "slot-of-another-envelope",
            "bob's slot of short-utf8 used on this envelope",
            envelope,
            other_slot,
            BOB,
            "EnvelopeError",
            "frame",
        ),
        (
            "tampered-stream-header",
            "one bit of the secretstream header flipped",
            _flip(envelope, len(parts.prefix) + len(parts.header)),
            slot,
            BOB,
            "EnvelopeError",
            "frame",
        ),
        (
            "tampered-frame",
            "one bit of the second data frame's ciphertext flipped",
            rebuilt([frames[0], _flip(frames[1], 10), *frames[2:]]),
            slot,
            BOB,
            "EnvelopeError",
            "frame",
        ),
        (
            "reordered-frames",
            "first two data frames swapped",
            rebuilt([frames[1], frames[0], *frames[2:]]),
            slot,
            BOB,
            "EnvelopeError",
            "frame",
        ),
        (
            "dropped-data-frame",
            "second data frame removed",
            rebuilt([frames[0], *frames[2:]]),
            slot,
            BOB,
            "EnvelopeError",
            "frame",
        ),
        (
            "truncated-no-final",
            "final frame removed",
            rebuilt(frames[:-1]),
            slot,
            BOB,
            "EnvelopeError",
            "structure",
        ),
        (
            "truncated-mid-frame",
            "cut in the middle of the final frame",
            envelope[:-40],
            slot,
            BOB,
            "EnvelopeError",
            "structure",
        ),
        (
            "trailing-data",
            "one zero byte after the final frame",
            envelope + b"\x00",
            slot,
            BOB,
            "EnvelopeError",
            "structure",
        ),
        (
            "frame-too-long",
            "a frame length of 1 MiB + 18",
            rebuilt([struct.pack(">I", 1048576 + 18) + frames[0][4:], *frames[1:]]),
            slot,
            BOB,
            "EnvelopeError",
            "structure",
        ),
        (
            "size-mismatch",
            "header.size is one less than the plaintext (validly signed)",
            too_long,
            too_long_slot,
            BOB,
            "EnvelopeError",
            "structure",
        ),
        (
            "final-frame-not-a-signature",
            "a final frame of 63 + 17 bytes",
            short_signature,
            short_signature_slot,
            BOB,
            "EnvelopeError",
            "structure",
        ),
        (
            "wrong-signer",
            "header.sigkey is alice's key, the signature is carol's",
            wrongly_signed,
            wrongly_signed_slot,
            BOB,
            "SignatureError",
            "signature",
        ),
    ]
    return [
        {
            "name": name,
            "description": description,
            "envelope": data.hex(),
            "slot": used_slot.hex(),
            "recipient_encryption_secret": keys.encryption_secret.hex(),
            "expect": expect,
            "stage": stage,
        }
        for name, description, data, used_slot, keys, expect, stage in cases
    ]


def deterministic_sections() -> dict[str, Any]:
    """Every section that must come out identical on every run."""
    bundles, bundle_failures = _bundle_sections()
    headers, header_failures = _header_sections()
    return {
        "keys": _keys_section(),
        "argon2id": _argon2_section(),
        "recovery_keys": _recovery_keys_section(),
        "bundles": bundles,
        "bundle_failures": bundle_failures,
        "headers": headers,
        "header_failures": header_failures,
    }


def build() -> dict[str, Any]:
    envelopes, envelope_failures = _envelope_sections()
    return {
        "format": "pli-envelope-v1 test vectors",
        "specification": "docs/envelope.md",
        "generator": "python -m tests.crypto.make_vectors",
        "encoding": (
            "byte strings are lowercase hex; fields ending in _text are Unicode strings; "
            "fields ending in _b64 are base64url without padding"
        ),
        **deterministic_sections(),
        "envelopes": envelopes,
        "envelope_failures": envelope_failures,
    }


def write(path: Path = VECTORS_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(build(), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    write()
