"""The relay's parts on their own: routes, DSN parameters on the wire, the reports it writes."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import UTC, datetime
from email.message import Message

import dns.asyncresolver
import pytest

from gateway_smtp.relay_client import Reply, xtext
from gateway_smtp.relay_dsn import report_bytes
from gateway_smtp.relay_routes import Hop, RouteError, Routes, parse_route
from messaging.dsn import DsnAction, RecipientStatus, parse_dsn
from messaging.errors import InvalidMessage
from messaging.outbound import OutboundMessage, OutboundRecipient, Ret, new_queue_id
from messaging.types import Address

ALICE = Address.parse("alice@pli.test")
BOB = Address.parse("bob@ch-peer.test")
ORIGINAL = (
    b"From: alice@pli.test\r\nTo: bob@ch-peer.test\r\nSubject: Compte rendu\r\n"
    b"Message-ID: <cr@pli.test>\r\n\r\nTexte confidentiel.\r\n"
)


def test_routes_are_parsed_with_their_port() -> None:
    assert parse_route("mx.ch-x.fr", 25) == Hop("mx.ch-x.fr", 25)
    assert parse_route("mx.ch-x.fr:2525", 25) == Hop("mx.ch-x.fr", 2525)
    assert parse_route("[::1]:2525", 25) == Hop("::1", 2525)
    assert parse_route("[::1]", 26) == Hop("::1", 26)


async def test_a_static_route_wins_over_dns() -> None:
    routes = Routes({"CH-Peer.test.": "127.0.0.1:2525"})
    assert await routes.hops("ch-peer.test") == [Hop("127.0.0.1", 2525)]


async def test_a_dns_server_that_does_not_answer_is_a_temporary_failure() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never answers
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = silent.getsockname()[1]
        resolver.lifetime = 0.5
        with pytest.raises(RouteError) as failure:
            await Routes({}, resolver=resolver).hops("ch-peer.test")
    assert (failure.value.permanent, failure.value.status) == (False, "4.4.3")


def test_xtext_encodes_plus_equals_and_controls() -> None:
    assert xtext("rfc822;bob+tag=1@ch-peer.test") == "rfc822;bob+2Btag+3D1@ch-peer.test"
    assert xtext("a b\u00e9") == "a+20b+E9"


def test_replies_keep_the_enhanced_code_or_derive_one() -> None:
    assert Reply.of(550, b"5.1.1 unknown user").status == "5.1.1"
    assert Reply.of(451, b"try later").status == "4.0.0"
    assert Reply.of(550, b"4.1.1 inconsistent").status == "5.0.0"
    injected = Reply.of(550, "5.1.1 no\r\nBcc: eve@evil.example")
    assert "\n" not in injected.diagnostic and "\r" not in injected.diagnostic


def test_dsn_parameters_are_checked() -> None:
    with pytest.raises(InvalidMessage):
        OutboundRecipient(BOB, frozenset({"NEVER", "FAILURE"}))
    with pytest.raises(InvalidMessage):
        OutboundRecipient(BOB, frozenset({"SOMETIMES"}))
    with pytest.raises(InvalidMessage):
        OutboundRecipient(BOB, orcpt="rfc822;bob@x\r\nMAIL FROM:<e@v>")
    assert OutboundRecipient(BOB).wants("FAILURE") and not OutboundRecipient(BOB).wants("SUCCESS")
    assert not OutboundRecipient(BOB, frozenset({"NEVER"})).wants("FAILURE")


def message(ret: Ret | None) -> OutboundMessage:
    return OutboundMessage(
        queue_id=new_queue_id(),
        mail_from=ALICE,
        recipients=(OutboundRecipient(BOB),),
        sealed=b"x",
        slot=b"y",
        size=len(ORIGINAL),
        message_id="<cr@pli.test>",
        created_at=datetime(2026, 11, 22, 9, tzinfo=UTC),
        envid="ENV-1",
        ret=ret,
    )


@pytest.mark.parametrize("ret", [Ret.FULL, Ret.HDRS, None])
def test_a_failure_report_returns_what_ret_asked_for(ret: Ret | None) -> None:
    status = RecipientStatus(BOB, DsnAction.FAILED, "5.1.1", "smtp; 550 5.1.1 unknown")
    queued = message(ret)
    raw = report_bytes(
        queued,
        ALICE,
        [status],
        plaintext=ORIGINAL,
        reporting_mta="mx.pli.test",
        postmaster=Address.parse("postmaster@pli.test"),
        event="failed",
        now=datetime(2026, 11, 22, 10, tzinfo=UTC),
    )
    report = parse_dsn(raw)
    assert report.original_envelope_id == "ENV-1"
    assert report.original_subject == "Compte rendu"
    assert [r.status for r in report.recipients] == ["5.1.1"]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    # Derived from the queue id: a report written twice is recognisably the same one.
    assert parsed["Message-ID"] == f"<{queued.queue_id}.failed@pli.test>"
    parts = parsed.get_payload()
    assert isinstance(parts, list)
    last = parts[-1]
    assert isinstance(last, Message)
    if ret is Ret.FULL:
        assert last.get_content_type() == "message/rfc822"
        assert b"Texte confidentiel." in raw
    else:
        assert last.get_content_type() == "text/rfc822-headers"
        assert b"Texte confidentiel." not in raw
