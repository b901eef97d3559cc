"""Hostile and broken input: each gets BAD/NO or a clean close, memory stays bounded, and
another session, logged in meanwhile, keeps working."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from tests.gateway_imap.conftest import Gateway, message
from tests.gateway_imap.rawclient import Raw


@pytest.fixture
async def bystander(gateway: Gateway) -> AsyncIterator[Raw]:
    """A logged-in session that must stay undisturbed by the others' input."""
    carol, password = await gateway.person("carol")
    bob, _ = await gateway.person("bob")
    await gateway.send(bob, carol, message("for carol"))
    client = await Raw.connect(gateway.imaps_port, gateway.client_context())
    assert (await client.command(f'LOGIN "{carol}" "{password}"'))[-1].startswith(b"t1 OK")
    assert b"* 1 EXISTS\r\n" in await client.command("SELECT INBOX")
    yield client
    lines = await client.command("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert lines[-1].split()[1] == b"OK"
    assert b"Subject: for carol" in b"".join(lines)
    await client.close()


async def test_pre_auth_huge_literal_is_refused_without_allocating(
    gateway: Gateway, bystander: Raw
) -> None:
    tracemalloc.start()
    try:
        client = await Raw.connect(gateway.port)
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await client.send(b"a1 LOGIN {200000000}\r\n")
        reply = await client.line()
        assert reply.startswith(b"a1 BAD"), reply
        # The synchronising literal was refused: the client never got "+", and the session
        # goes on.
        assert (await client.command("NOOP"))[-1].startswith(b"t1 OK")
        # The non-synchronising form: its bytes are on their way, so the server closes.
        await client.send(b"a2 LOGIN {200000000+}\r\n" + b"x" * 65536)
        reply = await client.line()
        assert reply.startswith(b"a2 BAD"), reply
        assert await client.closed()
        peak = tracemalloc.get_traced_memory()[1]
        await client.close()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 4 * 1024 * 1024, peak - baseline


async def test_over_limit_literal_after_login_is_refused(gateway: Gateway) -> None:
    alice, password = await gateway.person("alice")
    client = await Raw.connect(gateway.imaps_port, gateway.client_context())
    await client.command(f'LOGIN "{alice}" "{password}"')
    await client.send(b"a1 SEARCH TEXT {10000000}\r\n")
    assert (await client.line()).startswith(b"a1 BAD")
    await client.send(b"a2 APPEND INBOX {999999999}\r\n")
    reply = await client.line()
    assert reply.startswith(b"a2 BAD") and b"[TOOBIG]" in reply, reply
    assert (await client.command("NOOP"))[-1].startswith(b"t2 OK")
    await client.close()


async def test_megabyte_command_lines_get_bad_and_the_session_goes_on(
    gateway: Gateway, bystander: Raw
) -> None:
    client = await Raw.connect(gateway.port)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(3):
            await client.send(b"big NOOP " + b"A" * (1024 * 1024) + b"\r\n")
            reply = await client.line()
            assert reply.startswith(b"big BAD"), reply[:80]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - baseline < 3 * 1024 * 1024, peak - baseline
    assert (await client.command("CAPABILITY"))[-1].startswith(b"t1 OK")
    # A line with a literal announcement at its end, over the limit: the literal's bytes
    # would be read as commands, so the session is closed instead.
    await client.send(b"big2 LOGIN " + b"A" * (1024 * 1024) + b" {5+}\r\nhello\r\n")
    assert (await client.line()).startswith(b"big2 BAD")
    assert await client.closed()
    await client.close()


async def test_syntax_errors_get_bad_and_the_session_goes_on(
    gateway: Gateway, bystander: Raw
) -> None:
    alice, password = await gateway.person("alice")
    client = await Raw.connect(gateway.imaps_port, gateway.client_context())
    await client.command(f'LOGIN "{alice}" "{password}"')
    await client.command("SELECT INBOX")
    for bad in (
        "FETCH 1 (FLAGS",
        "FETCH 1 FLAGS)",
        "FETCH 1 " + "(" * 200 + ")" * 200,
        "FETCH 1 BODY[1.2.HEADER",
        "SEARCH " + "(" * 50,
        'LOGIN "unterminated',
        "STORE 1 +FLAGS (\\Recent)",
        "FETCH 99 FLAGS",
        "FETCH 0:1 FLAGS",
        "NOSUCHCOMMAND",
        "UID NOSUCH 1",
        "SEARCH CHARSET UTF-8",
        "SEARCH SINCE 32-Foo-2020",
        "LIST",
        "",
    ):
        lines = await client.command(bad)
        assert lines[-1].split()[1] == b"BAD", (bad[:40], lines[-1])
    lines = await client.command("SEARCH CHARSET KOI8-R ALL")
    assert lines[-1].split()[1] == b"NO" and b"BADCHARSET" in lines[-1]
    assert (await client.command("NOOP"))[-1].split()[1] == b"OK"
    await client.close()


async def test_invalid_mailbox_names_and_modified_utf7(gateway: Gateway, bystander: Raw) -> None:
    alice, password = await gateway.person("alice")
    client = await Raw.connect(gateway.imaps_port, gateway.client_context())
    await client.command(f'LOGIN "{alice}" "{password}"')
    for name in (
        b'"&Jjo"',  # unterminated shift
        b'"&U,BTFw-&ZeVnLIqe-"',  # two adjacent shifts
        b'"&AGE-"',  # printable ASCII in base64
        b'"&2D3-"',  # a lone surrogate
        b'"&ZeVnLIqe!-"',  # outside the base64 alphabet
        b'"a//b"',  # empty hierarchy level
        b'"a*b"',  # a wildcard
        b"{4+}\r\n\xc3\xa9t\xc3",  # 8-bit
    ):
        lines = await client.command(b"CREATE " + name)
        assert lines[-1].split()[1] in (b"NO", b"BAD"), (name, lines[-1])
    lines = await client.command('SELECT "&Jjo"')
    assert lines[-1].split()[1] in (b"NO", b"BAD")
    lines = await client.command('CREATE "Re&AOc-us/&ZeVnLIqe-"')
    assert lines[-1].split()[1] == b"OK", lines
    lines = await client.command('LIST "" "Re&AOc-us/*"')
    assert b'"Re&AOc-us/&ZeVnLIqe-"' in b"".join(lines)
    await client.close()


async def test_ten_thousand_pipelined_commands(gateway: Gateway, bystander: Raw) -> None:
    alice, password = await gateway.person("alice")
    client = await Raw.connect(gateway.imaps_port, gateway.client_context())
    await client.command(f'LOGIN "{alice}" "{password}"')
    await client.command("SELECT INBOX")
    count = 10_000
    batch = b"".join(b"p%d NOOP\r\n" % i for i in range(count))
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        sender = asyncio.create_task(client.send(batch))
        answered = 0
        while answered < count:
            line = await client.line()
            if line.startswith(b"p"):
                assert line.split()[1] == b"OK"
                answered += 1
            # Meanwhile the bystander is served.
            if answered == count // 2:
                lines = await bystander.command("NOOP")
                assert lines[-1].split()[1] == b"OK"
        await sender
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - baseline < 8 * 1024 * 1024, peak - baseline
    await client.close()


async def test_a_slow_client_is_logged_out_and_login_failures_are_slowed(
    tmp_path: object,
) -> None:
    from pathlib import Path

    from gateway_imap.auth import ThrottleSettings
    from gateway_imap.session import SessionSettings
    from tests.gateway_imap.conftest import start_gateway

    assert isinstance(tmp_path, Path)
    started = await start_gateway(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'pli.db'}",
        session=SessionSettings(login_timeout=2.0, idle_timeout=60),
        throttle=ThrottleSettings(base_delay=0.01, max_delay=0.05, max_failures=4),
    )
    try:
        silent = await Raw.connect(started.port)
        assert await silent.closed(timeout=5)
        await silent.close()
        alice, password = await started.person("alice")
        client = await Raw.connect(started.imaps_port, started.client_context())
        for _ in range(4):
            lines = await client.command(f'LOGIN "{alice}" "wrong"')
            assert b"[AUTHENTICATIONFAILED]" in lines[-1]
        assert started.server.authenticator.throttle.failures(str(alice), "127.0.0.1") == 4
        lines = await client.command(f'LOGIN "{alice}" "{password}"')
        assert b"NO [UNAVAILABLE]" in lines[-1], lines
        await client.close()
    finally:
        await started.server.close(grace=2)
        await started.store.close()


async def test_commands_pipelined_after_starttls_in_clear_are_dropped(gateway: Gateway) -> None:
    """STARTTLS command injection: what was sent in clear behind STARTTLS is never run."""
    alice, password = await gateway.person("alice")
    client = await Raw.connect(gateway.port)
    await client.send(b"s1 STARTTLS\r\ninj LOGIN x y\r\n")
    assert (await client.line()).startswith(b"s1 OK")
    await client.writer.start_tls(gateway.client_context(), server_hostname="127.0.0.1")
    lines = await client.command(f'LOGIN "{alice}" "{password}"')
    assert all(not line.startswith(b"inj ") for line in lines), lines
    assert lines[-1].split()[1] == b"OK"
    await client.close()


async def test_a_client_that_stops_reading_is_dropped(tmp_path: object) -> None:
    from pathlib import Path

    from gateway_imap.session import SessionSettings
    from tests.gateway_imap.conftest import start_gateway

    assert isinstance(tmp_path, Path)
    started = await start_gateway(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'pli.db'}",
        session=SessionSettings(login_timeout=10, idle_timeout=1.0),
    )
    try:
        alice, password = await started.person("alice")
        bob, _ = await started.person("bob")
        big = message("big", "x" * 1_000_000 + "\r\n")
        for _ in range(3):
            await started.send(bob, alice, big)
        client = await Raw.connect(started.imaps_port, started.client_context())
        await client.command(f'LOGIN "{alice}" "{password}"')
        await client.command("SELECT INBOX")
        # Ask for every body many times over and never read the answer.
        await client.send(b"".join(b"f%d FETCH 1:* BODY.PEEK[]\r\n" % i for i in range(50)))
        deadline = asyncio.get_running_loop().time() + 10
        while started.server.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
        assert started.server.sessions == 0
        client.writer.transport.abort()
    finally:
        await started.server.close(grace=2)
        await started.store.close()
