"""The MX on the SQL store (SQLite and PostgreSQL): ``250`` means committed, and a store that
goes away answers ``451 4.3.0`` with nothing half-stored, then heals."""

from __future__ import annotations

from pathlib import Path

from gateway_smtp.limits import SmtpLimits
from mailbox_store import SqlMailboxStore
from tests.gateway_smtp.conftest import (
    DOCTOR,
    Certificates,
    in_thread,
    make_world,
    mx_session,
    note,
    raw_data,
)

PEER_SENDER = "dr.house@hopital.peer.test"


def deliver(world, subject: str):
    client = mx_session(world, world.certs.peer)
    try:
        assert client.docmd(f"MAIL FROM:<{PEER_SENDER}>")[0] == 250
        assert client.docmd(f"RCPT TO:<{DOCTOR}>")[0] == 250
        # A distinct Message-ID each: the receiving side deduplicates on it.
        message = (
            note(PEER_SENDER, DOCTOR)
            .replace(b"Subject: Avis", f"Subject: {subject}".encode())
            .replace(b"<note-1@peer.test>", f"<{subject}@peer.test>".encode())
        )
        return raw_data(client, message + b"\r\n.\r\n")
    finally:
        client.close()


async def test_accepted_means_committed_and_an_unavailable_store_means_451(
    tmp_path: Path, certs: Certificates, database_url: str
) -> None:
    store = await SqlMailboxStore.open(database_url, blob_dir=tmp_path / "blobs")
    world = await make_world(tmp_path, certs, SmtpLimits(auth_failure_delay=0), store=store)
    try:
        code, text = await in_thread(deliver, world, "first")
        assert code == 250
        envelope_id = text.decode().rsplit(" ", 1)[1]
        # The database goes away (a restart, a full disk): clients are told to come back.
        await store.close()
        assert (await in_thread(deliver, world, "second"))[:1] == (451,)
    finally:
        await world.fronts.stop(grace=1)
    # What was acknowledged is on disk: a new process sees it, and nothing of the refused one.
    reopened = await SqlMailboxStore.open(database_url, blob_dir=tmp_path / "blobs")
    try:
        records = await reopened.list_messages(DOCTOR, "INBOX")
        assert [r.envelope_id for r in records] == [envelope_id]
        # It heals: the same MX on the reopened store accepts again.
        world = await make_world(
            tmp_path / "again", certs, SmtpLimits(auth_failure_delay=0), store=reopened
        )
    except BaseException:
        await reopened.close()
        raise
    try:
        third = await in_thread(deliver, world, "third")
        assert third[0] == 250, third
        assert len(await reopened.list_messages(DOCTOR, "INBOX")) == 2
    finally:
        await world.fronts.stop(grace=1)
        await reopened.close()


async def test_a_message_sent_twice_by_a_peer_is_stored_once(
    tmp_path: Path, certs: Certificates, database_url: str
) -> None:
    store = await SqlMailboxStore.open(database_url, blob_dir=tmp_path / "blobs")
    world = await make_world(tmp_path, certs, SmtpLimits(auth_failure_delay=0), store=store)
    try:
        first = await in_thread(deliver, world, "twice")
        again = await in_thread(deliver, world, "twice")
        assert first[0] == 250 and first[1].startswith(b"2.0.0 OK queued as ")
        assert again == (250, b"2.0.0 OK already delivered")
        assert len(await store.list_messages(DOCTOR, "INBOX")) == 1
    finally:
        await world.fronts.stop(grace=1)
        await store.close()
