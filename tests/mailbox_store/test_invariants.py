"""The rules both stores share: flag text, UIDVALIDITY, folder names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbox_store.invariants import (
    canonical_folder_name,
    check_flags,
    flags_from_text,
    flags_to_text,
    is_seen,
    uidvalidity_at,
)
from messaging.errors import InvalidMessage

atoms = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)


@given(st.frozensets(atoms, max_size=8))
def test_a_set_of_flags_survives_its_stored_text(flags: frozenset[str]) -> None:
    check_flags(flags)
    text = flags_to_text(flags)
    assert flags_from_text(text) == flags
    assert text == flags_to_text(sorted(flags, reverse=True))  # one canonical text per set


@pytest.mark.parametrize("flag", ["", "a b", "tab\there", "new\nline", "nul\x00"])
def test_flags_that_would_break_the_text_are_refused(flag: str) -> None:
    with pytest.raises(InvalidMessage):
        check_flags([flag])


def test_seen_is_matched_without_regard_to_case() -> None:
    assert is_seen({"\\Seen"}) and is_seen({"\\SEEN"}) and not is_seen({"Seen", "\\Flagged"})


@given(st.datetimes(timezones=st.just(UTC)))
def test_uidvalidity_is_a_nonzero_32_bit_number(at: datetime) -> None:
    assert 1 <= uidvalidity_at(at) <= 2**32 - 1


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2105, 1, 1)),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2105, 1, 1)),
)
def test_uidvalidity_follows_creation_time(first: datetime, second: datetime) -> None:
    a, b = sorted((first.replace(tzinfo=UTC), second.replace(tzinfo=UTC)))
    assert uidvalidity_at(a) <= uidvalidity_at(b)


@pytest.mark.parametrize("name", ["INBOX", "inbox", "Inbox", "iNbOx"])
def test_inbox_is_case_insensitive(name: str) -> None:
    assert canonical_folder_name(name) == "INBOX"


def test_other_folder_names_keep_their_case() -> None:
    assert canonical_folder_name("Sent") == "Sent"
    assert canonical_folder_name("sent") == "sent"
