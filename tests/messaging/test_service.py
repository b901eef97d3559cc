from __future__ import annotations

import asyncio
import io

import pytest

import crypto
from messaging import (
    Address,
    Attachment,
    Draft,
    InvalidMessage,
    MessageKind,
    Provenance,
    RuleViolation,
    SignatureStatus,
    UnknownMailbox,
    build_message,
    parse_message,
)
from messaging.errors import NotFound
from tests.messaging.conftest import World


def note(sender: Address, to: Address, subject: str = "Bonjour", body: str = "Texte") -> bytes:
    draft = Draft(sender=sender, recipients=(to,), subject=subject, body=body)
    from datetime import UTC, datetime

    return build_message(draft, message_id="<m1@pli.test>", date=datetime(2026, 1, 1, tzinfo=UTC))


async def test_a_sent_note_opens_for_the_recipient_with_a_valid_signature(world: World):
    alice, bob = await world.person("alice"), await world.person("bob")
    raw = note(alice, bob, subject="Résultats", body="Tout va bien.")
    sent = await world.delivery.send(alice, await world.keys(alice), [bob], raw)
    assert sent.kind is MessageKind.NOTE
    [inbox] = [p for p in sent.placed if p.account == bob]
    opened = await world.delivery.open_message(bob, await world.keys(bob), "INBOX", inbox.uid)
    assert opened.raw == raw
    assert opened.provenance is Provenance.E2E
    assert opened.signature is SignatureStatus.VALID
    assert parse_message(opened.raw).subject == "Résultats"


async def test_the_sender_keeps_a_seen_copy_in_sent(world: World):
    alice, bob = await world.person("alice"), await world.person("bob")
    raw = note(alice, bob)
    await world.delivery.send(alice, await world.keys(alice), [bob], raw)
    [copy] = await world.delivery.list_messages(alice, "Sent")
    assert "\\Seen" in copy.flags
    opened = await world.delivery.open_message(alice, await world.keys(alice), "Sent", copy.uid)
    assert opened.raw == raw


async def test_one_envelope_is_shared_by_every_recipient(world: World):
    alice, bob, carol = [await world.person(n) for n in ("alice", "bob", "carol")]
    await world.delivery.send(alice, await world.keys(alice), [bob, carol], note(alice, bob))
    [for_bob] = await world.delivery.list_messages(bob, "INBOX")
    [for_carol] = await world.delivery.list_messages(carol, "INBOX")
    assert for_bob.blob == for_carol.blob
    bob_slot = (await world.store.get_message(bob, "INBOX", for_bob.uid)).slot
    carol_slot = (await world.store.get_message(carol, "INBOX", for_carol.uid)).slot
    assert bob_slot != carol_slot


async def test_a_gateway_message_is_signed_by_the_operator_and_names_its_peer(world: World):
    bob = await world.person("bob")
    remote = Address.parse("lab@ch-ailleurs.fr")
    raw = note(remote, bob)
    peer = crypto.GatewayInfo(peer="mx.ch-ailleurs.fr", tls="CN=mx.ch-ailleurs.fr")
    sent = await world.delivery.receive(remote, [bob], raw, gateway=peer)
    opened = await world.delivery.open_message(
        bob, await world.keys(bob), "INBOX", sent.placed[0].uid
    )
    assert opened.provenance is Provenance.GATEWAY
    assert opened.signature is SignatureStatus.VALID
    assert opened.gateway_peer == "mx.ch-ailleurs.fr"


async def test_an_unknown_recipient_stores_nothing(world: World):
    alice, bob = await world.person("alice"), await world.person("bob")
    ghost = Address.parse("ghost@medecin.pli.test")
    with pytest.raises(UnknownMailbox):
        await world.delivery.send(alice, await world.keys(alice), [bob, ghost], note(alice, bob))
    assert await world.delivery.list_messages(bob, "INBOX") == []
    assert await world.delivery.list_messages(alice, "Sent") == []


async def test_too_large_and_too_many_recipients_are_refused(world: World):
    alice, bob = await world.person("alice"), await world.person("bob")
    keys = await world.keys(alice)
    with pytest.raises(InvalidMessage, match="exceeds"):
        await world.delivery.send(alice, keys, [bob], b"x" * (1024 * 1024 + 1))
    many = [Address.parse(f"r{i}@medecin.pli.test") for i in range(6)]
    with pytest.raises(RuleViolation) as info:
        await world.delivery.send(alice, keys, many, note(alice, bob))
    assert "at most 5 recipients" in info.value.reason


async def test_keys_of_another_account_cannot_send_as_the_sender(world: World):
    alice, bob = await world.person("alice"), await world.person("bob")
    with pytest.raises(RuleViolation):
        await world.delivery.send(alice, await world.keys(bob), [bob], note(alice, bob))


async def test_a_non_recipient_has_no_copy_to_open(world: World):
    alice, bob, eve = [await world.person(n) for n in ("alice", "bob", "eve")]
    sent = await world.delivery.send(alice, await world.keys(alice), [bob], note(alice, bob))
    with pytest.raises(NotFound):
        await world.store.get_message(eve, "INBOX", sent.placed[0].uid)
    stored = await world.store.get_message(bob, "INBOX", sent.placed[0].uid)
    with world.blobs.open(stored.record.blob) as source:
        with pytest.raises(crypto.EnvelopeError):
            crypto.open_envelope(source, stored.slot, await world.keys(eve), io.BytesIO())


async def test_a_signature_by_a_key_the_directory_does_not_hold_is_flagged(world: World):
    bob = await world.person("bob")
    impostor = crypto.generate_keys()
    stranger = Address.parse("x@ailleurs.fr")
    raw = note(stranger, bob)
    # Forge a gateway-provenance envelope signed by another key than the operator's.
    world.delivery._operator_key = impostor.signing_key  # noqa: SLF001 - the forger's view
    sent = await world.delivery.receive(stranger, [bob], raw, gateway=crypto.GatewayInfo("x", ""))
    world.delivery._operator_key = world.operator  # noqa: SLF001
    opened = await world.delivery.open_message(
        bob, await world.keys(bob), "INBOX", sent.placed[0].uid
    )
    assert opened.signature is SignatureStatus.UNKNOWN_SIGNER


async def test_recipients_are_notified_of_new_mail(world: World):
    alice, bob = await world.person("alice"), await world.person("bob")
    events = world.notifier.subscribe(bob)
    waiting = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)
    sent = await world.delivery.send(alice, await world.keys(alice), [bob], note(alice, bob))
    event = await asyncio.wait_for(waiting, 1)
    assert event == f"exists INBOX {sent.placed[0].uid}"
    await events.aclose()  # type: ignore[attr-defined]


async def test_attachments_travel_and_keep_their_content_type(world: World):
    alice, bob = await world.person("alice"), await world.person("bob")
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    draft = Draft(
        sender=alice,
        recipients=(bob,),
        subject="CR",
        body="ci-joint",
        attachments=(Attachment("cr.pdf", pdf),),
    )
    from datetime import UTC, datetime

    raw = build_message(draft, message_id="<a@b.c>", date=datetime(2026, 1, 1, tzinfo=UTC))
    sent = await world.delivery.send(alice, await world.keys(alice), [bob], raw)
    opened = await world.delivery.open_message(
        bob, await world.keys(bob), "INBOX", sent.placed[0].uid
    )
    [attachment] = parse_message(opened.raw).attachments
    assert attachment.data == pdf
    assert attachment.declared_type == "application/pdf"
