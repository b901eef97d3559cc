"""``pli api-client create|list|rotate|revoke`` with the real command, and ``pli serve``
serving the application API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.cli import Pli

APP = "lis@ch-exemple.pli.test"


def fields(out: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in out.splitlines() if line.startswith("client_"))


def test_create_list_rotate_revoke_and_serve(tmp_path: Path, database_url: str):
    pli = Pli(home=tmp_path / "home", database_url=database_url)
    pli.run("init", "--demo", "--domain", "pli.test")
    pli.run("account", "create", APP, "--kind", "APP", stdin="app passphrase\n")
    created = fields(
        pli.run(
            "api-client",
            "create",
            APP,
            "--name",
            "SIL",
            "--scope",
            "send:note",
            "--scope",
            "read:mailbox",
            stdin="app passphrase\n",
        ).stdout
    )
    client_id, first = created["client_id"].strip(), created["client_secret"].strip()
    listing = pli.run("api-client", "list").stdout
    assert client_id in listing and "read:mailbox send:note" in listing
    wrong = pli.run(
        "api-client",
        "create",
        APP,
        "--name",
        "x",
        "--scope",
        "send:note",
        stdin="not it\n",
        check=False,
    )
    assert wrong.returncode == 1
    second = fields(pli.run("api-client", "rotate", client_id, stdin="app passphrase\n").stdout)
    second_secret = second["client_secret"].strip()

    proc = subprocess.Popen(
        [sys.executable, "-m", "pli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=pli.env() | {"PLI_HTTP_PORT": "0"},
    )
    try:
        url = ""
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not url:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("http "):
                url = line.split()[1]
        assert url, "pli serve did not print its http front"
        tokens = []
        for secret in (first, second_secret):
            response = httpx.post(
                f"{url}/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
                timeout=30,
            )
            assert response.status_code == 200, response.text
            tokens.append(response.json()["access_token"])
        token = tokens[-1]
        folders = httpx.get(
            f"{url}/v1/mailbox/folders", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert folders.status_code == 200
        assert "/v1/messages/notes" in httpx.get(f"{url}/openapi.json", timeout=30).text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0

    pli.run("api-client", "revoke", client_id)
    again = pli.run("api-client", "rotate", client_id, stdin="app passphrase\n", check=False)
    assert again.returncode == 1
    assert "no live API client" in again.stderr
    row = next(
        line for line in pli.run("api-client", "list").stdout.splitlines() if client_id in line
    )
    assert row.count(time.strftime("%Y-")) == 2  # created and revoked
