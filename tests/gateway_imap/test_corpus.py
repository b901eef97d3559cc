"""The corpus fetched section by section by imapclient (its own response parser), each
section's bytes and each BODYSTRUCTURE size checked against what the message was built
from, on one session that must survive every message."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import imapclient

from gateway_imap.provenance import header_length
from tests.gateway_imap.conftest import Gateway
from tests.gateway_imap.corpus import corpus, deep_nesting
from tests.gateway_imap.rawclient import Raw

PEER = "mx.ch-x.fr"
SENDER = "someone@ch-x.fr"


def navigate(structure: Any, numbers: list[int]) -> Any:  # noqa: ANN401 - imapclient's types
    def multipart(item: Any) -> bool:  # noqa: ANN401
        return isinstance(item[0], list | tuple)

    def parts(item: Any) -> list[Any]:  # noqa: ANN401
        # imapclient groups the parts of a top-level multipart in a list; nested ones
        # (inside message/rfc822) stay as leading tuples.
        if isinstance(item[0], list):
            return list(item[0])
        return list(itertools.takewhile(lambda p: isinstance(p, tuple), item))

    node = structure
    for i, number in enumerate(numbers):
        if multipart(node):
            node = parts(node)[number - 1]
        elif not (i == 0 and number == 1):
            raise AssertionError(f"no part {numbers}")
        last = i == len(numbers) - 1
        if not last and not multipart(node) and node[0].lower() == b"message":
            node = node[8]
    return node


async def test_corpus_sections_and_sizes(gateway: Gateway) -> None:
    alice, password = await gateway.person("alice")
    samples = corpus()
    for sample in samples:
        await gateway.receive(alice, sample.raw, peer=PEER)

    def check() -> None:
        client = imapclient.IMAPClient(
            "127.0.0.1",
            port=gateway.imaps_port,
            ssl=True,
            ssl_context=gateway.client_context(),
            timeout=30,
        )
        client.login(str(alice), password)
        client.select_folder("INBOX")
        uids = client.search("ALL")
        assert len(uids) == len(samples)
        for uid, sample in zip(uids, samples, strict=True):
            wanted = [f"BODY.PEEK[{s}]" for s in sample.sections]
            # imapclient cannot read ~{n} literals (RFC 3516), which NUL-carrying data needs:
            # those are read with the raw client below.
            text_binary = {s: v for s, v in sample.binary.items() if b"\x00" not in v}
            wanted += [f"BINARY.PEEK[{s}]" for s in text_binary]
            wanted += [f"BINARY.SIZE[{s}]" for s in sample.binary]
            got = client.fetch(
                [uid],
                [
                    "RFC822.SIZE",
                    "BODYSTRUCTURE",
                    "ENVELOPE",
                    "BODY.PEEK[]",
                    "BODY.PEEK[HEADER]",
                    *wanted,
                ],
            )[uid]
            served = got[b"BODY[]"]
            assert got[b"RFC822.SIZE"] == len(served), sample.name
            assert len(served) == len(sample.raw) + header_length(SENDER), sample.name
            ours = served[: header_length(SENDER)]
            assert ours.startswith(
                f"X-Pli-Provenance: gateway; signature=valid; sender={SENDER}; peer={PEER}".encode()
            ), sample.name
            received = served[header_length(SENDER) :]
            if sample.name == "forged-provenance":
                assert received == sample.raw.replace(b"X-Pli-Provenance", b"X-Untrusted-Prov", 1)
                assert served.count(b"X-Pli-Provenance") == 1
            else:
                assert received == sample.raw, sample.name
            assert got[b"BODY[HEADER]"].startswith(ours), sample.name
            for section, expected in sample.sections.items():
                key = f"BODY[{section}]".encode()
                assert got[key] == expected, (sample.name, section, got[key][:60], expected[:60])
            for section, expected in sample.binary.items():
                if section in text_binary:
                    assert got[f"BINARY[{section}]".encode()] == expected, (sample.name, section)
                assert got[f"BINARY.SIZE[{section}]".encode()] == len(expected)
            structure = got[b"BODYSTRUCTURE"]
            for part, size in sample.part_sizes.items():
                node = navigate(structure, [int(n) for n in part.split(".")])
                assert node[6] == size, (sample.name, part, node[6], size)
        first = client.fetch([uids[0]], ["ENVELOPE"])[uids[0]][b"ENVELOPE"]
        assert [a.mailbox for a in first.sender] == [b"secretariat", b"accueil"]
        assert first.to[0].name == b"Martin, Sophie"
        assert b"R=E9sultats" in first.subject
        assert client.noop()[0].startswith(b"NOOP")
        client.logout()

    await asyncio.to_thread(check)

    raw = await Raw.connect(gateway.imaps_port, gateway.client_context())
    await raw.command(f'LOGIN "{alice}" "{password}"')
    await raw.command("EXAMINE INBOX")
    for seq, sample in enumerate(samples, 1):
        for section, expected in sample.binary.items():
            if b"\x00" not in expected:
                continue
            lines = await raw.command(f"FETCH {seq} BINARY.PEEK[{section}]")
            literal = f"BINARY[{section}] ~{{{len(expected)}}}\r\n".encode() + expected
            assert literal in lines[0], (sample.name, section, lines[0][:80])
    await raw.close()


async def test_nesting_past_the_limit_is_served_opaque(gateway: Gateway) -> None:
    alice, password = await gateway.person("alice")
    sample = deep_nesting(200)
    await gateway.receive(alice, sample.raw, peer=PEER)

    def check() -> None:
        client = imapclient.IMAPClient(
            "127.0.0.1",
            port=gateway.imaps_port,
            ssl=True,
            ssl_context=gateway.client_context(),
            timeout=30,
        )
        client.login(str(alice), password)
        client.select_folder("INBOX")
        [uid] = client.search("ALL")
        got = client.fetch([uid], ["BODYSTRUCTURE", "BODY.PEEK[]"])[uid]
        assert got[b"BODY[]"].endswith(sample.raw)
        assert got[b"BODYSTRUCTURE"].is_multipart
        client.logout()

    await asyncio.to_thread(check)


async def test_header_field_selection_and_partials(gateway: Gateway) -> None:
    alice, password = await gateway.person("alice")
    raw = (
        b"From: a@b.test\r\nTo: c@d.test,\r\n e@f.test\r\nSubject: partial\r\n"
        b"X-Other: 1\r\n\r\n0123456789abcdefghij"
    )
    await gateway.receive(alice, raw, peer=PEER)
    client = await Raw.connect(gateway.imaps_port, gateway.client_context())
    await client.command(f'LOGIN "{alice}" "{password}"')
    await client.command("EXAMINE INBOX")
    fields = (await client.command('FETCH 1 BODY.PEEK[HEADER.FIELDS (to "SUBJECT")]'))[0]
    assert b"BODY[HEADER.FIELDS (to SUBJECT)] {46}\r\n" in fields
    assert fields.endswith(b"To: c@d.test,\r\n e@f.test\r\nSubject: partial\r\n\r\n)\r\n")
    others = (await client.command("FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (X-Pli-Provenance To)]"))[0]
    assert b"From: a@b.test\r\nSubject: partial\r\nX-Other: 1\r\n\r\n)" in others
    assert b"X-Pli-Provenance" not in others.split(b"}\r\n", 1)[1]
    part = (await client.command("FETCH 1 BODY.PEEK[TEXT]<5.10>"))[0]
    assert b"BODY[TEXT]<5> {10}\r\n56789abcde)" in part
    beyond = (await client.command("FETCH 1 BODY.PEEK[TEXT]<100.10>"))[0]
    assert b"BODY[TEXT]<100> {0}\r\n)" in beyond or b'BODY[TEXT]<100> ""' in beyond
    missing = await client.command("FETCH 1 BODY.PEEK[4.2]")
    assert missing[-1].split()[1] == b"OK"
    await client.close()
