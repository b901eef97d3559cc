"""A real Kannel SMS gateway for the tests: Debian's ``bearerbox`` and ``smsbox``.

Pli talks to smsbox's sendsms HTTP interface exactly as in production. Behind bearerbox,
instead of an operator's SMS centre, sits Kannel's *fake* SMSC: bearerbox listens, a client
connects, and every message bearerbox routes to it arrives as one line,
``<from> <to> text <UTF-8 text>`` or ``<from> <to> ucs-2 <form-encoded UTF-16-BE>`` (Kannel's
``gw/smsc/smsc_fake.c``); a concatenated part is ``… udh <header> data <payload>``.
:class:`PhoneNetwork` is that client: the phones the tests read their SMS from.

Kannel takes its ports from its configuration, so they are drawn free just before it starts
(all on 127.0.0.1), and every start has its own password and spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import subprocess
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")


@dataclass(frozen=True, slots=True)
class Sms:
    sender: str
    to: str
    coding: str
    text: str


@dataclass
class PhoneNetwork:
    """What bearerbox handed to the (fake) SMS centre, in order."""

    received: list[Sms] = field(default_factory=list)

    def to(self, number: str) -> list[Sms]:
        return [sms for sms in self.received if sms.to == number]

    async def wait_for(self, number: str, already: int = 0) -> Sms:
        for _ in range(400):
            arrived = self.to(number)
            if len(arrived) > already:
                return arrived[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no SMS reached {number}")

    async def read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            sender, to, coding, payload = line.rstrip(b"\n").split(b" ", 3)
            if coding == b"text":
                text = payload.decode("utf-8")
            elif coding == b"ucs-2":
                raw = urllib.parse.unquote_to_bytes(payload.replace(b"+", b"%20"))
                text = raw.decode("utf-16-be")
            else:  # a part of a concatenated message: kept as it came, tests refuse it
                text = payload.decode("ascii", "replace")
            self.received.append(Sms(sender.decode(), to.decode(), coding.decode(), text))


@dataclass(frozen=True, slots=True)
class KannelGateway:
    url: str
    """smsbox's sendsms interface, as ``sms_gateway_url`` takes it."""
    username: str
    password: str
    password_file: Path
    phones: PhoneNetwork


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(200):
        assert process.poll() is None, f"Kannel exited: {log.read_text(errors='replace')[-2000:]}"
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"Kannel is not listening on {port}")


def _config(directory: Path, ports: dict[str, int], username: str, password: str) -> str:
    return f"""
group = core
admin-port = {ports["admin"]}
admin-interface = 127.0.0.1
admin-password = {secrets.token_urlsafe(16)}
smsbox-port = {ports["smsbox"]}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{directory / "bearerbox.log"}"
log-level = 1
store-type = spool
store-location = "{directory / "spool"}"

group = smsc
smsc = fake
smsc-id = fake
host = 127.0.0.1
port = {ports["smsc"]}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {ports["smsbox"]}
sendsms-port = {ports["sendsms"]}
sendsms-interface = 127.0.0.1
log-file = "{directory / "smsbox.log"}"
log-level = 1

group = sendsms-user
username = {username}
password = {password}
concatenation = true
max-messages = 4
"""


@contextlib.asynccontextmanager
async def kannel_gateway(directory: Path) -> AsyncIterator[KannelGateway]:
    assert BEARERBOX.exists(), "Debian's kannel is missing: see scripts/debian-packages"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spool").mkdir()
    ports = {name: _free_port() for name in ("admin", "smsbox", "smsc", "sendsms")}
    username, password = "pli", secrets.token_urlsafe(16)
    password_file = directory / "sms-password"
    password_file.write_text(password + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    config = directory / "kannel.conf"
    config.write_text(_config(directory, ports, username, password), encoding="utf-8")
    config.chmod(0o600)
    phones = PhoneNetwork()
    processes: list[subprocess.Popen[bytes]] = []
    reading: asyncio.Task[None] | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        with (directory / "bearerbox.out").open("wb") as output:
            processes.append(
                subprocess.Popen([BEARERBOX, config], stdout=output, stderr=subprocess.STDOUT)
            )
        await _listening(ports["smsc"], processes[0], directory / "bearerbox.out")
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["smsc"])
        reading = asyncio.create_task(phones.read(reader))
        with (directory / "smsbox.out").open("wb") as output:
            processes.append(
                subprocess.Popen([SMSBOX, config], stdout=output, stderr=subprocess.STDOUT)
            )
        await _listening(ports["sendsms"], processes[1], directory / "smsbox.out")
        yield KannelGateway(
            url=f"http://127.0.0.1:{ports['sendsms']}/cgi-bin/sendsms",
            username=username,
            password=password,
            password_file=password_file,
            phones=phones,
        )
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if reading is not None:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await reading
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
