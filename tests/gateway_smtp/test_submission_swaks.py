"""Debian's swaks, a real process, submits on 587 (STARTTLS) and 465 (implicit TLS)."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from messaging import MessageKind
from tests.gateway_smtp.conftest import DOCTOR, PATIENT, SmtpWorld


async def swaks(world: SmtpWorld, *args: str) -> tuple[int, str]:
    binary = shutil.which("swaks")
    assert binary, "swaks is installed by scripts/test (scripts/debian-packages)"
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--server",
        "127.0.0.1",
        "--tls-ca-path",
        str(world.certs.ca.cert_path),
        "--tls-verify",
        "--ehlo",
        "client.pli.test",
        "--timeout",
        "30",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("port", "tls", "mechanism"),
    [("submission", "--tls", "PLAIN"), ("submissions", "--tls-on-connect", "LOGIN")],
)
async def test_swaks_submits_on_587_and_465(
    world: SmtpWorld, port: str, tls: str, mechanism: str
) -> None:
    code, out = await swaks(
        world,
        "--port",
        str(world.port(port)),
        tls,
        "--auth",
        mechanism,
        "--auth-user",
        str(DOCTOR),
        "--auth-password",
        world.app_passwords[DOCTOR],
        "--from",
        str(DOCTOR),
        "--to",
        str(PATIENT),
        "--header",
        f"Subject: via swaks {port}",
        "--body",
        "Bonjour, voici le compte rendu.",
    )
    assert code == 0, out
    assert "<~  235 2.7.0 Authentication successful" in out
    assert "<~  250 2.0.0 OK queued as " in out
    [record] = await world.inbox(PATIENT)
    assert record.kind is MessageKind.NOTE
    opened = await world.opened(PATIENT, record.uid)
    assert f"Subject: via swaks {port}".encode() in opened.raw


async def test_swaks_gets_nothing_before_tls(world: SmtpWorld) -> None:
    port = str(world.port("submission"))
    base = ("--port", port, "--from", str(DOCTOR), "--to", str(PATIENT))
    code, out = await swaks(world, *base)
    assert code != 0
    assert "<** 530 5.7.0 Must issue a STARTTLS command first" in out
    # AUTH is not even offered in clear: swaks gives up before sending a password.
    code, out = await swaks(
        world,
        *base,
        "--auth",
        "PLAIN",
        "--auth-user",
        str(DOCTOR),
        "--auth-password",
        world.app_passwords[DOCTOR],
    )
    assert code != 0
    assert " ~> AUTH" not in out and " -> AUTH" not in out
    assert await world.everything() == []


async def test_swaks_with_a_forged_sender_is_refused(world: SmtpWorld) -> None:
    code, out = await swaks(
        world,
        "--port",
        str(world.port("submissions")),
        "--tls-on-connect",
        "--auth",
        "PLAIN",
        "--auth-user",
        str(DOCTOR),
        "--auth-password",
        world.app_passwords[DOCTOR],
        "--from",
        "chef@medecin.pli.test",
        "--to",
        str(PATIENT),
    )
    assert code != 0
    assert "553 5.7.1 Sender address not owned by the authenticated user" in out
    assert await world.everything() == []
