"""The patient's agenda derived from appointment messages (RFC 5546 §2.1.4-2.1.5 ordering)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.agenda import (
    Agenda,
    EntryStatus,
    ReceivedAppointment,
    check_appointment,
    derive_agenda,
    due_reminders,
)
from messaging.errors import RuleViolation
from messaging.kinds.appointment import (
    Appointment,
    Attendee,
    PartStat,
    build_appointment,
    cancel,
    counter,
    new_request,
    parse_appointment,
    reply_to,
    reschedule,
)
from messaging.types import Address

PARIS = ZoneInfo("Europe/Paris")
DOCTOR = Address.parse("sophie.martin@medecin.pli.test")
OTHER_DOCTOR = Address.parse("paul.bernard@medecin.pli.test")
PATIENT = Address.parse("180012345678901@patient.pli.test")
SPOUSE = Address.parse("280012345678902@patient.pli.test")
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
START = datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)


def invitation(
    uid: str = "rdv-1@pli.test", organizer: Address = DOCTOR, **kw: object
) -> Appointment:
    return new_request(
        uid=uid,
        organizer=organizer,
        attendees=kw.pop("attendees", [PATIENT]),  # type: ignore[arg-type]
        start=kw.pop("start", START),  # type: ignore[arg-type]
        end=kw.pop("end", START + timedelta(minutes=30)),  # type: ignore[arg-type]
        summary="Consultation",
        dtstamp=kw.pop("dtstamp", T0),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def sent(sender: Address, a: Appointment, message_id: str = "") -> ReceivedAppointment:
    return ReceivedAppointment(
        sender, a, message_id or f"<{a.method}-{a.sequence}-{a.dtstamp:%H%M}>"
    )


def agenda_of(*messages: ReceivedAppointment, owner: Address = PATIENT) -> Agenda:
    return derive_agenda(messages, owner=owner)


def only(agenda: Agenda) -> EntryStatus:
    (entry,) = agenda.entries
    return entry.status


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- status -----------------------------------------------------------------------------


def test_an_invitation_without_answer_is_proposed() -> None:
    agenda = agenda_of(sent(DOCTOR, invitation()))
    (entry,) = agenda.entries
    assert entry.status is EntryStatus.PROPOSED
    assert entry.start == START
    assert entry.summary == "Consultation"
    assert agenda.refused == ()


@pytest.mark.parametrize(
    ("partstat", "status"),
    [
        (PartStat.ACCEPTED, EntryStatus.ACCEPTED),
        (PartStat.DECLINED, EntryStatus.DECLINED),
        (PartStat.TENTATIVE, EntryStatus.TENTATIVE),
        (PartStat.DELEGATED, EntryStatus.DECLINED),
        (PartStat.NEEDS_ACTION, EntryStatus.PROPOSED),
    ],
)
def test_the_patients_reply_sets_the_status(partstat: PartStat, status: EntryStatus) -> None:
    request = invitation()
    answer = reply_to(request, PATIENT, partstat, dtstamp=at(10))
    agenda = agenda_of(sent(DOCTOR, request), sent(PATIENT, answer))
    assert only(agenda) is status
    assert agenda.entries[0].attendees[0].partstat is partstat


def test_the_latest_reply_wins() -> None:
    request = invitation()
    yes = reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=at(10))
    no = reply_to(request, PATIENT, PartStat.DECLINED, dtstamp=at(20))
    assert only(agenda_of(sent(DOCTOR, request), sent(PATIENT, no), sent(PATIENT, yes))) is (
        EntryStatus.DECLINED
    )


def test_a_reschedule_with_a_higher_sequence_wins_and_asks_again() -> None:
    request = invitation()
    accepted = reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=at(10))
    moved = reschedule(
        request,
        start=START + timedelta(days=1),
        end=START + timedelta(days=1, hours=1),
        dtstamp=at(5),
    )
    # DTSTAMP of the reschedule is even earlier than the reply: SEQUENCE decides first.
    agenda = agenda_of(sent(DOCTOR, request), sent(PATIENT, accepted), sent(DOCTOR, moved))
    (entry,) = agenda.entries
    assert entry.sequence == 1
    assert entry.start == START + timedelta(days=1)
    assert entry.status is EntryStatus.PROPOSED  # the old acceptance is stale
    again = reply_to(moved, PATIENT, PartStat.ACCEPTED, dtstamp=at(30))
    assert only(agenda_of(sent(DOCTOR, request), sent(DOCTOR, moved), sent(PATIENT, again))) is (
        EntryStatus.ACCEPTED
    )


def test_at_equal_sequence_the_later_dtstamp_wins() -> None:
    first = invitation(location="Salle 1")
    second = invitation(location="Salle 2", dtstamp=at(60))
    agenda = agenda_of(sent(DOCTOR, second), sent(DOCTOR, first))
    assert agenda.entries[0].location == "Salle 2"


def test_a_reply_at_the_current_sequence_survives_a_minor_resend() -> None:
    request = invitation()
    accepted = reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=at(10))
    resent = invitation(location="Salle 3", dtstamp=at(20))
    assert only(
        agenda_of(sent(DOCTOR, request), sent(PATIENT, accepted), sent(DOCTOR, resent))
    ) is (EntryStatus.ACCEPTED)


def test_a_cancel_cancels() -> None:
    request = invitation()
    accepted = reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=at(10))
    cancelled = cancel(request, dtstamp=at(20))
    agenda = agenda_of(sent(DOCTOR, request), sent(PATIENT, accepted), sent(DOCTOR, cancelled))
    assert only(agenda) is EntryStatus.CANCELLED


def test_a_cancel_overtaken_by_a_new_request_no_longer_counts() -> None:
    request = invitation()
    cancelled = cancel(request, dtstamp=at(10))  # sequence 1
    revived = reschedule(cancelled, start=START, end=START + timedelta(minutes=30), dtstamp=at(20))
    assert only(
        agenda_of(sent(DOCTOR, request), sent(DOCTOR, cancelled), sent(DOCTOR, revived))
    ) is (EntryStatus.PROPOSED)


def test_a_cancel_that_names_other_attendees_only_does_not_cancel_for_the_patient() -> None:
    request = invitation(attendees=[PATIENT, SPOUSE])
    uninvite = cancel(request, dtstamp=at(10))
    uninvite = replace(uninvite, attendees=(Attendee(SPOUSE),))
    assert only(agenda_of(sent(DOCTOR, request), sent(DOCTOR, uninvite))) is EntryStatus.PROPOSED
    assert only(agenda_of(sent(DOCTOR, request), sent(DOCTOR, uninvite), owner=SPOUSE)) is (
        EntryStatus.CANCELLED
    )


def test_a_counter_is_pending_until_the_organizer_answers_it() -> None:
    request = invitation()
    proposal = counter(
        request,
        PATIENT,
        start=START + timedelta(hours=4),
        end=START + timedelta(hours=5),
        dtstamp=at(10),
    )
    agenda = agenda_of(sent(DOCTOR, request), sent(PATIENT, proposal))
    (entry,) = agenda.entries
    assert entry.status is EntryStatus.COUNTERED
    assert entry.counter == proposal
    assert entry.start == START  # nothing moves until the organizer agrees
    # The organizer accepts the new time with a new version of the request.
    accepted = reschedule(
        request, start=START + timedelta(hours=4), end=START + timedelta(hours=5), dtstamp=at(20)
    )
    agenda = agenda_of(sent(DOCTOR, request), sent(PATIENT, proposal), sent(DOCTOR, accepted))
    assert agenda.entries[0].status is EntryStatus.PROPOSED
    assert agenda.entries[0].counter is None
    assert agenda.entries[0].start == START + timedelta(hours=4)


def test_a_counter_is_answered_by_a_resent_request_at_the_same_sequence() -> None:
    request = invitation()
    later = START + timedelta(hours=4)
    proposal = counter(request, PATIENT, start=later, end=later, dtstamp=at(10))
    kept = invitation(dtstamp=at(20))  # "the time stays": same SEQUENCE, later DTSTAMP
    agenda = agenda_of(sent(DOCTOR, request), sent(PATIENT, proposal), sent(DOCTOR, kept))
    assert only(agenda) is EntryStatus.PROPOSED
    assert agenda.entries[0].counter is None


def test_the_organizers_own_agenda_sums_up_the_attendees() -> None:
    request = invitation(attendees=[PATIENT, SPOUSE])
    yes = reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=at(10))
    yes_too = reply_to(request, SPOUSE, PartStat.ACCEPTED, dtstamp=at(11))
    no = reply_to(request, SPOUSE, PartStat.DECLINED, dtstamp=at(12))
    proposal = counter(request, SPOUSE, start=START, end=START + timedelta(hours=2), dtstamp=at(13))
    view = {"owner": DOCTOR}
    assert only(agenda_of(sent(DOCTOR, request), **view)) is EntryStatus.PROPOSED
    assert only(
        agenda_of(sent(DOCTOR, request), sent(PATIENT, yes), sent(SPOUSE, yes_too), **view)
    ) is (EntryStatus.ACCEPTED)
    assert only(agenda_of(sent(DOCTOR, request), sent(PATIENT, yes), sent(SPOUSE, no), **view)) is (
        EntryStatus.PROPOSED
    )
    refusal = reply_to(request, PATIENT, PartStat.DECLINED, dtstamp=at(14))
    assert only(
        agenda_of(sent(DOCTOR, request), sent(PATIENT, refusal), sent(SPOUSE, no), **view)
    ) is (EntryStatus.DECLINED)
    countered = agenda_of(sent(DOCTOR, request), sent(SPOUSE, proposal), **view)
    assert only(countered) is EntryStatus.COUNTERED
    assert countered.entries[0].counter == proposal


def test_entries_are_sorted_by_start_and_a_reused_uid_stays_separate() -> None:
    mine = invitation(start=START + timedelta(days=2), end=START + timedelta(days=2, hours=1))
    theirs = invitation(organizer=OTHER_DOCTOR)  # same UID, another organizer
    other_cancel = cancel(theirs, dtstamp=at(10))
    agenda = agenda_of(
        sent(DOCTOR, mine), sent(OTHER_DOCTOR, theirs), sent(OTHER_DOCTOR, other_cancel)
    )
    assert [(e.organizer, e.status) for e in agenda.entries] == [
        (OTHER_DOCTOR, EntryStatus.CANCELLED),
        (DOCTOR, EntryStatus.PROPOSED),
    ]
    assert agenda.find("rdv-1@pli.test", DOCTOR) is agenda.entries[1]
    assert agenda.find("nothing") is None


# --- refusals ---------------------------------------------------------------------------


def test_a_reply_for_an_unknown_uid_is_refused() -> None:
    request = invitation()
    stray = reply_to(
        invitation(uid="never-sent@pli.test"), PATIENT, PartStat.ACCEPTED, dtstamp=at(5)
    )
    agenda = agenda_of(sent(DOCTOR, request), sent(PATIENT, stray, "<stray@pli.test>"))
    assert [(r.code, r.uid, r.message_id) for r in agenda.refused] == [
        ("unknown-appointment", "never-sent@pli.test", "<stray@pli.test>")
    ]
    assert only(agenda) is EntryStatus.PROPOSED
    with pytest.raises(RuleViolation) as caught:
        check_appointment(agenda, sent(PATIENT, stray))
    assert caught.value.code == "unknown-appointment"


@pytest.mark.parametrize("method", ["cancel", "counter"])
def test_a_cancel_or_counter_for_an_unknown_uid_is_refused(method: str) -> None:
    ghost = invitation(uid="ghost@pli.test")
    message = (
        sent(DOCTOR, cancel(ghost, dtstamp=at(1)))
        if method == "cancel"
        else sent(PATIENT, counter(ghost, PATIENT, start=START, end=START, dtstamp=at(1)))
    )
    assert [r.code for r in agenda_of(message).refused] == ["unknown-appointment"]
    with pytest.raises(RuleViolation) as caught:
        check_appointment(agenda_of(), message)
    assert caught.value.code == "unknown-appointment"


def test_only_the_organizer_can_invite_or_cancel() -> None:
    request = invitation()
    forged = sent(OTHER_DOCTOR, invitation(uid="forged@pli.test"))
    forged_cancel = sent(OTHER_DOCTOR, cancel(request, dtstamp=at(5)))
    agenda = agenda_of(sent(DOCTOR, request), forged, forged_cancel)
    assert sorted(r.code for r in agenda.refused) == ["appointment-not-organizer"] * 2
    assert only(agenda) is EntryStatus.PROPOSED
    for message in (forged, forged_cancel):
        with pytest.raises(RuleViolation) as caught:
            check_appointment(agenda, message)
        assert caught.value.code == "appointment-not-organizer"


def test_nobody_answers_for_someone_else() -> None:
    request = invitation(attendees=[PATIENT, SPOUSE])
    spoofed = sent(SPOUSE, reply_to(request, PATIENT, PartStat.DECLINED, dtstamp=at(5)))
    agenda = agenda_of(sent(DOCTOR, request), spoofed)
    assert [r.code for r in agenda.refused] == ["appointment-sender-mismatch"]
    assert only(agenda) is EntryStatus.PROPOSED
    with pytest.raises(RuleViolation) as caught:
        check_appointment(agenda, spoofed)
    assert caught.value.code == "appointment-sender-mismatch"


def test_an_uninvited_attendee_cannot_answer() -> None:
    request = invitation()
    crasher = invitation(attendees=[SPOUSE])
    answer = sent(SPOUSE, reply_to(crasher, SPOUSE, PartStat.ACCEPTED, dtstamp=at(5)))
    agenda = agenda_of(sent(DOCTOR, request), answer)
    assert [r.code for r in agenda.refused] == ["appointment-not-attendee"]
    with pytest.raises(RuleViolation) as caught:
        check_appointment(agenda, answer)
    assert caught.value.code == "appointment-not-attendee"


def test_an_invitation_that_does_not_concern_the_owner_is_refused() -> None:
    elsewhere = sent(DOCTOR, invitation(attendees=[SPOUSE]))
    assert [r.code for r in agenda_of(elsewhere).refused] == ["appointment-not-for-owner"]
    with pytest.raises(RuleViolation) as caught:
        check_appointment(agenda_of(), elsewhere)
    assert caught.value.code == "appointment-not-for-owner"


def test_valid_messages_pass_the_delivery_check() -> None:
    request = invitation()
    agenda = agenda_of(sent(DOCTOR, request))
    check_appointment(agenda_of(), sent(DOCTOR, request))
    check_appointment(
        agenda, sent(PATIENT, reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=at(1)))
    )
    check_appointment(agenda, sent(DOCTOR, cancel(request, dtstamp=at(2))))


# --- reminders --------------------------------------------------------------------------


def test_a_reminder_is_due_from_its_time_until_the_start() -> None:
    agenda = agenda_of(sent(DOCTOR, invitation(reminder=timedelta(hours=2))))
    fires = START - timedelta(hours=2)
    assert due_reminders(agenda, fires - timedelta(seconds=1)) == ()
    (reminder,) = due_reminders(agenda, fires)
    assert reminder.at == fires
    assert reminder.start == START
    assert reminder.summary == "Consultation"
    assert due_reminders(agenda, START) == ()


def test_a_scheduled_job_sees_each_reminder_once() -> None:
    agenda = agenda_of(sent(DOCTOR, invitation(reminder=timedelta(hours=2))))
    fires = START - timedelta(hours=2)
    first_run = fires + timedelta(minutes=1)
    assert len(due_reminders(agenda, first_run, since=fires - timedelta(minutes=4))) == 1
    assert due_reminders(agenda, first_run + timedelta(minutes=5), since=first_run) == ()


def test_cancelled_and_declined_appointments_remind_nobody() -> None:
    request = invitation()
    when = START - timedelta(hours=1)
    assert len(due_reminders(agenda_of(sent(DOCTOR, request)), when)) == 1
    cancelled = agenda_of(sent(DOCTOR, request), sent(DOCTOR, cancel(request, dtstamp=at(1))))
    declined = agenda_of(
        sent(DOCTOR, request),
        sent(PATIENT, reply_to(request, PATIENT, PartStat.DECLINED, dtstamp=at(1))),
    )
    assert due_reminders(cancelled, when) == ()
    assert due_reminders(declined, when) == ()
    assert due_reminders(agenda_of(sent(DOCTOR, invitation(reminder=None))), when) == ()


def test_reminders_are_listed_in_time_order() -> None:
    early = invitation(uid="a@pli.test", reminder=timedelta(hours=3))
    late = invitation(uid="b@pli.test", reminder=timedelta(hours=1))
    due = due_reminders(
        agenda_of(sent(DOCTOR, late), sent(DOCTOR, early)), START - timedelta(minutes=1)
    )
    assert [r.uid for r in due] == ["a@pli.test", "b@pli.test"]


def test_reminders_need_aware_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_reminders(agenda_of(), datetime(2026, 12, 1, 8, 0))


# --- end to end and order independence ---------------------------------------------------


def test_an_agenda_from_real_messages_including_a_thunderbird_reply() -> None:
    from tests.messaging.test_appointment import THUNDERBIRD_REPLY, message_with_calendar

    request = new_request(
        uid="rdv-1@medecin.pli.test",
        organizer=Address.parse("sophie.martin@medecin.pli.test"),
        attendees=[PATIENT],
        start=START,
        end=START + timedelta(minutes=30),
        summary="Consultation de suivi",
        dtstamp=T0,
    )
    received = [
        ReceivedAppointment(
            request.organizer, parse_appointment(build_appointment(request)), "<1>"
        ),
        ReceivedAppointment(
            PATIENT,
            parse_appointment(message_with_calendar(THUNDERBIRD_REPLY, method="REPLY")),
            "<2>",
        ),
    ]
    agenda = derive_agenda(received, owner=PATIENT)
    assert only(agenda) is EntryStatus.ACCEPTED


def _history() -> list[ReceivedAppointment]:
    request = invitation(attendees=[PATIENT, SPOUSE])
    moved = reschedule(
        request,
        start=START + timedelta(days=1),
        end=START + timedelta(days=1, hours=1),
        dtstamp=at(30),
    )
    other = invitation(
        uid="rdv-2@pli.test",
        start=START + timedelta(days=3),
        end=START + timedelta(days=3, hours=1),
    )
    return [
        sent(DOCTOR, request),
        sent(PATIENT, reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=at(10))),
        sent(
            SPOUSE,
            counter(request, SPOUSE, start=START, end=START + timedelta(hours=2), dtstamp=at(20)),
        ),
        sent(DOCTOR, moved),
        sent(PATIENT, reply_to(moved, PATIENT, PartStat.TENTATIVE, dtstamp=at(40))),
        sent(DOCTOR, other),
        sent(DOCTOR, cancel(other, dtstamp=at(50))),
        sent(
            PATIENT,
            reply_to(invitation(uid="x@pli.test"), PATIENT, PartStat.ACCEPTED, dtstamp=at(60)),
        ),
    ]


def test_a_whole_history_gives_the_expected_agenda() -> None:
    agenda = derive_agenda(_history(), owner=PATIENT)
    assert [(e.uid, e.status, e.sequence) for e in agenda.entries] == [
        ("rdv-1@pli.test", EntryStatus.TENTATIVE, 1),
        ("rdv-2@pli.test", EntryStatus.CANCELLED, 0),
    ]
    assert [r.code for r in agenda.refused] == ["unknown-appointment"]


@settings(max_examples=50, deadline=None)
@given(st.permutations(_history()))
def test_the_order_of_the_messages_does_not_matter(messages: list[ReceivedAppointment]) -> None:
    assert derive_agenda(messages, owner=PATIENT) == derive_agenda(_history(), owner=PATIENT)
