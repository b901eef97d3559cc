"""messaging.sealed: envelopes sealed by their sender are checked, stored and delivered e2e;
every refusal stores nothing."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

import crypto
from messaging import Address, LocalKeyDirectory, MailboxKind
from messaging.errors import InvalidMessage, RuleViolation, UnknownMailbox
from messaging.sealed import SealedIntake, max_envelope_size
from messaging.service import Limits
from messaging.types import SignatureStatus
from tests.messaging.conftest import World

MESSAGE = b"From: a\r\nSubject: e2e\r\n\r\nsealed at home\r\n"


def intake(world: World) -> SealedIntake:
    return SealedIntake(
        store=world.store,
        blobs=world.blobs,
        keys=LocalKeyDirectory(world.store),
        notifier=world.notifier,
        clock=world.clock,
        limits=Limits(max_message_size=1024 * 1024, max_recipients=5),
    )


def seal(
    world: World,
    sender: Address,
    keys: crypto.MailboxKeys,
    recipients: list[tuple[Address, bytes]],
    *,
    signer: crypto.SigningKey | None = None,
    provenance: str = "e2e",
    date_offset: timedelta = timedelta(0),
    envelope_id: str = "0" * 31 + "1",
    sender_field: str | None = None,
    kind: str = "note",
) -> tuple[bytes, dict[Address, bytes], bytes]:
    signer = signer or keys.signing_key
    header = crypto.RoutingHeader(
        envelope_id=envelope_id,
        thread_id="t" * 16,
        kind=kind,
        sender=sender_field or str(sender),
        recipients=tuple(str(a) for a, _ in recipients),
        size=len(MESSAGE),
        date=(world.clock.now() + date_offset).strftime("%Y-%m-%dT%H:%M:%SZ"),
        provenance=provenance,
        signer=signer.public,
        gateway=crypto.GatewayInfo("x", "") if provenance == "gateway" else None,
    )
    targets = [crypto.EncryptionPublicKey(k) for _, k in recipients] + [keys.encryption_public]
    envelope, result = crypto.seal_bytes(header, MESSAGE, signer=signer, recipients=targets)
    slots = {a: s for (a, _), s in zip(recipients, result.slots, strict=False)}
    return envelope, slots, result.slots[-1]


async def setup(world: World) -> tuple[Address, crypto.MailboxKeys, Address, bytes]:
    sender = await world.person("alice")
    reader = await world.person("bob")
    keys = await world.keys(sender)
    account = await world.store.get_account(reader)
    assert account is not None
    return sender, keys, reader, account.encryption_key


async def test_a_sealed_envelope_is_delivered_e2e_and_opens_with_a_valid_signature(world: World):
    sender, keys, reader, reader_key = await setup(world)
    envelope, slots, sent_slot = seal(world, sender, keys, [(reader, reader_key)])
    submitted = await intake(world).accept(sender, io.BytesIO(envelope), slots, sent_slot=sent_slot)
    assert {p.folder for p in submitted.placed} == {"INBOX", "Sent"}
    opened = await world.delivery.open_message(reader, await world.keys(reader), "INBOX", 1)
    assert opened.raw == MESSAGE
    assert opened.provenance.value == "e2e"
    assert opened.signature is SignatureStatus.VALID
    mine = await world.delivery.open_message(sender, keys, "Sent", 1)
    assert mine.raw == MESSAGE


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ({"sender_field": "bob@medecin.pli.test"}, RuleViolation, "sealed-sender"),
        ({"signer": crypto.generate_signing_key()}, RuleViolation, "sealed-signer"),
        ({"provenance": "gateway"}, InvalidMessage, "sealed-provenance"),
        ({"date_offset": timedelta(hours=2)}, InvalidMessage, "sealed-date"),
        ({"envelope_id": "not-hex"}, InvalidMessage, "sealed-id"),
        ({"kind": "poem"}, InvalidMessage, "sealed-kind"),
    ],
)
async def test_a_header_that_does_not_match_what_the_server_knows_is_refused(
    world: World, change: dict[str, object], error: type[Exception], code: str
):
    sender, keys, reader, reader_key = await setup(world)
    envelope, slots, _ = seal(world, sender, keys, [(reader, reader_key)], **change)  # type: ignore[arg-type]
    with pytest.raises(error) as caught:
        await intake(world).accept(sender, io.BytesIO(envelope), slots)
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert await world.store.list_messages(reader, "INBOX") == []


async def test_slots_must_match_the_recipients(world: World):
    sender, keys, reader, reader_key = await setup(world)
    envelope, slots, _ = seal(world, sender, keys, [(reader, reader_key)])
    with pytest.raises(InvalidMessage) as caught:
        await intake(world).accept(sender, io.BytesIO(envelope), {})
    assert caught.value.code == "sealed-slots"
    with pytest.raises(InvalidMessage):
        await intake(world).accept(sender, io.BytesIO(envelope), {reader: b"short"})
    assert await world.store.list_messages(reader, "INBOX") == []


async def test_garbage_and_unknown_recipients_are_refused(world: World):
    sender, keys, reader, _ = await setup(world)
    with pytest.raises(InvalidMessage) as caught:
        await intake(world).accept(sender, io.BytesIO(b"not an envelope"), {})
    assert caught.value.code == "sealed-header"
    ghost = Address.parse("ghost@medecin.pli.test")
    envelope, slots, _ = seal(world, sender, keys, [(ghost, keys.encryption_public.raw)])
    with pytest.raises(UnknownMailbox):
        await intake(world).accept(sender, io.BytesIO(envelope), slots)


async def test_an_envelope_too_long_for_its_declared_size_is_refused(world: World):
    sender, keys, reader, reader_key = await setup(world)
    envelope, slots, _ = seal(world, sender, keys, [(reader, reader_key)])
    padded = envelope + b"\x00" * max_envelope_size(len(MESSAGE))
    with pytest.raises(InvalidMessage) as caught:
        await intake(world).accept(sender, io.BytesIO(padded), slots)
    assert caught.value.code == "sealed-length"


async def test_a_patient_sender_is_checked_like_anyone(world: World):
    patient = await world.person("pat", MailboxKind.PAT)
    keys = await world.keys(patient)
    reader = await world.person("doc")
    account = await world.store.get_account(reader)
    assert account is not None
    envelope, slots, _ = seal(world, patient, keys, [(reader, account.encryption_key)])
    submitted = await intake(world).accept(patient, io.BytesIO(envelope), slots)
    assert [p.folder for p in submitted.placed] == ["INBOX"]
