"""`pli serve`: prints where each front listens, logs JSON lines, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx

from tests.support.cli import Pli


def start(pli: Pli) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = pli.env() | {
        "PLI_HTTP_PORT": "0",
        "PLI_SMTP_PORT": "0",
        "PLI_SUBMISSION_PORT": "0",
        "PLI_SUBMISSIONS_PORT": "0",
    }
    env = pli.env() | {"PLI_HTTP_PORT": "0"}
    env |= {"PLI_IMAP_PORT": "0", "PLI_IMAPS_PORT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    fronts: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith("ready"):
            break
        name, where = line.split(maxsplit=1)
        fronts[name] = where.strip()
    return proc, fronts


def test_serve_prints_its_fronts_and_stops_cleanly_on_sigterm(pli: Pli):
    proc, fronts = start(pli)
    try:
        assert fronts["http"].startswith("http://127.0.0.1:")
        response = httpx.get(f"{fronts['http']}/healthz", timeout=10)
        assert response.json() == {"status": "ok"}
        missing = httpx.get(f"{fronts['http']}/nope", timeout=10)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    entries = [json.loads(line) for line in err.splitlines() if line.strip()]
    messages = [e["msg"] for e in entries]
    assert "stopped" in messages
    assert any(e.get("front") == "http" for e in entries)


def test_serve_refuses_unsafe_settings_outside_demo_mode(tmp_path):
    pli = Pli(home=tmp_path / "prod", database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db")
    pli.run("init", "--domain", "pli.test")
    result = pli.run("serve", check=False)  # FAST_KDF limits are unsafe outside demo
    assert result.returncode == 1
    assert "unsafe settings" in result.stderr


def test_a_local_mailbox_is_served_with_a_key_proof_the_client_verifies(pli: Pli):
    import base64

    from crypto import SigningKey
    from messaging import Address
    from messaging.transparency import KeyProof, KeyVerifier
    from messaging.verified_keys import VerifiedKeys

    pli.run("demo")
    proc, fronts = start(pli)
    try:
        address = "sophie.martin@medecin.pli.test"
        body = httpx.get(f"{fronts['http']}/v1/directory/mailboxes/{address}", timeout=10).json()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    log_key = SigningKey.from_seed((pli.home / "secrets" / "log.key").read_bytes()).public

    def raw(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    keys = VerifiedKeys(
        Address.parse(address),
        raw(body["keys"]["encryption_key"]),
        raw(body["keys"]["signing_key"]),
        body["proof"]["leaf_index"],
    )
    verifier = KeyVerifier(log_key, "pli.test/keys/v1")
    verifier.verify(Address.parse(address), keys, KeyProof.from_json(body["proof"]))
    assert verifier.trusted_head is not None
