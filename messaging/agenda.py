"""The agenda of a mailbox owner, derived from the appointment messages they hold.

Pure functions over typed iTIP messages (RFC 5546, carried by RFC 6047 iMIP and written in
RFC 5545 iCalendar, see :mod:`messaging.kinds.appointment`). Nothing is stored: the agenda
is recomputed from the messages, in any order, and the same messages always give the same
agenda.

How the current state is chosen (RFC 5546 §2.1.4, §2.1.5):

- An appointment is identified by its organizer *and* its UID. UIDs are meant to be
  globally unique, but scoping them by organizer means that nobody can take over someone
  else's appointment by reusing its UID.
- Among the organizer's REQUESTs, the one with the highest ``(SEQUENCE, DTSTAMP)`` is the
  current version: a reschedule with a higher SEQUENCE wins over an earlier version, and
  at equal SEQUENCE the later DTSTAMP wins.
- A CANCEL at or above the current ``(SEQUENCE, DTSTAMP)`` cancels (a tie goes to the
  cancellation: a patient who goes to a cancelled appointment loses less than one who
  misses a maintained one). An older CANCEL was overtaken by a new REQUEST.
- An attendee's REPLY counts when its SEQUENCE is at least the current one; a REPLY to an
  older version is stale, because a reschedule asks every attendee again. Among an
  attendee's answers the latest ``(SEQUENCE, DTSTAMP)`` wins.
- A COUNTER stays pending until the organizer sends a REQUEST after it (a higher SEQUENCE,
  or the same SEQUENCE with a later DTSTAMP), which is how an organizer answers one.

Who may say what (RFC 6047 §3 asks the receiver to check it; ``sender`` is the envelope's
verified sender, never the ``From`` header):

- REQUEST and CANCEL come from the organizer (``appointment-not-organizer``);
- a REPLY or a COUNTER comes from the attendee it speaks for (``appointment-sender-
  mismatch``), who was invited by the current REQUEST (``appointment-not-attendee``);
- an answer or a cancellation of an appointment nobody asked for is refused
  (``unknown-appointment``); a REQUEST that does not concern the owner is refused
  (``appointment-not-for-owner``).

:func:`derive_agenda` never raises on a bad message, so one bad message cannot hide an
agenda: it lists it in :attr:`Agenda.refused`. :func:`check_appointment` is the same check
for one incoming message at delivery time; it raises :class:`~messaging.errors.RuleViolation`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from messaging.errors import RuleViolation
from messaging.kinds.appointment import Appointment, Attendee, EventStatus, Method, PartStat
from messaging.types import Address

__all__ = [
    "Agenda",
    "AgendaEntry",
    "EntryStatus",
    "ReceivedAppointment",
    "Refusal",
    "Reminder",
    "check_appointment",
    "derive_agenda",
    "due_reminders",
]


class EntryStatus(StrEnum):
    """Where an appointment stands for the agenda's owner."""

    PROPOSED = "proposed"
    """Invited, no answer yet."""
    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    COUNTERED = "countered"
    """Another time was proposed and the organizer has not answered yet."""


@dataclass(frozen=True, slots=True)
class ReceivedAppointment:
    """An appointment message with the verified sender of the envelope that carried it."""

    sender: Address
    appointment: Appointment
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class AgendaEntry:
    """The current state of one appointment."""

    uid: str
    organizer: Address
    organizer_name: str
    status: EntryStatus
    sequence: int
    start: datetime
    end: datetime | None
    tzid: str
    summary: str
    location: str
    description: str
    attendees: tuple[Attendee, ...]
    """Everyone invited by the current version, with their latest valid answer."""
    reminder: timedelta | None
    counter: Appointment | None = None
    """The pending COUNTER: the owner's own, or the latest one when the owner organizes."""

    @property
    def reminder_at(self) -> datetime | None:
        return None if self.reminder is None else self.start - self.reminder


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message the derivation left out, and why (``code`` is stable)."""

    code: str
    reason: str
    uid: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Reminder:
    """A reminder that is due: show or send it."""

    uid: str
    organizer: Address
    at: datetime
    start: datetime
    summary: str
    location: str


@dataclass(frozen=True, slots=True)
class Agenda:
    """The owner's appointments, by start time, and the messages that were refused."""

    owner: Address
    entries: tuple[AgendaEntry, ...]
    refused: tuple[Refusal, ...] = ()

    def find(self, uid: str, organizer: Address | None = None) -> AgendaEntry | None:
        for entry in self.entries:
            if entry.uid == uid and (organizer is None or entry.organizer == organizer):
                return entry
        return None


_Key = tuple[Address, str]


def _key(a: Appointment) -> _Key:
    return (a.organizer, a.uid)


def _rank(m: ReceivedAppointment) -> tuple[int, datetime, str, str]:
    # SEQUENCE then DTSTAMP decide (RFC 5546 §2.1.5); the message id and the content only
    # break exact ties, so that the result never depends on the order of the input.
    a = m.appointment
    return (a.sequence, a.dtstamp, m.message_id, repr(a))


def _refusal(m: ReceivedAppointment, code: str, reason: str) -> Refusal:
    return Refusal(code, reason, m.appointment.uid, m.message_id)


def _check_request(m: ReceivedAppointment, owner: Address) -> Refusal | None:
    a = m.appointment
    if m.sender != a.organizer:
        return _refusal(
            m, "appointment-not-organizer", f"{m.sender} is not the organizer {a.organizer}"
        )
    if owner != a.organizer and owner not in {att.address for att in a.attendees}:
        return _refusal(m, "appointment-not-for-owner", f"{owner} is not invited to {a.uid}")
    return None


def _check_follow_up(m: ReceivedAppointment, invited: frozenset[Address] | None) -> Refusal | None:
    """A CANCEL, REPLY or COUNTER against the attendees of the current REQUEST, if any."""
    a = m.appointment
    if a.method is Method.CANCEL:
        if m.sender != a.organizer:
            return _refusal(
                m, "appointment-not-organizer", f"{m.sender} cannot cancel for {a.organizer}"
            )
    elif m.sender not in {att.address for att in a.attendees} or (
        a.method is Method.REPLY and a.attendees[0].address != m.sender
    ):
        return _refusal(
            m, "appointment-sender-mismatch", f"{m.sender} answers for another attendee"
        )
    if invited is None:
        return _refusal(
            m, "unknown-appointment", f"no invitation {a.uid} from {a.organizer} is known"
        )
    if a.method is not Method.CANCEL and m.sender not in invited:
        return _refusal(m, "appointment-not-attendee", f"{m.sender} was not invited to {a.uid}")
    return None


_OWN_STATUS = {
    PartStat.NEEDS_ACTION: EntryStatus.PROPOSED,
    PartStat.ACCEPTED: EntryStatus.ACCEPTED,
    PartStat.TENTATIVE: EntryStatus.TENTATIVE,
    PartStat.DECLINED: EntryStatus.DECLINED,
    PartStat.DELEGATED: EntryStatus.DECLINED,  # someone else goes in the owner's place
}


def _cancels(cancel: Appointment, current: Appointment, owner: Address) -> bool:
    if (cancel.sequence, cancel.dtstamp) < (current.sequence, current.dtstamp):
        return False  # overtaken by a later REQUEST
    # A CANCEL naming attendees only removes those (RFC 5546 §3.2.5).
    named = {att.address for att in cancel.attendees}
    return not named or owner == cancel.organizer or owner in named


def _entry(
    owner: Address,
    current: Appointment,
    cancels: list[Appointment],
    answers: list[ReceivedAppointment],
) -> AgendaEntry:
    latest: dict[Address, ReceivedAppointment] = {}
    for m in answers:
        a = m.appointment
        if a.sequence < current.sequence:
            continue  # answers an older version
        if a.method is Method.COUNTER and (a.sequence, a.dtstamp) <= (
            current.sequence,
            current.dtstamp,
        ):
            continue  # the organizer sent a REQUEST after it: the counter is answered
        previous = latest.get(m.sender)
        if previous is None or _rank(m) > _rank(previous):
            latest[m.sender] = m
    attendees = tuple(
        replace(att, partstat=answer.appointment.attendees[0].partstat)
        if (answer := latest.get(att.address)) is not None
        and answer.appointment.method is Method.REPLY
        else att
        for att in current.attendees
    )
    counters = sorted(
        (m for m in latest.values() if m.appointment.method is Method.COUNTER), key=_rank
    )
    counter: Appointment | None = None
    if current.status is EventStatus.CANCELLED or any(_cancels(c, current, owner) for c in cancels):
        status = EntryStatus.CANCELLED
    elif owner == current.organizer:
        others = [att.partstat for att in attendees if att.address != owner]
        if counters:
            status, counter = EntryStatus.COUNTERED, counters[-1].appointment
        elif others and all(p is PartStat.ACCEPTED for p in others):
            status = EntryStatus.ACCEPTED
        elif others and all(p is PartStat.DECLINED for p in others):
            status = EntryStatus.DECLINED
        else:
            status = EntryStatus.PROPOSED
    else:
        mine = latest.get(owner)
        if mine is not None and mine.appointment.method is Method.COUNTER:
            status, counter = EntryStatus.COUNTERED, mine.appointment
        else:
            own = next(att.partstat for att in attendees if att.address == owner)
            status = _OWN_STATUS[own]
    if current.start is None:  # pragma: no cover - Appointment refuses a REQUEST without it
        raise ValueError("a REQUEST without DTSTART")
    return AgendaEntry(
        uid=current.uid,
        organizer=current.organizer,
        organizer_name=current.organizer_name,
        status=status,
        sequence=current.sequence,
        start=current.start,
        end=current.end,
        tzid=current.tzid,
        summary=current.summary,
        location=current.location,
        description=current.description,
        attendees=attendees,
        reminder=current.reminder,
        counter=counter,
    )


def derive_agenda(messages: Iterable[ReceivedAppointment], *, owner: Address) -> Agenda:
    """The owner's agenda from every appointment message they sent or received."""
    refused: list[Refusal] = []
    requests: dict[_Key, list[ReceivedAppointment]] = defaultdict(list)
    follow_ups: list[ReceivedAppointment] = []
    for m in messages:
        if m.appointment.method is Method.REQUEST:
            problem = _check_request(m, owner)
            if problem is None:
                requests[_key(m.appointment)].append(m)
            else:
                refused.append(problem)
        else:
            follow_ups.append(m)
    current = {key: max(versions, key=_rank).appointment for key, versions in requests.items()}
    cancels: dict[_Key, list[Appointment]] = defaultdict(list)
    answers: dict[_Key, list[ReceivedAppointment]] = defaultdict(list)
    for m in follow_ups:
        key = _key(m.appointment)
        request = current.get(key)
        invited = None if request is None else frozenset(a.address for a in request.attendees)
        problem = _check_follow_up(m, invited)
        if problem is not None:
            refused.append(problem)
        elif m.appointment.method is Method.CANCEL:
            cancels[key].append(m.appointment)
        else:
            answers[key].append(m)
    entries = sorted(
        (_entry(owner, request, cancels[key], answers[key]) for key, request in current.items()),
        key=lambda e: (e.start, e.uid, str(e.organizer)),
    )
    refused.sort(key=lambda r: (r.uid, r.message_id, r.code))
    return Agenda(owner=owner, entries=tuple(entries), refused=tuple(refused))


def check_appointment(agenda: Agenda, message: ReceivedAppointment) -> None:
    """Refuse an incoming appointment message the owner's agenda cannot take.

    Raises :class:`~messaging.errors.RuleViolation` with the codes of the module docstring,
    ``unknown-appointment`` for a REPLY, COUNTER or CANCEL of an appointment not in it.
    """
    a = message.appointment
    if a.method is Method.REQUEST:
        problem = _check_request(message, agenda.owner)
    else:
        entry = agenda.find(a.uid, a.organizer)
        invited = None if entry is None else frozenset(att.address for att in entry.attendees)
        problem = _check_follow_up(message, invited)
    if problem is not None:
        raise RuleViolation(problem.code, problem.reason)


def due_reminders(
    agenda: Agenda, now: datetime, *, since: datetime | None = None
) -> tuple[Reminder, ...]:
    """Reminders whose time has come and whose appointment has not started yet.

    A scheduled job passes the time of its previous run as ``since`` so that each reminder
    is due exactly once. Cancelled and declined appointments remind nobody.
    """
    if now.tzinfo is None or (since is not None and since.tzinfo is None):
        raise ValueError("reminders are computed with timezone-aware times")
    due: list[Reminder] = []
    for entry in agenda.entries:
        at = entry.reminder_at
        if at is None or entry.status in (EntryStatus.CANCELLED, EntryStatus.DECLINED):
            continue
        if at <= now < entry.start and (since is None or at > since):
            due.append(
                Reminder(entry.uid, entry.organizer, at, entry.start, entry.summary, entry.location)
            )
    due.sort(key=lambda r: (r.at, r.uid))
    return tuple(due)
