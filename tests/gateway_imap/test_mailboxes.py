"""Folders over IMAP (LIST variants, STATUS, CREATE/RENAME/DELETE, SUBSCRIBE), APPEND
limits, ESEARCH, and the keys forgotten at logout and at the idle timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

from messaging.mailbox_session import MailboxSession
from tests.gateway_imap.conftest import Gateway, message, start_gateway
from tests.gateway_imap.rawclient import Raw


async def login(gateway: Gateway, name: str) -> Raw:
    address, password = await gateway.person(name)
    client = await Raw.connect(gateway.imaps_port, gateway.client_context())
    lines = await client.command(f'LOGIN "{address}" "{password}"')
    assert lines[-1].split()[1] == b"OK"
    assert b"[CAPABILITY IMAP4rev1" in lines[-1]
    return client


async def test_list_status_and_folder_commands(gateway: Gateway) -> None:
    client = await login(gateway, "alice")
    for name in ("Dossiers", "Dossiers/Patients", "Dossiers/Patients/Dupont"):
        assert (await client.command(f'CREATE "{name}"'))[-1].split()[1] == b"OK"
    assert b"[ALREADYEXISTS]" in (await client.command('CREATE "Dossiers"'))[-1]
    lines = b"".join(await client.command('LIST "" "*"'))
    assert b'(\\HasNoChildren) "/" "INBOX"' in lines
    assert b'(\\HasNoChildren \\Sent) "/" "Sent"' in lines
    assert b'(\\HasChildren) "/" "Dossiers/Patients"' in lines
    lines = b"".join(await client.command('LIST "" "Dossiers/%"'))
    assert b'"Dossiers/Patients"' in lines and b"Dupont" not in lines
    lines = b"".join(await client.command('LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES))'))
    assert b"INBOX" not in lines and b"\\Trash" in lines and b'STATUS "Trash" (MESSAGES 0)' in lines
    assert (await client.command('SUBSCRIBE "Dossiers/Patients"'))[-1].split()[1] == b"OK"
    lines = b"".join(await client.command('LIST (SUBSCRIBED) "" "*"'))
    assert b'\\Subscribed) "/" "Dossiers/Patients"' in lines
    assert b'"/" "Dossiers/Patients"' in b"".join(await client.command('LSUB "" "*"'))
    assert (await client.command('RENAME "Dossiers" "Archives/Dossiers"'))[-1].split()[1] == b"OK"
    lines = b"".join(await client.command('LIST "" "Archives/*"'))
    assert b'"Archives/Dossiers/Patients/Dupont"' in lines
    assert b'(\\Noselect \\HasChildren) "/" "Archives"' in b"".join(
        await client.command('LIST "" "%"')
    )
    assert b"[NONEXISTENT]" in (await client.command('DELETE "Nowhere"'))[-1]
    assert (await client.command('DELETE "INBOX"'))[-1].split()[1] == b"NO"
    status = await client.command(
        'STATUS "INBOX" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)'
    )
    assert b'* STATUS "INBOX" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY' in status[0]
    assert b"[TRYCREATE]" in (await client.command("APPEND Nowhere {3+}\r\nabc"))[-1]
    await client.close()


async def test_esearch_and_append_with_flags_and_date(gateway: Gateway) -> None:
    client = await login(gateway, "alice")
    for i in range(4):
        data = message(f"a{i}", "x\r\n")
        lines = await client.command(
            b'APPEND INBOX (\\Flagged) " 1-Nov-2026 10:00:00 +0100" {%d+}\r\n' % len(data) + data
        )
        assert b"[APPENDUID " in lines[-1]
    await client.command("SELECT INBOX")
    lines = await client.command("SEARCH RETURN (MIN MAX COUNT) FLAGGED SINCE 1-Nov-2026")
    assert lines[0] == b'* ESEARCH (TAG "t%d") MIN 1 MAX 4 COUNT 4\r\n' % client.counter
    lines = await client.command("UID SEARCH RETURN () BEFORE 1-Nov-2026")
    assert lines[0] == b'* ESEARCH (TAG "t%d") UID\r\n' % client.counter
    lines = await client.command("FETCH 1 (INTERNALDATE)")
    assert b'INTERNALDATE " 1-Nov-2026 09:00:00 +0000"' in lines[0]  # the same instant
    await client.close()


def closed(mailbox: MailboxSession) -> bool:
    return mailbox.closed


def mailbox_of(gateway: Gateway) -> MailboxSession:
    [session] = gateway.server._sessions  # noqa: SLF001 - the test looks at what the server holds
    mailbox = session._mailbox  # noqa: SLF001
    assert mailbox is not None
    return mailbox


async def test_keys_are_forgotten_at_logout_and_at_the_idle_timeout(tmp_path: Path) -> None:
    from gateway_imap.session import SessionSettings

    gateway = await start_gateway(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'pli.db'}",
        session=SessionSettings(login_timeout=10, idle_timeout=1.0),
    )
    try:
        client = await login(gateway, "alice")
        mailbox = mailbox_of(gateway)
        assert not closed(mailbox)
        await client.command("LOGOUT")
        assert await client.closed()
        assert closed(mailbox)
        await client.close()

        client = await login(gateway, "bob")
        mailbox = mailbox_of(gateway)
        await asyncio.sleep(1.5)
        assert b"BYE Autologout" in await client.line()
        assert closed(mailbox)
        await client.close()
    finally:
        await gateway.server.close(grace=2)
        await gateway.store.close()


async def test_metadata_commands_never_decrypt_and_body_fetches_mark_seen(
    gateway: Gateway,
) -> None:
    alice, password = await gateway.person("alice")
    bob, _ = await gateway.person("bob")
    for i in range(3):
        await gateway.send(bob, alice, message(f"m{i}"))
    client = await Raw.connect(gateway.imaps_port, gateway.client_context())
    await client.command(f'LOGIN "{alice}" "{password}"')
    mailbox = mailbox_of(gateway)
    for command in (
        "ENABLE CONDSTORE",
        "SELECT INBOX",
        "STATUS Sent (MESSAGES UNSEEN SIZE)",
        "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)",
        "SEARCH UNSEEN LARGER 10 UID 1:* SINCE 1-Jan-2020",
        "STORE 1 +FLAGS (\\Flagged)",
        "COPY 1:2 Archive",
        "FETCH 1:* FAST",
    ):
        assert (await client.command(command))[-1].split()[1] == b"OK", command
    assert mailbox.cache_stats.misses == 0
    lines = await client.command("FETCH 2 (BODY[TEXT])")
    assert b"FLAGS (\\Seen)" in lines[0] and b"Bonjour." in lines[0]
    assert mailbox.cache_stats.misses == 1
    lines = await client.command("SEARCH SEEN")
    assert lines[0] == b"* SEARCH 2\r\n"
    await client.close()
