from __future__ import annotations

import pytest

from messaging.kinds.issuer import CERTIFIERS, PRESCRIBERS, Authority, check_prescriber
from messaging.types import MailboxKind, MessageKind

RX = MessageKind.PRESCRIPTION
CERT = MessageKind.CERTIFICATE


def codes(*args: object, **kw: object) -> list[str]:
    return [v.code for v in check_prescriber(*args, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize("profession", ["10", "40", "50", "21"])
def test_physicians_dentists_midwives_and_pharmacists_may_prescribe(profession):
    assert codes(MailboxKind.PER, profession, False) == []


@pytest.mark.parametrize("profession", ["60", "70", "91", "99"])
def test_a_prescription_from_a_non_prescriber_is_refused(profession):
    assert codes(MailboxKind.PER, profession, False) == ["prescriber-not-allowed"]


def test_pharmacists_prescribe_but_do_not_certify():
    assert codes(MailboxKind.PER, "21", False, kind=CERT) == ["prescriber-not-allowed"]
    assert codes(MailboxKind.PER, "10", False, kind=CERT) == []


def test_a_personal_mailbox_of_unknown_profession_is_refused():
    assert codes(MailboxKind.PER, None, True) == ["prescriber-profession-unknown"]
    assert codes(MailboxKind.PER, " ", True) == ["prescriber-profession-unknown"]


def test_applications_need_their_organisations_authorisation():
    assert codes(MailboxKind.APP, None, True) == []
    assert codes(MailboxKind.APP, "10", True, kind=CERT) == []
    assert codes(MailboxKind.APP, None, False) == ["prescriber-app-not-authorised"]
    assert codes(MailboxKind.APP, "60", False) == [
        "prescriber-app-not-authorised",
        "prescriber-not-allowed",
    ]


@pytest.mark.parametrize("kind", [MailboxKind.ORG, MailboxKind.CAB, MailboxKind.PAT])
def test_organisations_practices_and_patients_never_issue(kind):
    assert codes(kind, "10", True) == ["prescriber-mailbox-kind"]
    assert codes(kind, "10", True, kind=CERT) == ["prescriber-mailbox-kind"]


def test_the_table_is_documented_and_can_be_extended():
    assert PRESCRIBERS["10"] is Authority.FULL and "21" not in CERTIFIERS
    assert codes(MailboxKind.PER, "60", False, table={**PRESCRIBERS, "60": Authority.LIMITED}) == []
    violation = check_prescriber(MailboxKind.PER, "60", False)[0]
    assert "Infirmier (60)" in violation.reason


def test_other_kinds_are_not_issued_by_prescribers():
    with pytest.raises(ValueError, match="not issued by prescribers"):
        check_prescriber(MailboxKind.PER, "10", False, kind=MessageKind.NOTE)
