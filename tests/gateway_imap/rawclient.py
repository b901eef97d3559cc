"""A bare IMAP client for the tests: send exact bytes, read lines and literals."""

from __future__ import annotations

import asyncio
import re
import ssl

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class Raw:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.counter = 0

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext | None = None) -> Raw:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, limit=64 * 1024 * 1024
        )
        client = cls(reader, writer)
        greeting = await client.line()
        assert greeting.startswith(b"* OK"), greeting
        return client

    async def line(self, timeout: float = 20) -> bytes:
        """One response line with its literals inlined."""
        data = await asyncio.wait_for(self.reader.readuntil(b"\n"), timeout)
        while (match := _LITERAL.search(data)) is not None:
            data += await asyncio.wait_for(self.reader.readexactly(int(match.group(1))), timeout)
            data += await asyncio.wait_for(self.reader.readuntil(b"\n"), timeout)
        return data

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, text: bytes | str, timeout: float = 20) -> list[bytes]:
        """Send a tagged command; every response line up to and including its tagged one."""
        self.counter += 1
        tag = f"t{self.counter}".encode()
        payload = text.encode() if isinstance(text, str) else text
        await self.send(tag + b" " + payload + b"\r\n")
        return await self.until(tag, timeout)

    async def until(self, tag: bytes, timeout: float = 20) -> list[bytes]:
        lines = []
        while True:
            line = await self.line(timeout)
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    async def starttls(self, context: ssl.SSLContext) -> None:
        lines = await self.command("STARTTLS")
        assert lines[-1].split()[1] == b"OK", lines
        await self.writer.start_tls(context, server_hostname="127.0.0.1")

    async def closed(self, timeout: float = 10) -> bool:
        """True when the server ends the connection (reading whatever it still sends)."""
        try:
            while True:
                chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not chunk:
                    return True
        except (ConnectionError, ssl.SSLError):
            return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            return
