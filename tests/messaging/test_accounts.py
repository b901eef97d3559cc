from __future__ import annotations

from datetime import UTC, datetime

import pytest

import crypto
from messaging import AccountExists, Address, AuthenticationFailed, CredentialKind, MailboxKind
from messaging.errors import NotFound
from tests.messaging.conftest import World


async def test_creating_an_account_stores_keys_and_no_secret(world: World):
    address = Address.parse("alice@medecin.pli.test")
    created = await world.accounts.create(address, MailboxKind.PER, "Alice", "correct horse")
    credentials = await world.store.list_credentials(address)
    assert {c.kind for c in credentials} == {CredentialKind.PASSPHRASE, CredentialKind.RECOVERY}
    for credential in credentials:
        assert b"correct horse" not in credential.sealed_bundle + credential.auth_hash
        assert created.recovery_key.encode() not in credential.sealed_bundle
    account = await world.store.get_account(address)
    assert account is not None and len(account.encryption_key) == 32


async def test_the_right_passphrase_unlocks_the_keys(world: World):
    alice = await world.person("alice")
    unlocked = await world.accounts.unlock(alice, "passphrase of alice")
    account = await world.store.get_account(alice)
    assert account is not None
    assert unlocked.keys.signing_public.raw == account.signing_key


async def test_a_wrong_passphrase_is_refused(world: World):
    alice = await world.person("alice")
    with pytest.raises(AuthenticationFailed):
        await world.accounts.unlock(alice, "passphrase of bob")


async def test_an_address_cannot_be_created_twice(world: World):
    await world.person("alice")
    with pytest.raises(AccountExists):
        await world.person("alice")


async def test_unknown_and_known_accounts_cost_the_same_work(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    """Both paths run exactly one Argon2id derivation with the same limits and a 16-byte
    salt, then fail the same way: nothing in the work done tells whether the account exists.
    """
    alice = await world.person("alice")
    calls: list[tuple[int, crypto.Argon2Limits]] = []
    real = crypto.derive_keys

    def counting(secret: str, salt: bytes, limits: crypto.Argon2Limits) -> crypto.DerivedKeys:
        calls.append((len(salt), limits))
        return real(secret, salt, limits)

    monkeypatch.setattr(crypto, "derive_keys", counting)
    errors = []
    for address in (alice, Address.parse("nobody@medecin.pli.test")):
        with pytest.raises(AuthenticationFailed) as info:
            await world.accounts.unlock(address, "wrong")
        errors.append(str(info.value))
    assert len(calls) == 2
    assert calls[0] == calls[1]
    assert errors[0] == errors[1]


async def test_the_fake_salt_of_an_unknown_account_is_stable(world: World):
    nobody = Address.parse("nobody@medecin.pli.test")
    first = world.accounts.salt_for_login(nobody, [])
    assert first == world.accounts.salt_for_login(nobody, [])
    assert len(first) == 16


async def test_changing_the_passphrase_keeps_keys_and_app_passwords(world: World):
    alice = await world.person("alice")
    before = await world.accounts.unlock(alice, "passphrase of alice")
    app = await world.accounts.create_app_password(before, "Thunderbird")
    await world.accounts.change_passphrase(alice, "passphrase of alice", "a new one")
    with pytest.raises(AuthenticationFailed):
        await world.accounts.unlock(alice, "passphrase of alice")
    after = await world.accounts.unlock(alice, "a new one")
    assert after.keys.encryption_public == before.keys.encryption_public
    via_app = await world.accounts.unlock(alice, app.password, CredentialKind.APP_PASSWORD)
    assert via_app.keys.signing_public == before.keys.signing_public


async def test_app_passwords_are_created_listed_and_revoked(world: World):
    alice = await world.person("alice")
    unlocked = await world.accounts.unlock(alice, "passphrase of alice")
    first = await world.accounts.create_app_password(unlocked, "Thunderbird")
    second = await world.accounts.create_app_password(unlocked, "mbsync")
    listed = await world.accounts.list_app_passwords(alice)
    assert [c.label for c in listed] == ["Thunderbird", "mbsync"]
    assert first.password not in repr(listed)
    for app in (first, second):
        got = await world.accounts.unlock(alice, app.password, CredentialKind.APP_PASSWORD)
        assert got.credential_id == app.credential.id
    await world.accounts.revoke_app_password(alice, first.credential.id)
    with pytest.raises(AuthenticationFailed):
        await world.accounts.unlock(alice, first.password, CredentialKind.APP_PASSWORD)
    still = await world.accounts.unlock(alice, second.password, CredentialKind.APP_PASSWORD)
    assert still.credential_id == second.credential.id
    with pytest.raises(NotFound):
        await world.accounts.revoke_app_password(alice, first.credential.id)


async def test_an_app_password_does_not_work_as_the_passphrase(world: World):
    alice = await world.person("alice")
    unlocked = await world.accounts.unlock(alice, "passphrase of alice")
    app = await world.accounts.create_app_password(unlocked, "Thunderbird")
    with pytest.raises(AuthenticationFailed):
        await world.accounts.unlock(alice, app.password)


async def test_the_recovery_key_resets_a_forgotten_passphrase(world: World):
    address = Address.parse("alice@medecin.pli.test")
    created = await world.accounts.create(address, MailboxKind.PER, "Alice", "forgotten")
    typed = created.recovery_key.lower().replace("-", " ")
    await world.accounts.reset_passphrase_with_recovery_key(address, typed, "remembered")
    unlocked = await world.accounts.unlock(address, "remembered")
    assert unlocked.account.address == address
    with pytest.raises(AuthenticationFailed):
        await world.accounts.unlock(address, "forgotten")
    with pytest.raises(AuthenticationFailed):
        await world.accounts.reset_passphrase_with_recovery_key(address, "AAAA-BBBB", "x")


async def test_local_mailboxes_are_listed_in_the_directory_but_patients_only_by_identity():
    from directory import InMemoryDirectory
    from mailbox_store import InMemoryMailboxStore
    from messaging import AccountService, ManualClock
    from tests.messaging.conftest import FAST

    directory = InMemoryDirectory()
    service = AccountService(
        store=InMemoryMailboxStore(),
        clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)),
        instance_secret=b"k" * 32,
        passphrase_limits=FAST,
        app_password_limits=FAST,
        directory=directory,
    )
    doctor = Address.parse("dr@medecin.pli.test")
    lab = Address.parse("labo@ch.pli.test")
    patient = Address.parse("185057800608491@patient.pli.test")
    await service.create(doctor, MailboxKind.PER, "Dr_Jean_DUPONT_Cabinet", "p")
    await service.create(lab, MailboxKind.APP, "Laboratoire", "p")
    await service.create(patient, MailboxKind.PAT, "Camille", "p")
    listed = await directory.get_mailbox(doctor)
    assert listed is not None and listed.description == "Dr_Jean_DUPONT_Cabinet"
    application = await directory.get_application(lab)
    assert application is not None and application.name == "Laboratoire"
    assert await directory.get_mailbox(patient) is None
