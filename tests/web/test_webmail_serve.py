"""`pli serve` serves the webmail and prints its address; in demo mode the demo patient
signs in, the one-time code going to the data directory's demo file (never elsewhere)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

import crypto
from tests.support.cli import Pli
from tests.support.webmail_world import b64, unb64

PATIENT = "185057800608491@patient.pli.test"


def start(pli: Pli) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # A long grace period: the test shows shutdown does not wait for it.
        env=pli.env() | {"PLI_HTTP_PORT": "0", "PLI_SHUTDOWN_GRACE_SECONDS": "120"},
    )
    fronts: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith("ready"):
            break
        # "name  where"; some fronts describe themselves in words ("relay  outbound queue, …").
        name, where = line.split(maxsplit=1)
        where = where.strip()
        fronts[name] = where
    return proc, fronts


def test_the_demo_patient_signs_in_to_the_webmail_of_pli_serve(tmp_path: Path, database_url: str):
    pli = Pli(home=tmp_path / "home", database_url=database_url)
    pli.run("init", "--demo", "--domain", "pli.test")
    seeded = pli.run("demo").stdout
    # The accounts table's row (the demo also prints the patient's access history).
    passphrase = next(line.split()[-1] for line in seeded.splitlines() if line.startswith(PATIENT))
    proc, fronts = start(pli)
    try:
        webmail = fronts["webmail"]
        assert webmail.endswith("/webmail/")
        codes = Path(fronts["demo-codes"])
        assert codes.parent == pli.home and "demo" in codes.name
        with httpx.Client(base_url=webmail.removesuffix("/webmail/"), timeout=30) as client:
            page = client.get("/webmail/")
            assert page.status_code == 200 and "app.js" in page.text
            parameters = client.post("/webmail/api/prelogin", json={"address": PATIENT}).json()
            derived = crypto.derive_keys(
                passphrase,
                unb64(parameters["salt"]),
                crypto.Argon2Limits(parameters["opslimit"], parameters["memlimit"]),
            )
            login = client.post(
                "/webmail/api/login",
                json={"address": PATIENT, "auth_key": b64(derived.auth_key.raw)},
            )
            assert login.status_code == 200, login.text
            code = codes.read_text().splitlines()[-1].split()[-1]
            assert codes.stat().st_mode & 0o077 == 0, "the demo code file is private"
            done = client.post(
                "/webmail/api/login/code", json={"ticket": login.json()["ticket"], "code": code}
            )
            assert done.status_code == 200
            client.headers["Cookie"] = f"pli_session={done.cookies['pli_session']}"
            listing = client.get("/webmail/api/messages").json()
            # What `pli demo` seeded: the doctor's messages (a note, a document, …).
            assert listing and {m["from"] for m in listing} == {"sophie.martin@medecin.pli.test"}
            # An open tab's event stream does not hold the shutdown back (grace is 120 s).
            with client.stream("GET", "/webmail/api/events") as stream:
                assert next(stream.iter_lines()) == ": open"
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0
