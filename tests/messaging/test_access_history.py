"""The patient's hash-chained access history: appending, canonical encoding, verification."""

from __future__ import annotations

import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.access_history import (
    CONTEXT,
    GENESIS,
    Action,
    Anchor,
    HistoryEntry,
    anchor_of,
    append,
    canonical_encoding,
    entry_hash,
    label,
    verify_chain,
)
from messaging.types import Address

PATIENT = Address.parse("277076322082910@patient.pli.test")
OTHER_PATIENT = Address.parse("180057512345602@patient.pli.test")
DOCTOR = "sophie.martin@medecin.pli.test"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def history(*steps: tuple[Action, str, dict[str, str]]) -> list[HistoryEntry]:
    entries: list[HistoryEntry] = []
    for i, (action, subject, details) in enumerate(steps):
        head = entries[-1] if entries else None
        entries.append(
            append(
                head,
                patient=PATIENT,
                actor=DOCTOR,
                action=action,
                subject=subject,
                at=T0 + timedelta(minutes=i),
                details=details,
            )
        )
    return entries


def consent_story() -> list[HistoryEntry]:
    return history(
        (Action.CONSENT_REQUESTED, "req-1", {"professional": DOCTOR, "scope": "record"}),
        (Action.CONSENT_ANSWERED, "req-1", {"decision": "grant", "response": "resp-1"}),
        (Action.DOCUMENT_SHARED, "env-1", {"grant": "req-1", "slots": "1"}),
        (Action.DOCUMENT_READ_WITH_CONSENT, "env-1", {"grant": "req-1"}),
        (Action.CONSENT_REVOKED, "req-1", {"revocation": "rev-1"}),
    )


def codes(entries: list[HistoryEntry], **kwargs: object) -> set[str]:
    return {p.code for p in verify_chain(entries, **kwargs)}  # type: ignore[arg-type]


def test_a_history_built_by_append_verifies():
    entries = consent_story()
    assert verify_chain(entries, patient=PATIENT, anchor=anchor_of(entries)) == []
    assert [e.seq for e in entries] == [0, 1, 2, 3, 4]
    assert entries[0].previous == GENESIS
    assert all(b.previous == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert entries[1].detail_map == {"decision": "grant", "response": "resp-1"}
    assert verify_chain([]) == [] and anchor_of([]) is None


def test_an_edited_entry_is_detected():
    entries = consent_story()
    entries[3] = replace(entries[3], actor="someone.else@medecin.pli.test")
    (problem,) = verify_chain(entries)
    assert (problem.index, problem.code) == (3, "history-hash")


def test_an_edited_entry_whose_hash_was_recomputed_breaks_the_next_link():
    entries = consent_story()
    forged = replace(entries[2], subject="env-2")
    entries[2] = replace(forged, hash=entry_hash(forged))
    (problem,) = verify_chain(entries)
    assert (problem.index, problem.code) == (3, "history-link")


def test_a_deleted_entry_is_detected():
    entries = consent_story()
    del entries[3]
    assert {(p.index, p.code) for p in verify_chain(entries)} == {
        (3, "history-sequence"),
        (3, "history-link"),
    }


def test_deleting_the_last_entries_is_detected_by_the_anchor_a_reader_kept():
    entries = consent_story()
    anchor = anchor_of(entries)
    assert anchor is not None
    assert verify_chain(entries[:-2]) == []  # a chain alone cannot see its lost tail
    assert codes(entries[:-2], anchor=anchor) == {"history-truncated"}


def test_a_history_that_grew_since_the_anchor_still_verifies():
    entries = consent_story()
    anchor = anchor_of(entries[:3])
    assert verify_chain(entries, anchor=anchor) == []


def test_a_rewritten_history_is_detected_by_the_anchor():
    entries = consent_story()
    anchor = anchor_of(entries)
    rewritten = history(
        (Action.CONSENT_REQUESTED, "req-1", {"professional": DOCTOR, "scope": "record"}),
        (Action.CONSENT_ANSWERED, "req-1", {"decision": "refuse", "response": "resp-1"}),
        (Action.DOCUMENT_SHARED, "env-1", {"grant": "req-1", "slots": "1"}),
        (Action.DOCUMENT_READ_WITH_CONSENT, "env-1", {"grant": "req-1"}),
        (Action.CONSENT_REVOKED, "req-1", {"revocation": "rev-1"}),
    )
    assert verify_chain(rewritten) == []
    assert codes(rewritten, anchor=anchor) == {"history-anchor"}
    assert codes(rewritten, anchor=Anchor(-1, b"")) == {"history-truncated"}


def test_reordered_entries_are_detected():
    entries = consent_story()
    entries[1], entries[2] = entries[2], entries[1]
    assert {"history-sequence", "history-link"} <= codes(entries)


def test_an_entry_moved_from_another_patients_history_is_detected():
    entries = consent_story()
    stranger = append(
        entries[-1],
        patient=PATIENT,
        actor=DOCTOR,
        action=Action.DOCUMENT_SENT,
        subject="env-9",
        at=T0 + timedelta(hours=1),
    )
    moved = replace(stranger, patient=OTHER_PATIENT)
    assert codes([*entries, moved], patient=PATIENT) == {"history-patient", "history-hash"}


def test_a_malformed_stored_entry_is_reported_not_raised():
    entries = consent_story()
    entries[1] = replace(entries[1], at=datetime(2026, 11, 22, 9, 1))  # naive
    entries[2] = replace(entries[2], previous=b"short")
    found = {(p.index, p.code) for p in verify_chain(entries)}
    assert (1, "history-malformed") in found and (2, "history-malformed") in found


def test_entries_carry_no_message_content():
    with pytest.raises(ValueError, match="content-free"):
        history((Action.DOCUMENT_SENT, "env-1", {"subject": "Résultats VIH"}))
    with pytest.raises(ValueError, match="control characters"):
        history((Action.DOCUMENT_SENT, "env-1", {"document": "a\r\nb"}))
    with pytest.raises(ValueError, match="characters"):
        history((Action.DOCUMENT_SENT, "x" * 201, {}))
    with pytest.raises(ValueError, match="not-an-action"):
        append(
            None,
            patient=PATIENT,
            actor=DOCTOR,
            action="not-an-action",  # type: ignore[arg-type]
            subject="env-1",
            at=T0,
        )


def test_append_refuses_a_foreign_head_a_naive_time_and_going_back_in_time():
    (first,) = history((Action.DOCUMENT_SENT, "env-1", {}))
    kwargs = {"actor": DOCTOR, "action": Action.DOCUMENT_SENT, "subject": "env-2"}
    with pytest.raises(ValueError, match="another patient"):
        append(first, patient=OTHER_PATIENT, at=T0 + timedelta(hours=1), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        append(first, patient=PATIENT, at=datetime(2026, 11, 23), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="older"):
        append(first, patient=PATIENT, at=T0 - timedelta(seconds=1), **kwargs)  # type: ignore[arg-type]


def test_times_are_hashed_in_utc_so_one_instant_has_one_hash():
    paris = datetime(2026, 11, 22, 10, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    entry = append(
        None, patient=PATIENT, actor=DOCTOR, action=Action.BLOCKED, subject=DOCTOR, at=paris
    )
    assert entry.at.tzinfo is UTC
    assert b"2026-11-22T10:00:00.000000Z" in canonical_encoding(
        patient=entry.patient,
        seq=entry.seq,
        actor=entry.actor,
        action=entry.action,
        subject=entry.subject,
        at=entry.at,
        details=entry.details,
        previous=entry.previous,
    )


def test_the_canonical_encoding_is_the_documented_layout():
    encoded = canonical_encoding(
        patient=PATIENT,
        seq=1,
        actor="a",
        action="blocked",
        subject="s",
        at=T0,
        details=[("thread", "t"), ("envelope", "e")],
        previous=bytes(range(32)),
    )

    def field(text: str) -> bytes:
        return struct.pack(">I", len(text.encode())) + text.encode()

    expected = (
        CONTEXT
        + struct.pack(">Q", 1)
        + field(str(PATIENT))
        + field("a")
        + field("blocked")
        + field("s")
        + field("2026-11-22T09:00:00.000000Z")
        + struct.pack(">I", 2)
        + field("envelope")
        + field("e")
        + field("thread")
        + field("t")
        + bytes(range(32))
    )
    assert encoded == expected
    with pytest.raises(ValueError):
        canonical_encoding(
            patient=PATIENT,
            seq=-1,
            actor="a",
            action="b",
            subject="s",
            at=T0,
            details=[],
            previous=GENESIS,
        )


def test_labels_read_in_french_by_default_and_in_english():
    assert label(Action.BLOCK_ATTEMPTED) == "Message refusé d'un professionnel bloqué"
    assert label("document-read-with-consent", "en") == "Document read with your consent"
    assert label("something-new") == "something-new"
    assert all(label(action) != action.value for action in Action)


# --- Hypothesis: any single edit, deletion, swap or insertion is detected ----------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12)
_details = st.dictionaries(st.sampled_from(["envelope", "grant", "rule", "thread"]), _text)
_steps = st.lists(st.tuples(st.sampled_from(list(Action)), _text, _details), min_size=1, max_size=7)


@st.composite
def chains(draw: st.DrawFn) -> list[HistoryEntry]:
    return history(*draw(_steps))


_FIELDS = ("patient", "seq", "actor", "action", "subject", "at", "details", "previous", "hash")


def _changed(entry: HistoryEntry, name: str) -> HistoryEntry:
    value = getattr(entry, name)
    new: object
    if name == "patient":
        new = OTHER_PATIENT
    elif name == "seq":
        new = value + 1
    elif name == "at":
        new = value + timedelta(microseconds=1)
    elif name == "details":
        new = (*value, ("thread", "injected")) if ("thread", "injected") not in value else ()
    elif name in ("previous", "hash"):
        new = bytes([value[0] ^ 1]) + value[1:]
    else:
        new = value + "x"
    return replace(entry, **{name: new})  # type: ignore[arg-type]


@given(chains(), st.data())
def test_any_single_edit_is_detected(entries: list[HistoryEntry], data: st.DataObject):
    index = data.draw(st.integers(0, len(entries) - 1))
    name = data.draw(st.sampled_from(_FIELDS))
    edited = list(entries)
    edited[index] = _changed(entries[index], name)
    assert verify_chain(edited) != []


@given(chains(), st.data())
def test_any_edit_with_a_recomputed_hash_is_detected_given_an_anchor(
    entries: list[HistoryEntry], data: st.DataObject
):
    anchor = anchor_of(entries)
    index = data.draw(st.integers(0, len(entries) - 1))
    name = data.draw(st.sampled_from(_FIELDS[:-2]))
    forged = _changed(entries[index], name)
    edited = list(entries)
    edited[index] = replace(forged, hash=entry_hash(forged))
    assert verify_chain(edited, anchor=anchor) != []


@given(chains(), st.data())
def test_any_deletion_is_detected_given_an_anchor(entries: list[HistoryEntry], data: st.DataObject):
    anchor = anchor_of(entries)
    index = data.draw(st.integers(0, len(entries) - 1))
    shorter = entries[:index] + entries[index + 1 :]
    assert verify_chain(shorter, anchor=anchor) != []
    if index < len(entries) - 1:
        assert verify_chain(shorter) != []  # inside the chain, no anchor is needed


@given(chains().filter(lambda c: len(c) >= 2), st.data())
def test_any_swap_is_detected(entries: list[HistoryEntry], data: st.DataObject):
    i = data.draw(st.integers(0, len(entries) - 2))
    j = data.draw(st.integers(i + 1, len(entries) - 1))
    swapped = list(entries)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert verify_chain(swapped) != []


@given(chains(), st.data())
def test_any_insertion_before_the_end_is_detected(entries: list[HistoryEntry], data: st.DataObject):
    index = data.draw(st.integers(0, len(entries) - 1))
    head = entries[index - 1] if index else None
    inserted = append(
        head,
        patient=PATIENT,
        actor="intruder@medecin.pli.test",
        action=Action.UNBLOCKED,
        subject=DOCTOR,
        at=entries[index].at,
    )
    assert verify_chain([*entries[:index], inserted, *entries[index:]]) != []


_values: st.SearchStrategy[dict[str, object]] = st.builds(
    dict,
    patient=st.sampled_from([PATIENT, OTHER_PATIENT]),
    seq=st.integers(0, 3),
    actor=st.text(max_size=4),
    action=st.text(max_size=4),
    subject=st.text(max_size=4),
    at=st.sampled_from([T0, T0 + timedelta(microseconds=1)]),
    details=st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), max_size=3).map(
        lambda pairs: sorted(dict(pairs).items())
    ),
    previous=st.sampled_from([GENESIS, bytes(31) + b"\x01"]),
)


@given(_values, _values)
def test_the_canonical_encoding_is_injective(a: dict[str, object], b: dict[str, object]):
    """Length prefixes: no shift of characters between fields makes two entries collide."""
    same = canonical_encoding(**a) == canonical_encoding(**b)  # type: ignore[arg-type]
    assert same == (a == b)


def test_moving_characters_between_fields_changes_the_encoding():
    base = {
        "patient": PATIENT,
        "seq": 0,
        "action": "x",
        "at": T0,
        "details": [],
        "previous": GENESIS,
    }
    a = canonical_encoding(actor="ab", subject="c", **base)  # type: ignore[arg-type]
    b = canonical_encoding(actor="a", subject="bc", **base)  # type: ignore[arg-type]
    assert a != b
