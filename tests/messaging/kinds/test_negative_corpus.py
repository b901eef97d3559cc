"""Every file of ``corpus/`` is refused with its precise code (issue 4, acceptance point 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from messaging.errors import InvalidMessage, RuleViolation
from messaging.kinds.issuer import check_prescriber
from messaging.types import MailboxKind
from tests.messaging.kinds.corpus_cases import CASES, READERS
from tests.messaging.kinds.make_corpus import CORPUS, MANIFEST, manifest


def refusal(reader: str, data: bytes) -> str:
    # Malformed input is InvalidMessage; a well-formed message a rule refuses (an unknown
    # appointment, a non-prescriber) is RuleViolation. Both carry the precise code.
    with pytest.raises((InvalidMessage, RuleViolation)) as caught:
        READERS[reader](data)
    error = caught.value
    assert isinstance(error, InvalidMessage | RuleViolation)
    return error.code


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_corpus_file_is_refused_with_its_code(case):
    assert refusal(case.reader, (CORPUS / case.name).read_bytes()) == case.code


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_case_is_still_refused_when_built_afresh(case):
    assert refusal(case.reader, case.build()) == case.code


def test_the_corpus_on_disk_is_the_corpus_of_the_cases():
    on_disk = {p.name for p in Path(CORPUS).iterdir() if p.is_file()}
    assert on_disk == {c.name for c in CASES} | {MANIFEST}
    assert (CORPUS / MANIFEST).read_text(encoding="utf-8") == manifest()


def test_a_prescription_from_a_non_prescriber_is_refused():
    # The rule, not a file: a nurse's personal mailbox may not send a prescription.
    assert [v.code for v in check_prescriber(MailboxKind.PER, "60", False)] == [
        "prescriber-not-allowed"
    ]
