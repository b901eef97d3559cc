"""The pure pieces: command reader, tokenizer, modified UTF-7, sequence sets, SEARCH
parsing and evaluation, FETCH attribute parsing, the provenance header."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_imap import provenance
from gateway_imap.fetch import ServedMessage, parse_items
from gateway_imap.parser import (
    Atom,
    CommandReader,
    LineTooLong,
    LiteralRefused,
    ParseError,
    RawCommand,
    ReaderLimits,
    String,
    tokenize,
)
from gateway_imap.responses import InvalidMailboxName, decode_mailbox, encode_mailbox, nstring
from gateway_imap.search import Candidate, matches, parse_search
from gateway_imap.sequence import SequenceSet, compress
from messaging.types import Provenance, SignatureStatus


async def read_all(
    data: bytes, limits: ReaderLimits | None = None, auth: bool = False
) -> list[RawCommand | Exception]:
    reader = asyncio.StreamReader(limit=(limits or ReaderLimits()).max_line + 2)
    reader.feed_data(data)
    reader.feed_eof()
    continuations: list[bytes] = []

    async def cont(line: bytes) -> None:
        continuations.append(line)

    commands = CommandReader(reader, limits or ReaderLimits(), cont)
    commands.authenticated = auth
    out: list[RawCommand | Exception] = []
    while True:
        try:
            out.append(await commands.read())
        except EOFError:
            return out
        except (LineTooLong, LiteralRefused) as exc:
            out.append(exc)
            if getattr(exc, "fatal", False):
                return out


async def test_literals_quoted_strings_and_lists() -> None:
    [command] = await read_all(b'a1 LOGIN {5}\r\nhello "p\\"w"\r\n')
    assert isinstance(command, RawCommand)
    assert tokenize(command) == [Atom("LOGIN"), String(b"hello", literal=True), String(b'p"w')]
    [command] = await read_all(b"a2 APPEND INBOX (\\Seen) ~{3+}\r\n\x00\x01\x02\r\n", auth=True)
    assert isinstance(command, RawCommand)
    tokens = tokenize(command)
    assert tokens[2] == [Atom("\\Seen")]
    assert tokens[3] == String(b"\x00\x01\x02", literal=True, binary=True)


async def test_literal_limits_are_checked_on_the_announced_size() -> None:
    [refused, after] = await read_all(b"a LOGIN {5000}\r\nb NOOP\r\n")
    assert isinstance(refused, LiteralRefused) and not refused.fatal
    assert isinstance(after, RawCommand) and after.tag == "b"
    [fatal] = await read_all(b"a LOGIN {5000+}\r\n" + b"x" * 5000 + b"\r\n")
    assert isinstance(fatal, LiteralRefused) and fatal.fatal
    # After login, APPEND gets the append limit, other commands the small one.
    limits = ReaderLimits(max_literal=100, max_append=10_000)
    ok = await read_all(b"a APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\n", limits, auth=True)
    assert isinstance(ok[0], RawCommand)
    [no] = await read_all(b"a SEARCH TEXT {5000}\r\n", limits, auth=True)
    assert isinstance(no, LiteralRefused)


async def test_long_lines_are_discarded_and_reading_goes_on() -> None:
    limits = ReaderLimits(max_line=1024)
    results = await read_all(b"x NOOP " + b"A" * 5000 + b"\r\ny NOOP\r\n", limits)
    assert isinstance(results[0], LineTooLong) and results[0].tag == "x"
    assert isinstance(results[1], RawCommand) and results[1].tag == "y"


@pytest.mark.parametrize(
    "line",
    [b"a FETCH 1 (FLAGS", b"a FETCH 1 FLAGS)", b'a LOGIN "x', b"a X " + b"(" * 40 + b")" * 40],
)
async def test_tokenizer_refuses_malformed_commands(line: bytes) -> None:
    [command] = await read_all(line + b"\r\n")
    assert isinstance(command, RawCommand)
    with pytest.raises(ParseError):
        tokenize(command)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_modified_utf7_round_trips(name: str) -> None:
    encoded = encode_mailbox(name)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert decode_mailbox(encoded) == name


def test_modified_utf7_known_values_and_refusals() -> None:
    assert encode_mailbox("Envoyés") == "Envoy&AOk-s"
    assert encode_mailbox("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    for bad in ("&Jjo", "&U,BTFw-&ZeVnLIqe-", "&AGE-", "&2D3-", "&ZeVnLIqe!-", "é"):
        with pytest.raises(InvalidMailboxName):
            decode_mailbox(bad)


def test_strings_are_quoted_or_literals() -> None:
    assert nstring(b"plain") == b'"plain"'
    assert nstring(b'a"b\\') == b'"a\\"b\\\\"'
    assert nstring(b"caf\xe9") == b"{4}\r\ncaf\xe9"
    assert nstring(b"two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert nstring(None) == b"NIL"


def test_sequence_sets() -> None:
    assert SequenceSet.parse("1:3,7,9:*").select([1, 2, 3, 4, 7, 9, 12], 12) == [1, 2, 3, 7, 9, 12]
    assert SequenceSet.parse("*:5").bounds(3) == [(3, 5)]
    assert compress([5, 1, 2, 3, 9, 10]) == "1:3,5,9:10"
    for bad in ("", "0", "1:", "a", "1,,2", "4294967296"):
        with pytest.raises(ParseError):
            SequenceSet.parse(bad)


def candidate(seq: int, flags: set[str], size: int, raw: bytes | None = None) -> Candidate:
    return Candidate(
        seq=seq,
        uid=seq * 10,
        flags=frozenset(flags),
        internal_date=datetime(2026, 11, 20, 12, tzinfo=UTC),
        size=size,
        modseq=seq,
        largest_seq=3,
        largest_uid=30,
        message=ServedMessage(raw) if raw is not None else None,
    )


def test_search_grammar_and_evaluation() -> None:
    def search(text: bytes) -> tuple[object, str]:
        reader_line = b"t SEARCH " + text
        command = RawCommand("t", [reader_line])
        return parse_search(tokenize(command)[1:])

    raw = (
        b"From: =?utf-8?q?Ren=C3=A9e?= <r@x.fr>\r\nSubject: =?utf-8?b?UsOpc3VsdGF0cw==?=\r\n"
        b"Date: Fri, 20 Nov 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCholest=C3=A9rol normal\r\n"
    )
    message = candidate(2, {"\\Seen"}, 500, raw)
    cases = {
        b"ALL": True,
        b"SEEN NOT FLAGGED": True,
        b"OR FLAGGED DELETED": False,
        b"LARGER 400 SMALLER 600": True,
        b"UID 20": True,
        b"2:3": True,
        b"(UNSEEN) OR 1 3": False,
        b"ON 20-Nov-2026": True,
        b"BEFORE 20-Nov-2026": False,
        b"SENTSINCE 19-Nov-2026": True,
        b'SUBJECT "r\xc3\xa9sultats"': True,
        b'FROM "Ren\xc3\xa9e"': True,
        b'BODY "cholest\xc3\xa9rol"': True,
        b'TEXT "absent"': False,
        b"HEADER Content-Type utf-8": True,
        b"MODSEQ 2": True,
        b"NOT MODSEQ 1": False,
    }
    for program, expected in cases.items():
        key, _ = search(program)
        assert matches(key, message) is expected, program  # type: ignore[arg-type]
    with pytest.raises(ParseError):
        search(b"SINCE yesterday")
    with pytest.raises(ParseError):
        search(b"NOT")


def test_fetch_items() -> None:
    items = parse_items(Atom("FULL"))
    assert [i.name for i in items] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]
    [item] = parse_items(Atom("BODY.PEEK[1.2.HEADER.FIELDS.NOT (To Cc)]<10.20>"))
    assert item.peek and item.partial == (10, 20)
    assert item.label == b"BODY[1.2.HEADER.FIELDS.NOT (To Cc)]<10>"
    for bad in ("BODY[1.MIME.TEXT]", "BODY[MIME]", "BINARY[1.TEXT]", "BODY[HEADER.FIELDS]", "X"):
        with pytest.raises(ParseError):
            parse_items(Atom(bad))


@pytest.mark.parametrize("status", list(SignatureStatus))
@pytest.mark.parametrize("peer", [None, "", "mx.example.org", "x" * 300, "bad peer\r\nX: y"])
def test_provenance_header_length_is_known_from_metadata(
    status: SignatureStatus, peer: str | None
) -> None:
    for kind in Provenance:
        line = provenance.render_header(kind, status, "a.b@c.example", peer)
        assert len(line) == provenance.header_length("a.b@c.example")
        assert line.endswith(b"\r\n") and line.count(b"\n") == 1


def test_forged_provenance_headers_are_renamed_in_place() -> None:
    raw = b"x-pli-provenance : e2e\r\nSubject: a\r\n\r\nX-Pli-Provenance: in the body\r\n"
    out = provenance.neutralise(raw)
    assert len(out) == len(raw)
    assert out.startswith(b"X-Untrusted-Prov : e2e")
    assert out.endswith(b"X-Pli-Provenance: in the body\r\n")
