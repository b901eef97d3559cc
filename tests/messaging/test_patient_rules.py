"""Patient rules as pure checks (the service-level tests drive them through delivery)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.patient_rules import (
    REASONS,
    Closure,
    Correspondent,
    PatientFacts,
    ThreadFacts,
    check_block,
    check_mask,
    check_message_to_patient,
    check_minor_addressing,
    check_patient_message,
    closure_of,
    explain,
    threads_to_close,
)
from messaging.rules import Violation
from messaging.types import Address, MailboxKind

PATIENT = Address.parse("277076322082910@patient.pli.test")
OTHER_PATIENT = Address.parse("180057512345602@patient.pli.test")
DOCTOR = Address.parse("sophie.martin@medecin.pli.test")
TREATING = Address.parse("jean.petit@medecin.pli.test")
PHARMACY = Address.parse("pharmacie.gare@pharmacien.pli.test")
LAB_APP = Address.parse("labo-resultats@ch-exemple.pli.test")
LAB = Address.parse("laboratoire@ch-exemple.pli.test")
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

ALICE = PatientFacts(PATIENT, treating_doctor=TREATING)
DOCTOR_BOX = Correspondent(DOCTOR, MailboxKind.PER)
TREATING_BOX = Correspondent(TREATING, MailboxKind.PER)
PHARMACY_BOX = Correspondent(PHARMACY, MailboxKind.ORG, pharmacy=True)
LAB_BOX = Correspondent(LAB, MailboxKind.ORG)


def thread_from(
    professional: Address = DOCTOR,
    *,
    thread_id: str = "t1",
    opened_at: datetime = T0,
    reply_to: Address | None = None,
    closed_at: datetime | None = None,
    patient: Address = PATIENT,
) -> ThreadFacts:
    return ThreadFacts(
        thread_id=thread_id,
        patient=patient,
        professional=professional,
        opened_by=professional,
        opened_at=opened_at,
        reply_to=reply_to,
        closed_at=closed_at,
    )


def codes(violations: list[Violation]) -> list[str]:
    return [v.code for v in violations]


# --- who a patient may write to -------------------------------------------------------------


def test_patient_cannot_open_a_new_thread_with_a_doctor():
    (violation,) = check_patient_message(ALICE, [DOCTOR_BOX], None, T0)
    assert violation.code == "patient-new-thread"
    assert violation.reason == (
        f"Vous ne pouvez pas écrire en premier à {DOCTOR}. Vous pouvez répondre à un message "
        "que ce professionnel vous a envoyé, ou écrire à une pharmacie."
    )
    (english,) = check_patient_message(ALICE, [DOCTOR_BOX], None, T0, lang="en")
    assert english.reason.startswith(f"You cannot write first to {DOCTOR}.")


def test_patient_may_reply_within_a_thread_the_doctor_opened():
    assert check_patient_message(ALICE, [DOCTOR_BOX], thread_from(), T0 + timedelta(hours=1)) == []


def test_patient_may_write_first_to_a_pharmacy():
    assert check_patient_message(ALICE, [PHARMACY_BOX], None, T0) == []


def test_a_reply_goes_to_the_mailbox_the_thread_named_in_reply_to():
    thread = thread_from(LAB_APP, reply_to=LAB)
    assert check_patient_message(ALICE, [LAB_BOX], thread, T0) == []
    app_box = Correspondent(LAB_APP, MailboxKind.APP)
    assert check_patient_message(ALICE, [app_box], thread, T0) == []


def test_a_thread_does_not_let_the_patient_write_to_someone_else():
    other = Correspondent(Address.parse("paul.durand@medecin.pli.test"), MailboxKind.PER)
    assert codes(check_patient_message(ALICE, [other], thread_from(), T0)) == ["patient-new-thread"]


def test_a_thread_of_another_patient_does_not_count():
    thread = thread_from(patient=OTHER_PATIENT)
    assert codes(check_patient_message(ALICE, [DOCTOR_BOX], thread, T0)) == ["patient-new-thread"]


def test_a_thread_the_patient_opened_with_a_pharmacy_does_not_open_a_doctor():
    thread = ThreadFacts("t1", PATIENT, PHARMACY, opened_by=PATIENT, opened_at=T0)
    cc_doctor = check_patient_message(ALICE, [PHARMACY_BOX, DOCTOR_BOX], thread, T0)
    assert codes(cc_doctor) == ["patient-new-thread"]


def test_a_patient_cannot_write_to_another_patient():
    box = Correspondent(OTHER_PATIENT, MailboxKind.PAT)
    (violation,) = check_patient_message(ALICE, [box], None, T0)
    assert violation.code == "patient-to-patient"
    assert str(OTHER_PATIENT) in violation.reason


# --- closing threads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "mes", "expected"),
    [
        ("Résultats", None, Closure.NONE),
        ("Résultats", "FIN", Closure.THREAD),
        ("Résultats", " fin ", Closure.THREAD),
        ("Résultats", "SUITE", Closure.NONE),
        ("[FIN]", None, Closure.EARLIER),
        (" [FIN] ", "FIN", Closure.EARLIER),
        ("[FIN] résultats", None, Closure.NONE),
        ("Re: [FIN]", None, Closure.NONE),
        ("[fin]", None, Closure.NONE),
        (None, None, Closure.NONE),
    ],
)
def test_closures_are_read_from_x_mss_mes_and_an_exact_fin_subject(
    subject: str | None, mes: str | None, expected: Closure
):
    assert closure_of(subject, mes) is expected


def test_after_fin_a_reply_is_refused():
    closed_at = T0 + timedelta(days=1)
    closing = threads_to_close(
        sender=DOCTOR_BOX,
        patient=PATIENT,
        thread_id="t1",
        at=closed_at,
        closure=closure_of("Résultats", "FIN"),
        threads=[thread_from()],
    )
    assert closing == ["t1"]
    thread = thread_from(closed_at=closed_at)
    assert (
        check_patient_message(ALICE, [DOCTOR_BOX], thread, closed_at - timedelta(seconds=1)) == []
    )
    (violation,) = check_patient_message(ALICE, [DOCTOR_BOX], thread, closed_at)
    assert violation.code == "thread-closed"
    assert "ne pouvez plus y répondre" in violation.reason


def test_a_fin_subject_closes_every_earlier_thread_of_that_mailbox_with_that_patient():
    at = T0 + timedelta(days=10)
    threads = [
        thread_from(thread_id="t1"),
        thread_from(thread_id="t2", opened_at=T0 + timedelta(days=2)),
        thread_from(thread_id="t3", closed_at=T0 + timedelta(days=3)),  # already closed
        thread_from(thread_id="t4", opened_at=at + timedelta(seconds=1)),  # later
        thread_from(TREATING, thread_id="t5"),  # another mailbox
        thread_from(thread_id="t6", patient=OTHER_PATIENT),  # another patient
        thread_from(LAB_APP, thread_id="t7", reply_to=DOCTOR),  # answered by this mailbox
    ]
    closing = threads_to_close(
        sender=DOCTOR_BOX,
        patient=PATIENT,
        thread_id="t-fin",
        at=at,
        closure=closure_of("[FIN]", None),
        threads=threads,
    )
    assert closing == ["t-fin", "t1", "t2", "t7"]


def test_patients_and_ordinary_messages_close_nothing():
    patient_box = Correspondent(PATIENT, MailboxKind.PAT)
    for sender, closure in ((patient_box, Closure.EARLIER), (DOCTOR_BOX, Closure.NONE)):
        assert (
            threads_to_close(
                sender=sender,
                patient=PATIENT,
                thread_id="t1",
                at=T0,
                closure=closure,
                threads=[thread_from()],
            )
            == []
        )


def test_a_pharmacy_can_always_be_written_to_even_in_a_closed_thread():
    thread = thread_from(PHARMACY, closed_at=T0)
    assert check_patient_message(ALICE, [PHARMACY_BOX], thread, T0 + timedelta(days=1)) == []


# --- blocking -------------------------------------------------------------------------------


def test_a_blocked_professionals_message_is_refused():
    blocking = PatientFacts(PATIENT, treating_doctor=TREATING, blocked=frozenset({DOCTOR}))
    (violation,) = check_message_to_patient(DOCTOR, blocking)
    assert violation.code == "sender-blocked"
    assert check_message_to_patient(TREATING, blocking) == []
    assert check_message_to_patient(DOCTOR, ALICE) == []
    (english,) = check_message_to_patient(DOCTOR, blocking, lang="en")
    assert english.reason == f"This patient does not accept messages from {DOCTOR}."


def test_the_treating_doctor_cannot_be_blocked():
    (violation,) = check_block(ALICE, TREATING_BOX)
    assert violation.code == "block-treating-doctor"
    assert "médecin traitant" in violation.reason
    assert check_block(ALICE, DOCTOR_BOX) == []


def test_a_block_that_predates_the_treating_doctor_declaration_does_not_stop_them():
    facts = PatientFacts(PATIENT, treating_doctor=TREATING, blocked=frozenset({TREATING}))
    assert not facts.has_blocked(TREATING)
    assert check_message_to_patient(TREATING, facts) == []


def test_only_professional_mailboxes_can_be_blocked():
    for target in (
        Correspondent(OTHER_PATIENT, MailboxKind.PAT),
        Correspondent(PATIENT, MailboxKind.PER),
    ):
        assert codes(check_block(ALICE, target)) == ["block-not-professional"]


# --- masking --------------------------------------------------------------------------------


def test_a_patient_masks_a_document_from_chosen_professionals():
    assert (
        check_mask(
            ALICE, document_patient=PATIENT, document_author=TREATING, professionals=[DOCTOR]
        )
        == []
    )


@pytest.mark.parametrize(
    ("document_patient", "professionals", "code"),
    [
        (OTHER_PATIENT, [DOCTOR], "mask-not-own-document"),
        (PATIENT, [], "mask-nobody"),
        (PATIENT, [DOCTOR, TREATING], "mask-author"),
    ],
)
def test_masking_is_refused_when_it_cannot_mean_anything(
    document_patient: Address, professionals: list[Address], code: str
):
    violations = check_mask(
        ALICE,
        document_patient=document_patient,
        document_author=TREATING,
        professionals=professionals,
    )
    assert codes(violations) == [code]


# --- minors ---------------------------------------------------------------------------------


def test_mail_about_a_minor_goes_to_the_minors_own_address():
    minor = PatientFacts(OTHER_PATIENT, minor=True)
    (violation,) = check_minor_addressing(minor, [PATIENT])
    assert violation.code == "minor-own-address"
    assert str(OTHER_PATIENT) in violation.reason
    assert check_minor_addressing(minor, [OTHER_PATIENT, PATIENT]) == []
    assert check_minor_addressing(ALICE, [DOCTOR]) == []


# --- reasons --------------------------------------------------------------------------------


def test_every_code_has_a_french_and_an_english_reason():
    for code, (french, english) in REASONS.items():
        assert french and english and french != english, code
    assert explain("thread-closed", "en", recipient=DOCTOR).startswith(str(DOCTOR))


_addresses = st.sampled_from([DOCTOR, TREATING, PHARMACY, LAB, LAB_APP])


@given(
    st.lists(st.sampled_from([DOCTOR_BOX, TREATING_BOX, PHARMACY_BOX, LAB_BOX]), min_size=1),
    st.one_of(st.none(), st.builds(thread_from, _addresses)),
)
def test_only_pharmacies_or_the_threads_own_mailboxes_are_accepted(
    recipients: list[Correspondent], thread: ThreadFacts | None
):
    violations = check_patient_message(ALICE, recipients, thread, T0)
    allowed = thread.answers_to() if thread is not None else frozenset()
    refused = [r for r in recipients if not r.pharmacy and r.address not in allowed]
    assert len(violations) == len(refused)
