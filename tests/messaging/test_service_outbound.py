"""The delivery service's split of local and remote recipients (messaging/outbound*.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import crypto
from mailbox_store import InMemoryBlobStore, InMemoryMailboxStore
from messaging import (
    AccountService,
    Address,
    DeliveryService,
    InProcessNotifier,
    LocalKeyDirectory,
    MailboxKind,
    ManualClock,
    RuleViolation,
    UnknownMailbox,
)
from messaging.outbound import (
    DsnRequest,
    Relaying,
    Ret,
    StaticPeerDomains,
    is_local_domain,
    open_queued,
)
from tests.messaging.conftest import FAST

RAW = (
    b"From: alice@pli.test\r\nTo: bob@ch-peer.test\r\nSubject: CR\r\n"
    b"Message-ID: <cr-9@pli.test>\r\n\r\nConfidentiel.\r\n"
)


class World:
    def __init__(self) -> None:
        self.store = InMemoryMailboxStore()
        self.queue_keys = crypto.generate_keys()
        self.clock = ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
        self.accounts = AccountService(
            store=self.store,
            clock=self.clock,
            instance_secret=b"k" * 32,
            passphrase_limits=FAST,
            app_password_limits=FAST,
        )
        self.delivery = DeliveryService(
            store=self.store,
            blobs=InMemoryBlobStore(),
            keys=LocalKeyDirectory(self.store),
            notifier=InProcessNotifier(),
            clock=self.clock,
            operator_key=crypto.generate_signing_key(),
            relaying=Relaying(
                local_domain="pli.test",
                peers=StaticPeerDomains(frozenset({"ch-peer.test"})),
                queue=self.store.outbound,
                queue_key=self.queue_keys.encryption_public,
            ),
        )

    async def person(self, address: str) -> tuple[Address, crypto.MailboxKeys]:
        who = Address.parse(address)
        await self.accounts.create(who, MailboxKind.PER, who.local, "pass " + who.local)
        return who, (await self.accounts.unlock(who, "pass " + who.local)).keys


@pytest.fixture
def world() -> World:
    return World()


async def test_remote_recipients_are_queued_with_the_local_delivery(world: World) -> None:
    alice, keys = await world.person("alice@pli.test")
    carol, _ = await world.person("carol@cardio.pli.test")  # a subdomain is ours too
    bob = Address.parse("bob@ch-peer.test")
    request = DsnRequest(envid="E1", ret=Ret.FULL, notify={bob: frozenset({"success", "failure"})})

    submitted = await world.delivery.send(alice, keys, [bob, carol], RAW, dsn=request)

    assert {p.account for p in submitted.placed} == {carol, alice}
    [queued] = await world.store.outbound.list_queued()
    message = queued.message
    assert message.mail_from == alice and message.message_id == "<cr-9@pli.test>"
    assert (message.envid, message.ret) == ("E1", Ret.FULL)
    assert [(r.address, r.notify) for r in message.recipients] == [
        (bob, frozenset({"SUCCESS", "FAILURE"}))
    ]
    # Sealed at rest: only the queue key opens it, and it opens to the exact bytes.
    assert b"Confidentiel" not in message.sealed
    assert open_queued(message, world.queue_keys) == RAW
    with pytest.raises(crypto.CryptoError):
        open_queued(message, keys)
    trace = {(e.action, e.subject) for e in await world.store.list_trace()}
    assert ("queue", str(bob)) in trace and ("deliver", str(carol)) in trace


async def test_a_message_for_remote_recipients_only_is_queued_alone(world: World) -> None:
    sender = Address.parse("gw@ch-peer.test")
    bob = Address.parse("bob@ch-peer.test")
    submitted = await world.delivery.receive(
        sender, [bob], RAW, gateway=crypto.GatewayInfo(peer="api", tls="")
    )
    assert submitted.placed == ()
    [queued] = await world.store.outbound.list_queued()
    assert queued.message.queue_id == submitted.envelope_id


async def test_a_domain_off_the_allow_list_is_refused_and_nothing_is_stored(
    world: World,
) -> None:
    alice, keys = await world.person("alice@pli.test")
    carol, _ = await world.person("carol@pli.test")
    stranger = Address.parse("eve@gmail.example")
    with pytest.raises(RuleViolation) as refused:
        await world.delivery.send(alice, keys, [carol, stranger], RAW)
    assert refused.value.code == "relay-denied"
    with pytest.raises(RuleViolation):
        await world.delivery.route(stranger)
    assert await world.delivery.route(Address.parse("x@ch-peer.test")) is True
    assert await world.delivery.route(carol) is False
    # An account is local whatever its domain (made before the instance's domain was set).
    legacy, _ = await world.person("old@elsewhere.example")
    assert await world.delivery.route(legacy) is False
    assert await world.store.outbound.list_queued() == []
    assert await world.delivery.list_messages(carol, "INBOX") == []


async def test_an_unknown_local_recipient_queues_nothing(world: World) -> None:
    alice, keys = await world.person("alice@pli.test")
    with pytest.raises(UnknownMailbox):
        await world.delivery.send(
            alice, keys, [Address.parse("bob@ch-peer.test"), Address.parse("no@pli.test")], RAW
        )
    assert await world.store.outbound.list_queued() == []


def test_local_domain_is_ours_and_its_subdomains_only() -> None:
    assert is_local_domain("PLI.test", "pli.test")
    assert is_local_domain("a.pli.test.", "pli.test")
    assert not is_local_domain("evilpli.test", "pli.test")
    peers = StaticPeerDomains(frozenset({"ch-peer.test"}))
    assert peers.allows("mx.ch-peer.test") and not peers.allows("xch-peer.test")


async def test_a_peer_sending_the_same_message_id_twice_is_delivered_once(world: World) -> None:
    carol, _ = await world.person("carol@pli.test")
    dan, _ = await world.person("dan@pli.test")
    peer = Address.parse("gw@ch-peer.test")
    gateway = crypto.GatewayInfo(peer="mx.ch-peer.test", tls="CN=mx.ch-peer.test")
    raw = b"From: gw@ch-peer.test\r\nMessage-ID: <once@ch-peer.test>\r\n\r\nbody\r\n"

    first = await world.delivery.receive(peer, [carol], raw, gateway=gateway)
    again = await world.delivery.receive(peer, [carol, dan], raw, gateway=gateway)
    third = await world.delivery.receive(peer, [carol, dan], raw, gateway=gateway)

    assert [p.account for p in first.placed] == [carol]
    assert ([p.account for p in again.placed], again.duplicates) == ([dan], (carol,))
    assert (third.placed, set(third.duplicates)) == ((), {carol, dan})
    assert len(await world.delivery.list_messages(carol, "INBOX")) == 1
    assert len(await world.delivery.list_messages(dan, "INBOX")) == 1
    # Without a Message-ID there is nothing to recognise: each copy is delivered.
    bare = b"From: gw@ch-peer.test\r\n\r\nbody\r\n"
    await world.delivery.receive(peer, [carol], bare, gateway=gateway)
    await world.delivery.receive(peer, [carol], bare, gateway=gateway)
    assert len(await world.delivery.list_messages(carol, "INBOX")) == 3
