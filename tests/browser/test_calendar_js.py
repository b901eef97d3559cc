"""The webmail's iCalendar reader, agenda and REPLY writer (web/frontend/src/calendar.js) in
Chromium, against the Python reference: RFC 5545 (iCalendar), RFC 5546 (iTIP) and RFC 6047
(iMIP) read and written the same way on both sides.

The calendars come from the real Python writers (``new_request``, ``reschedule``,
``cancel``, ``reply_to``, ``to_ical``, ``build_appointment``) or are written here by hand
the way Thunderbird writes them; the browser's results are compared with
``parse_calendar``, ``parse_appointment`` and ``derive_agenda``. No mocks: a real server
serves the built page with its CSP.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from playwright.async_api import Page

from messaging._compose import parse_lenient
from messaging.agenda import AgendaEntry, ReceivedAppointment, derive_agenda
from messaging.errors import InvalidMessage
from messaging.kinds import classify, declared_kind
from messaging.kinds.appointment import (
    JSON_TYPE,
    Appointment,
    Attendee,
    Method,
    PartStat,
    build_appointment,
    cancel,
    counter,
    new_request,
    parse_appointment,
    parse_calendar,
    reply_to,
    reschedule,
    to_ical,
)
from messaging.types import Address, MessageKind

PARIS = ZoneInfo("Europe/Paris")
DOCTOR = Address.parse("elodie.dupre@medecin.pli.test")
OTHER = Address.parse("marc.kine@cabinet.pli.test")
PATIENT = Address.parse("180017512345678@patient.pli.test")
SISTER = Address.parse("280017512345679@patient.pli.test")
STAMP = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

SUMMARY = "Consultation, suivi tension; bilan été"
LOCATION = "Cabinet Dupré, 3 rue de l'Été; 2e étage"
DESCRIPTION = (
    "Apportez vos résultats d'analyses; la carte Vitale, l'ordonnance C:\\suivi précédente.\n"
    "À jeun depuis 8 h, s'il vous plaît. Merci de prévenir 48 h à l'avance en cas d'empêchement."
)


# --- what runs in the page ---------------------------------------------------------------

# Dates cross as ISO strings: JSON is what page.evaluate carries, and an ISO "Z" string says
# the instant without any time zone of the test machine in between.
PARSE = """
(texts) => texts.map((text) => {
  const c = globalThis.pliCalendar;
  try {
    return { ok: JSON.parse(JSON.stringify(c.parseCalendar(text))) };
  } catch (e) {
    const calendarError = e instanceof c.CalendarError;
    return { error: String(e.message), code: e.code ?? null, calendarError };
  }
})
"""

AGENDA = """
([items, owner]) => {
  const c = globalThis.pliCalendar;
  const parsed = items.map((i) => ({
    sender: i.sender, appointment: c.parseCalendar(i.text),
    envelopeId: i.id, messageId: i.id, thread: "thread-" + i.id,
  }));
  const forward = JSON.parse(JSON.stringify(c.deriveAgenda(parsed, owner)));
  const backward = JSON.parse(JSON.stringify(c.deriveAgenda([...parsed].reverse(), owner)));
  return [forward, backward];
}
"""

BUILD_REPLY = """
([text, owner, name, partstat, now]) => {
  const c = globalThis.pliCalendar;
  return c.buildReply(c.parseCalendar(text), owner, name, partstat, new Date(now));
}
"""

REPLY_MESSAGE = """
([text, args]) => {
  const c = globalThis.pliCalendar;
  const request = c.parseCalendar(text);
  const bytes = c.replyMessage({ ...args, request, now: new Date(args.now) });
  const read = c.appointmentOfMessage(bytes);
  return {
    bytes: Array.from(bytes),
    headers: read.message.headers,
    calendars: read.message.calendars,
    body: read.message.body,
    subject: read.message.subject,
    appointment: JSON.parse(JSON.stringify(read.appointment)),
  };
}
"""

READ_MESSAGE = """
(bytes) => {
  const c = globalThis.pliCalendar;
  let read;
  try {
    read = c.appointmentOfMessage(new Uint8Array(bytes));
  } catch (e) {
    return { code: e.code ?? null, calendarError: e instanceof c.CalendarError };
  }
  return {
    headers: read.message.headers,
    calendars: read.message.calendars,
    kind: read.message.kind,
    body: read.message.body,
    appointment: JSON.parse(JSON.stringify(read.appointment)),
  };
}
"""

REFUSED_ANSWER = """
([text, owner, partstat]) => {
  const c = globalThis.pliCalendar;
  try {
    c.buildReply(c.parseCalendar(text), owner, "", partstat);
    return null;
  } catch (e) {
    return { code: e.code ?? null, calendarError: e instanceof c.CalendarError };
  }
}
"""


async def js_parse(page: Page, *texts: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = await page.evaluate(PARSE, list(texts))
    return results


async def js_parsed(page: Page, text: str) -> dict[str, Any]:
    [result] = await js_parse(page, text)
    assert "ok" in result, f"the browser refused the calendar: {result}"
    parsed: dict[str, Any] = result["ok"]
    return parsed


def when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def instant(value: datetime | None) -> float | None:
    # PEP 495: an aware datetime in a repeated or skipped hour never equals one of another
    # zone, whatever the instant; the POSIX timestamp says the instant and nothing else.
    return None if value is None else value.timestamp()


def assert_same_appointment(js: dict[str, Any], py: Appointment) -> None:
    """Every field the browser shows is the one the server reads."""
    assert js["method"] == py.method.value
    assert js["uid"] == py.uid
    assert js["sequence"] == py.sequence
    assert instant(when(js["dtstamp"])) == instant(py.dtstamp)
    assert instant(when(js["start"])) == instant(py.start)
    assert instant(when(js["end"])) == instant(py.end)
    assert js["tzid"] == py.tzid
    assert js["summary"] == py.summary
    assert js["location"] == py.location
    assert js["description"] == py.description
    assert js["comment"] == py.comment
    assert js["status"] == (None if py.status is None else py.status.value)
    assert js["organizer"] == {"address": str(py.organizer), "name": py.organizer_name}
    assert js["attendees"] == [
        {"address": str(a.address), "name": a.name, "partstat": a.partstat.value, "rsvp": a.rsvp}
        for a in py.attendees
    ]
    reminder = js["reminderMinutes"]
    assert (None if reminder is None else timedelta(minutes=reminder)) == py.reminder


# --- calendars ---------------------------------------------------------------------------


def request(
    uid: str = "rdv-1@medecin.pli.test",
    *,
    attendees: Sequence[Address | Attendee] = (PATIENT,),
    start: datetime = datetime(2026, 12, 1, 9, 30, tzinfo=PARIS),
    minutes: int = 30,
    dtstamp: datetime = STAMP,
    sequence: int = 0,
) -> Appointment:
    return new_request(
        uid=uid,
        organizer=DOCTOR,
        organizer_name="Dr Élodie Dupré",
        attendees=attendees,
        start=start,
        end=start + timedelta(minutes=minutes),
        summary=SUMMARY,
        location=LOCATION,
        description=DESCRIPTION,
        dtstamp=dtstamp,
        reminder=timedelta(hours=24),
        sequence=sequence,
    )


def ical(appointment: Appointment) -> str:
    return to_ical(appointment).decode("utf-8")


# Thunderbird (Lightning) writes its own zone names, folds with a tab as well as a space,
# uses DURATION rather than DTEND and upper-case MAILTO: with mixed-case addresses.
THUNDERBIRD = (
    "BEGIN:VCALENDAR\r\n"
    "PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\n"
    "VERSION:2.0\r\n"
    "METHOD:REQUEST\r\n"
    "BEGIN:VTIMEZONE\r\n"
    "TZID:/mozilla.org/20070129_1/Europe/Paris\r\n"
    "X-LIC-LOCATION:Europe/Paris\r\n"
    "BEGIN:DAYLIGHT\r\n"
    "TZOFFSETFROM:+0100\r\n"
    "TZOFFSETTO:+0200\r\n"
    "TZNAME:CEST\r\n"
    "DTSTART:19700329T020000\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n"
    "END:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\n"
    "TZOFFSETFROM:+0200\r\n"
    "TZOFFSETTO:+0100\r\n"
    "TZNAME:CET\r\n"
    "DTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n"
    "END:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
    "BEGIN:VEVENT\r\n"
    "CREATED:20260310T081500Z\r\n"
    "LAST-MODIFIED:20260310T081700Z\r\n"
    "DTSTAMP:20260310T081700Z\r\n"
    "UID:4f1c2d6e-9b7a-4c1e-8a53-0d2e9f6b7c11\r\n"
    "SUMMARY:Séance de kinésithérapie\\, genou droit\r\n"
    'ORGANIZER;CN="Kiné, Marc":MAILTO:Marc.Kine@Cabinet.PLI.test\r\n'
    "ATTENDEE;RSVP=TRUE;CN=Jeanne Martin;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPA\r\n"
    "\tNT;CUTYPE=INDIVIDUAL:MAILTO:180017512345678@patient.pli.test\r\n"
    "DTSTART;TZID=/mozilla.org/20070129_1/Europe/Paris:20260715T083000\r\n"
    "DURATION:PT45M\r\n"
    "LOCATION:12\\, avenue Jean Jaurès\\; 2e étage\r\n"
    "DESCRIPTION:Prévoir une serviette.\\nMerci d'arriver 5 min avant\\, pas pl\r\n"
    " us.\r\n"
    "SEQUENCE:2\r\n"
    "TRANSP:OPAQUE\r\n"
    "X-MOZ-SEND-INVITATIONS:TRUE\r\n"
    "BEGIN:VALARM\r\n"
    "ACTION:DISPLAY\r\n"
    "TRIGGER;VALUE=DURATION:-PT15M\r\n"
    "DESCRIPTION:Rappel\r\n"
    "END:VALARM\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)

# Floating times (no zone at all), in the hour of the autumn change that happens twice, and
# a DURATION of a day and an hour that crosses it; an absolute alarm a day before, and an
# alarm three days before the end, the earlier of the two (47 hours before the start).
FLOATING = (
    "BEGIN:VCALENDAR\n"
    "PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\n"
    "VERSION:2.0\n"
    "METHOD:REQUEST\n"
    "BEGIN:VEVENT\n"
    "DTSTAMP:20261001T120000Z\n"
    "UID:floating-1@cabinet.pli.test\n"
    "SUMMARY:Holter tensionnel\n"
    "ORGANIZER:mailto:marc.kine@cabinet.pli.test\n"
    "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:180017512345678@patient.pli.test\n"
    "DTSTART:20261025T023000\n"
    "DURATION:P1DT1H\n"
    "BEGIN:VALARM\n"
    "ACTION:DISPLAY\n"
    "TRIGGER;VALUE=DATE-TIME:20261024T003000Z\n"
    "END:VALARM\n"
    "BEGIN:VALARM\n"
    "ACTION:DISPLAY\n"
    "TRIGGER;RELATED=END:-P3D\n"
    "END:VALARM\n"
    "END:VEVENT\n"
    "END:VCALENDAR\n"
)

# The spring change: 02:30 does not exist in Paris that night.
GAP = (
    THUNDERBIRD.replace(
        "DTSTART;TZID=/mozilla.org/20070129_1/Europe/Paris:20260715T083000",
        "DTSTART;TZID=Europe/Paris:20260329T023000",
    )
    .replace("DURATION:PT45M", "DTEND;TZID=Europe/Paris:20260329T040000")
    .replace("TRIGGER;VALUE=DURATION:-PT15M", "TRIGGER:-PT30M")
)


async def test_python_requests_read_the_same_in_the_browser(page: Page) -> None:
    winter = request()
    summer = reschedule(
        winter,
        start=datetime(2027, 7, 15, 8, 15, tzinfo=PARIS),
        end=datetime(2027, 7, 15, 9, 0, tzinfo=PARIS),
        dtstamp=STAMP + timedelta(days=2),
    )
    called_off = cancel(summer, dtstamp=STAMP + timedelta(days=3), comment="Le cabinet est fermé.")
    texts = [ical(winter), ical(summer), ical(called_off)]
    # What the test claims to cover is really in the text Python wrote.
    assert "BEGIN:VTIMEZONE" in texts[0]
    assert "DTSTART;TZID=Europe/Paris:20261201T093000" in texts[0]
    assert "BEGIN:VALARM" in texts[0]
    assert "\r\n " in texts[0].split("DESCRIPTION:", 1)[1], "the description is folded"
    assert "\\," in texts[0] and "\\;" in texts[0] and "\\\\" in texts[0]
    results = await js_parse(page, *texts)
    for text, result in zip(texts, results, strict=True):
        assert "ok" in result, result
        assert_same_appointment(result["ok"], parse_calendar(text))
    first, second, third = (r["ok"] for r in results)
    assert first["start"] == "2026-12-01T08:30:00.000Z"  # CET, UTC+1
    assert second["start"] == "2027-07-15T06:15:00.000Z"  # CEST, UTC+2
    assert second["sequence"] == 1
    assert first["summary"] == SUMMARY
    assert first["location"] == LOCATION
    assert first["description"] == DESCRIPTION
    assert first["reminderMinutes"] == 24 * 60
    assert first["organizer"] == {"address": str(DOCTOR), "name": "Dr Élodie Dupré"}
    assert third["method"] == "CANCEL"
    assert third["status"] == "CANCELLED"
    assert third["comment"] == "Le cabinet est fermé."


@pytest.mark.parametrize(
    ("text", "start", "end", "reminder"),
    [
        (THUNDERBIRD, "2026-07-15T06:30:00.000Z", "2026-07-15T07:15:00.000Z", 15),
        (THUNDERBIRD.replace("\r\n", "\n"), "2026-07-15T06:30:00.000Z", None, 15),
        (FLOATING, "2026-10-25T00:30:00.000Z", "2026-10-26T02:30:00.000Z", 47 * 60),
        (GAP, "2026-03-29T01:30:00.000Z", "2026-03-29T02:00:00.000Z", 30),
    ],
    ids=["thunderbird", "thunderbird-lf", "floating-autumn", "spring-gap"],
)
async def test_calendars_written_by_hand_read_the_same_in_the_browser(
    page: Page, text: str, start: str, end: str | None, reminder: int
) -> None:
    js = await js_parsed(page, text)
    py = parse_calendar(text)
    assert_same_appointment(js, py)
    assert js["start"] == start
    if end is not None:
        assert js["end"] == end
    assert js["reminderMinutes"] == reminder
    assert js["tzid"] == "Europe/Paris"


async def test_thunderbird_fields_are_unescaped_and_lower_cased(page: Page) -> None:
    js = await js_parsed(page, THUNDERBIRD)
    assert js["organizer"] == {"address": "marc.kine@cabinet.pli.test", "name": "Kiné, Marc"}
    assert js["attendees"] == [
        {"address": str(PATIENT), "name": "Jeanne Martin", "partstat": "NEEDS-ACTION", "rsvp": True}
    ]
    assert js["summary"] == "Séance de kinésithérapie, genou droit"
    assert js["location"] == "12, avenue Jean Jaurès; 2e étage"
    assert js["description"] == "Prévoir une serviette.\nMerci d'arriver 5 min avant, pas plus."
    assert js["sequence"] == 2
    assert js["end"] == "2026-07-15T07:15:00.000Z"


# --- the agenda --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One appointment message as the mailbox holds it: the envelope's sender and its id."""

    id: str
    sender: Address
    appointment: Appointment


def agenda_view(entries: Sequence[AgendaEntry]) -> list[tuple[Any, ...]]:
    return [
        (e.uid, str(e.organizer), e.status.value, e.sequence, e.start, e.reminder_at)
        for e in entries
    ]


def js_agenda_view(entries: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            e["uid"],
            e["organizer"],
            e["status"],
            e["sequence"],
            when(e["start"]),
            when(e["reminderAt"]),
        )
        for e in entries
    ]


def scenarios() -> dict[str, tuple[list[Sent], list[str], list[str]]]:
    """Each: the messages, the statuses expected in start order, the refusal codes."""
    first = request()
    moved = reschedule(
        first,
        start=datetime(2026, 12, 3, 14, 0, tzinfo=PARIS),
        end=datetime(2026, 12, 3, 14, 30, tzinfo=PARIS),
        dtstamp=STAMP + timedelta(days=1),
    )
    day = timedelta(hours=5)
    accept0 = reply_to(first, PATIENT, PartStat.ACCEPTED, dtstamp=STAMP + day)
    decline1 = reply_to(moved, PATIENT, PartStat.DECLINED, dtstamp=STAMP + 6 * day)
    tentative0 = reply_to(first, PATIENT, PartStat.TENTATIVE, dtstamp=STAMP + day)
    called_off = cancel(first, dtstamp=STAMP + 2 * day)
    other_time = counter(
        first,
        PATIENT,
        start=datetime(2026, 12, 2, 9, 30, tzinfo=PARIS),
        end=datetime(2026, 12, 2, 10, 0, tzinfo=PARIS),
        dtstamp=STAMP + day,
    )
    # The organizer answers a COUNTER by sending the invitation again, at the same SEQUENCE.
    resent = replace(first, dtstamp=STAMP + 2 * day)
    # The same (SEQUENCE, DTSTAMP) as the invitation: RFC 5546 cannot tell which came last.
    same_time_cancel = replace(called_off, sequence=first.sequence, dtstamp=first.dtstamp)
    # SEQUENCE 1 like the CANCEL, with a later DTSTAMP: the organizer changed their mind.
    moved_again = reschedule(
        first,
        start=datetime(2026, 12, 8, 16, 0, tzinfo=PARIS),
        end=datetime(2026, 12, 8, 16, 30, tzinfo=PARIS),
        dtstamp=STAMP + 3 * day,
    )
    later = request("rdv-2@medecin.pli.test", start=datetime(2027, 1, 5, 11, 0, tzinfo=PARIS))
    not_me = request("rdv-3@medecin.pli.test", attendees=(SISTER,))
    return {
        "invited": ([Sent("m1", DOCTOR, first)], ["proposed"], []),
        "accepted": (
            [Sent("m1", DOCTOR, first), Sent("m2", PATIENT, accept0)],
            ["accepted"],
            [],
        ),
        "tentative": (
            [Sent("m1", DOCTOR, first), Sent("m2", PATIENT, tentative0)],
            ["tentative"],
            [],
        ),
        "rescheduled-after-accept": (
            [Sent("m1", DOCTOR, first), Sent("m2", PATIENT, accept0), Sent("m3", DOCTOR, moved)],
            ["proposed"],
            [],
        ),
        "stale-reply-ignored": (
            [Sent("m1", DOCTOR, first), Sent("m3", DOCTOR, moved), Sent("m2", PATIENT, accept0)],
            ["proposed"],
            [],
        ),
        "declined-new-version": (
            [
                Sent("m1", DOCTOR, first),
                Sent("m2", PATIENT, accept0),
                Sent("m3", DOCTOR, moved),
                Sent("m4", PATIENT, decline1),
            ],
            ["declined"],
            [],
        ),
        "cancelled": (
            [
                Sent("m1", DOCTOR, first),
                Sent("m2", PATIENT, accept0),
                Sent("m5", DOCTOR, called_off),
            ],
            ["cancelled"],
            [],
        ),
        "cancel-tie-goes-to-the-cancellation": (
            [Sent("m1", DOCTOR, first), Sent("m5", DOCTOR, same_time_cancel)],
            ["cancelled"],
            [],
        ),
        "cancel-overtaken-by-new-request": (
            [
                Sent("m1", DOCTOR, first),
                Sent("m5", DOCTOR, called_off),
                Sent("m6", DOCTOR, moved_again),
            ],
            ["proposed"],
            [],
        ),
        "countered": (
            [Sent("m1", DOCTOR, first), Sent("m7", PATIENT, other_time)],
            ["countered"],
            [],
        ),
        "counter-answered-by-a-later-request": (
            [
                Sent("m1", DOCTOR, first),
                Sent("m7", PATIENT, other_time),
                Sent("m3", DOCTOR, resent),
            ],
            ["proposed"],
            [],
        ),
        "counter-then-rescheduled": (
            [Sent("m1", DOCTOR, first), Sent("m7", PATIENT, other_time), Sent("m3", DOCTOR, moved)],
            ["proposed"],
            [],
        ),
        "request-from-someone-else-refused": (
            [Sent("m1", OTHER, first), Sent("m8", DOCTOR, later)],
            ["proposed"],
            ["appointment-not-organizer"],
        ),
        "cancel-from-someone-else-refused": (
            [Sent("m1", DOCTOR, first), Sent("m5", OTHER, called_off)],
            ["proposed"],
            ["appointment-not-organizer"],
        ),
        "reply-for-another-attendee-refused": (
            [Sent("m1", DOCTOR, first), Sent("m2", SISTER, accept0)],
            ["proposed"],
            ["appointment-sender-mismatch"],
        ),
        "request-not-for-the-owner-refused": (
            [Sent("m9", DOCTOR, not_me), Sent("m8", DOCTOR, later), Sent("m1", DOCTOR, first)],
            ["proposed", "proposed"],
            ["appointment-not-for-owner"],
        ),
        "reply-without-request-refused": (
            [Sent("m2", PATIENT, accept0)],
            [],
            ["unknown-appointment"],
        ),
    }


SCENARIOS = scenarios()


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_the_browser_agenda_is_the_python_agenda(page: Page, name: str) -> None:
    messages, statuses, codes = SCENARIOS[name]
    texts = {m.id: ical(m.appointment) for m in messages}
    python = derive_agenda(
        [ReceivedAppointment(m.sender, parse_calendar(texts[m.id]), m.id) for m in messages],
        owner=PATIENT,
    )
    items = [{"sender": str(m.sender), "text": texts[m.id], "id": m.id} for m in messages]
    forward, backward = await page.evaluate(AGENDA, [items, str(PATIENT)])
    assert forward == backward, "the agenda does not depend on the order of the messages"
    assert [e["status"] for e in forward["entries"]] == statuses
    assert [e.status.value for e in python.entries] == statuses
    assert js_agenda_view(forward["entries"]) == agenda_view(python.entries)
    assert [r["code"] for r in forward["refused"]] == codes
    assert [(r["code"], r["uid"], r["envelopeId"]) for r in forward["refused"]] == [
        (r.code, r.uid, r.message_id) for r in python.refused
    ]
    for entry, py_entry in zip(forward["entries"], python.entries, strict=True):
        # The entry points at the message of the current REQUEST, which a reply answers.
        current = max(
            (
                m
                for m in messages
                if m.appointment.method is Method.REQUEST
                and m.appointment.uid == entry["uid"]
                and m.appointment.sequence == py_entry.sequence
                and m.sender == py_entry.organizer
            ),
            key=lambda m: m.appointment.dtstamp,
        )
        assert entry["envelopeId"] == current.id
        assert entry["thread"] == f"thread-{current.id}"
        assert entry["request"]["method"] == "REQUEST"
        assert entry["request"]["sequence"] == entry["sequence"]
        assert when(entry["end"]) == py_entry.end
        assert entry["summary"] == py_entry.summary
        assert entry["location"] == py_entry.location
        assert entry["organizerName"] == py_entry.organizer_name


async def test_a_browser_reply_moves_both_agendas(page: Page) -> None:
    """The patient's answer written in the page counts in the doctor's Python agenda and in
    the patient's browser agenda; a reschedule then asks again."""
    first = request()
    first_text = ical(first)
    reply_text: str = await page.evaluate(
        BUILD_REPLY, [first_text, str(PATIENT), "Jeanne Martin", "ACCEPTED", "2026-11-21T07:00:00Z"]
    )
    doctor_view = derive_agenda(
        [
            ReceivedAppointment(DOCTOR, parse_calendar(first_text), "m1"),
            ReceivedAppointment(PATIENT, parse_calendar(reply_text), "m2"),
        ],
        owner=DOCTOR,
    )
    assert [e.status.value for e in doctor_view.entries] == ["accepted"]
    assert doctor_view.refused == ()
    items = [
        {"sender": str(DOCTOR), "text": first_text, "id": "m1"},
        {"sender": str(PATIENT), "text": reply_text, "id": "m2"},
    ]
    forward, _ = await page.evaluate(AGENDA, [items, str(PATIENT)])
    assert [e["status"] for e in forward["entries"]] == ["accepted"]
    moved = ical(
        reschedule(
            first,
            start=datetime(2026, 12, 4, 9, 0, tzinfo=PARIS),
            end=datetime(2026, 12, 4, 9, 30, tzinfo=PARIS),
            dtstamp=STAMP + timedelta(days=2),
        )
    )
    items.append({"sender": str(DOCTOR), "text": moved, "id": "m3"})
    forward, _ = await page.evaluate(AGENDA, [items, str(PATIENT)])
    assert [(e["status"], e["sequence"], e["envelopeId"]) for e in forward["entries"]] == [
        ("proposed", 1, "m3")
    ]
    assert forward["entries"][0]["start"] == "2026-12-04T08:00:00.000Z"


# --- writing the REPLY -------------------------------------------------------------------


@pytest.mark.parametrize("partstat", [PartStat.ACCEPTED, PartStat.DECLINED, PartStat.TENTATIVE])
async def test_the_browser_reply_is_read_by_python(page: Page, partstat: PartStat) -> None:
    long_summary = "Consultation de suivi cardiologique, échographie; résultats " * 3
    invitation = new_request(
        uid="rdv-long,2027;a@medecin.pli.test",  # a comma and a semicolon are escaped
        organizer=DOCTOR,
        organizer_name="Dr Élodie Dupré",
        attendees=[Attendee(PATIENT, "Jeanne Martin", rsvp=True), SISTER],
        start=datetime(2027, 7, 15, 8, 15, tzinfo=PARIS),
        end=datetime(2027, 7, 15, 9, 0, tzinfo=PARIS),
        summary=long_summary.strip(),
        location=LOCATION,
        dtstamp=STAMP,
        sequence=3,
    )
    text: str = await page.evaluate(
        BUILD_REPLY,
        [ical(invitation), str(PATIENT), "Jeanne Martin", partstat.value, "2026-11-21T07:00:05Z"],
    )
    raw = text.encode("utf-8")
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"", "CRLF after every line"
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in lines) <= 75, "folded at 75 octets"
    assert any(line.startswith(b" ") for line in lines), "the long summary was folded"
    for line in lines:
        line.decode("utf-8")  # never cut inside a UTF-8 sequence
    assert b"METHOD:REPLY" in lines
    unfolded = text.replace("\r\n ", "")
    assert "\r\nSUMMARY:Consultation de suivi cardiologique\\, échographie\\; résultats" in unfolded
    assert "\r\nUID:rdv-long\\,2027\\;a@medecin.pli.test\r\n" in unfolded
    reply = parse_calendar(text)
    assert reply.method is Method.REPLY
    assert reply.replier is not None
    assert reply.replier.partstat is partstat
    assert reply.replier.address == PATIENT
    assert reply.replier.name == "Jeanne Martin"
    assert reply.uid == invitation.uid
    assert reply.sequence == 3
    assert reply.organizer == DOCTOR
    assert reply.organizer_name == "Dr Élodie Dupré"
    assert reply.summary == invitation.summary
    assert reply.start == invitation.start
    assert reply.end == invitation.end
    assert reply.dtstamp == datetime(2026, 11, 21, 7, 0, 5, tzinfo=UTC)
    assert_same_appointment(await js_parsed(page, text), reply)


@pytest.mark.parametrize(
    ("lang", "partstat", "subject", "lead", "name"),
    [
        ("fr", "ACCEPTED", "Accepté : ", "Rendez-vous accepté : ", "Jeanne Martin-Lefèvre"),
        ("en", "DECLINED", "Declined: ", "Appointment declined: ", "Martin, Jeanne"),
        ("fr", "TENTATIVE", "Provisoire : ", "Rendez-vous accepté provisoirement : ", "Jeanne"),
    ],
)
async def test_the_browser_reply_message_is_an_imip_appointment(
    page: Page, lang: str, partstat: str, subject: str, lead: str, name: str
) -> None:
    invitation = request()
    sent = await page.evaluate(
        REPLY_MESSAGE,
        [
            ical(invitation),
            {
                "owner": str(PATIENT),
                "ownerName": name,
                "partstat": partstat,
                "lang": lang,
                "inReplyTo": "<invitation-1@medecin.pli.test>",
                "references": "<thread-0@medecin.pli.test>",
                "now": "2026-11-21T07:00:00Z",
            },
        ],
    )
    raw = bytes(sent["bytes"])
    read = parse_appointment(raw)
    assert read.method is Method.REPLY
    assert read.replier is not None
    assert read.replier.partstat.value == partstat
    assert read.replier.address == PATIENT
    assert read.uid == invitation.uid
    assert read.sequence == invitation.sequence
    msg = parse_lenient(raw)
    assert declared_kind(msg) is MessageKind.APPOINTMENT
    assert classify(msg) is MessageKind.APPOINTMENT
    assert msg["From"].addresses[0].addr_spec == str(PATIENT)
    assert msg["From"].addresses[0].display_name == name
    assert read.replier.name == name
    assert [a.addr_spec for a in msg["To"].addresses] == [str(DOCTOR)]
    assert str(msg["Subject"]) == subject + SUMMARY
    assert msg["In-Reply-To"] == "<invitation-1@medecin.pli.test>"
    assert str(msg["References"]).split() == [
        "<thread-0@medecin.pli.test>",
        "<invitation-1@medecin.pli.test>",
    ]
    assert str(msg["Message-ID"]).endswith("@patient.pli.test>")
    assert msg["Date"].datetime == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    assert text.startswith(lead + SUMMARY)
    day = "mardi 1 décembre 2026 à 09:30" if lang == "fr" else "Tuesday 1 December 2026 at 09:30"
    assert (
        text.splitlines()[0]
        == f"{lead}{SUMMARY} {'le' if lang == 'fr' else 'on'} {day} (Europe/Paris)"
    )
    # The page reads its own message back through mime.js: headers and calendar parts.
    assert sent["headers"]["x-pli-type"] == "appointment"
    assert sent["headers"]["in-reply-to"] == "<invitation-1@medecin.pli.test>"
    assert [c["method"] for c in sent["calendars"]] == ["REPLY"]
    assert sent["subject"] == subject + SUMMARY
    assert sent["body"].startswith(lead + SUMMARY)
    assert_same_appointment(sent["appointment"], read)


async def test_the_page_reads_a_python_imip_message(page: Page) -> None:
    """build_appointment's multipart/mixed (text, calendar, JSON) opened with mime.js."""
    raw = build_appointment(
        request(), message_id="<rdv-1-msg@medecin.pli.test>", date=STAMP, lang="en"
    )
    read = await page.evaluate(READ_MESSAGE, list(raw))
    assert read["kind"] == "appointment"
    assert read["headers"]["message-id"] == "<rdv-1-msg@medecin.pli.test>"
    assert read["headers"]["content-language"] == "en"
    assert [c["method"] for c in read["calendars"]] == ["REQUEST"]
    assert "BEGIN:VCALENDAR" in read["calendars"][0]["text"]
    assert read["body"].startswith("Dr Élodie Dupré <elodie.dupre@medecin.pli.test> invites you")
    assert_same_appointment(read["appointment"], parse_appointment(raw))


async def test_a_json_part_that_disagrees_is_refused_like_python(page: Page) -> None:
    raw = build_appointment(request(), message_id="<rdv-1-msg@medecin.pli.test>", date=STAMP)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    tampered = 0
    for part in msg.walk():
        if part.get_content_type() == JSON_TYPE:
            assert isinstance(part, EmailMessage)
            stated = json.loads(part.get_content())
            stated["location"] = "Ailleurs"
            part.set_content(
                json.dumps(stated).encode(),
                maintype="application",
                subtype=JSON_TYPE.split("/", 1)[1],
                params={"version": "1"},
                disposition="attachment",
                filename="appointment.json",
            )
            tampered += 1
    assert tampered == 1
    changed = msg.as_bytes()
    with pytest.raises(InvalidMessage) as refused:
        parse_appointment(changed)
    assert refused.value.code == "appointment-parts-disagree"
    read = await page.evaluate(READ_MESSAGE, list(changed))
    assert read == {"code": "appointment-parts-disagree", "calendarError": True}


async def test_the_browser_refuses_to_answer_what_it_cannot(page: Page) -> None:
    text = ical(request())
    refused = [
        await page.evaluate(REFUSED_ANSWER, [text, str(PATIENT), "MAYBE"]),
        await page.evaluate(REFUSED_ANSWER, [text, str(SISTER), "ACCEPTED"]),
        await page.evaluate(
            REFUSED_ANSWER, [ical(cancel(request(), dtstamp=STAMP)), str(PATIENT), "ACCEPTED"]
        ),
    ]
    assert refused == [
        {"code": "appointment-invalid-partstat", "calendarError": True},
        {"code": "appointment-not-attendee", "calendarError": True},
        {"code": "appointment-unknown-method", "calendarError": True},
    ]
    accepted = await page.evaluate(REFUSED_ANSWER, [text, str(PATIENT), "accepted"])
    assert accepted is None, "a lower-case answer is still an answer"


# --- refusals ----------------------------------------------------------------------------

MINIMAL = (
    "BEGIN:VCALENDAR\r\n"
    "PRODID:-//test//EN\r\n"
    "VERSION:2.0\r\n"
    "METHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:bad-1@medecin.pli.test\r\n"
    "DTSTAMP:20261120T080000Z\r\n"
    "DTSTART;TZID=Europe/Paris:20261201T093000\r\n"
    "DTEND;TZID=Europe/Paris:20261201T100000\r\n"
    "SUMMARY:Consultation\r\n"
    "ORGANIZER:mailto:elodie.dupre@medecin.pli.test\r\n"
    "ATTENDEE:mailto:180017512345678@patient.pli.test\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)
EVENT = MINIMAL[MINIMAL.index("BEGIN:VEVENT") : MINIMAL.index("END:VCALENDAR")]
ATTENDEE = "ATTENDEE:mailto:180017512345678@patient.pli.test\r\n"

MALFORMED = {
    "no-method": (MINIMAL.replace("METHOD:REQUEST\r\n", ""), "appointment-missing-method"),
    "publish": (MINIMAL.replace("METHOD:REQUEST", "METHOD:PUBLISH"), "appointment-unknown-method"),
    "two-events": (
        MINIMAL.replace("END:VCALENDAR", EVENT.replace("bad-1", "bad-2") + "END:VCALENDAR"),
        "appointment-event-count",
    ),
    "no-event": (MINIMAL.replace(EVENT, ""), "appointment-event-count"),
    "rrule": (
        MINIMAL.replace(ATTENDEE, ATTENDEE + "RRULE:FREQ=SECONDLY\r\n"),
        "appointment-recurrence-unsupported",
    ),
    "rdate": (
        MINIMAL.replace(ATTENDEE, ATTENDEE + "RDATE:20261208T093000Z\r\n"),
        "appointment-recurrence-unsupported",
    ),
    "exdate": (
        MINIMAL.replace(ATTENDEE, ATTENDEE + "EXDATE:20261208T093000Z\r\n"),
        "appointment-recurrence-unsupported",
    ),
    "recurrence-id": (
        MINIMAL.replace(ATTENDEE, ATTENDEE + "RECURRENCE-ID:20261208T093000Z\r\n"),
        "appointment-recurrence-unsupported",
    ),
    "no-uid": (MINIMAL.replace("UID:bad-1@medecin.pli.test\r\n", ""), "appointment-missing-uid"),
    "no-dtstamp": (
        MINIMAL.replace("DTSTAMP:20261120T080000Z\r\n", ""),
        "appointment-missing-dtstamp",
    ),
    "no-organizer": (
        MINIMAL.replace("ORGANIZER:mailto:elodie.dupre@medecin.pli.test\r\n", ""),
        "appointment-missing-organizer",
    ),
    "not-a-calendar": (
        MINIMAL.replace("VCALENDAR", "VCARD"),
        "ical-malformed",
    ),
    "todo": (
        MINIMAL.replace("END:VCALENDAR", "BEGIN:VTODO\r\nUID:x\r\nEND:VTODO\r\nEND:VCALENDAR"),
        "appointment-unsupported-component",
    ),
    "unknown-zone": (
        MINIMAL.replace("Europe/Paris", "Mars/Olympus_Mons"),
        "appointment-unknown-timezone",
    ),
    "date-only": (
        MINIMAL.replace("DTSTART;TZID=Europe/Paris:20261201T093000", "DTSTART;VALUE=DATE:20261201"),
        "appointment-date-only",
    ),
    "end-before-start": (
        MINIMAL.replace("20261201T100000", "20261201T090000"),
        "appointment-end-before-start",
    ),
    "reply-of-two": (
        MINIMAL.replace("METHOD:REQUEST", "METHOD:REPLY").replace(
            ATTENDEE, ATTENDEE + "ATTENDEE:mailto:280017512345679@patient.pli.test\r\n"
        ),
        "appointment-reply-attendee",
    ),
    "not-mailto": (
        MINIMAL.replace("ORGANIZER:mailto:", "ORGANIZER:tel:"),
        "appointment-invalid-address",
    ),
    "two-uids": (
        MINIMAL.replace(ATTENDEE, ATTENDEE + "UID:bad-2@medecin.pli.test\r\n"),
        "ical-malformed",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_calendars_are_refused_like_python(page: Page, name: str) -> None:
    text, code = MALFORMED[name]
    [result] = await js_parse(page, text)
    assert result.get("calendarError") is True, result
    assert result["code"] == code, result["error"]
    with pytest.raises(InvalidMessage) as refused:
        parse_calendar(text)
    assert refused.value.code == code


async def test_the_minimal_calendar_itself_is_accepted(page: Page) -> None:
    """The refusals above come from each change, not from the calendar they start from."""
    js = await js_parsed(page, MINIMAL)
    assert_same_appointment(js, parse_calendar(MINIMAL))


async def test_a_huge_calendar_is_refused_before_it_is_read(page: Page) -> None:
    padding = "X-PADDING:" + "a" * 70 + "\r\n"
    just_under = MINIMAL.replace(ATTENDEE, ATTENDEE + padding * 3000)  # about 240 KB
    huge = MINIMAL.replace(ATTENDEE, ATTENDEE + padding * 4000)  # about 320 KB
    assert len(just_under.encode()) < 256 * 1024 < len(huge.encode())
    small, big = await js_parse(page, just_under, huge)
    assert "ok" in small, small
    assert big.get("calendarError") is True
    assert big["code"] == "appointment-too-large"
    # In UTF-8 octets, not characters: 100 000 "é" are 200 000 octets.
    accents = MINIMAL.replace(ATTENDEE, ATTENDEE + "X-PADDING:" + "é" * 140_000 + "\r\n")
    assert len(accents) < 256 * 1024 < len(accents.encode())
    [wide] = await js_parse(page, accents)
    assert wide.get("code") == "appointment-too-large"


# --- the patient's own calendar ------------------------------------------------------------

EXPORT = """
([items, owner, lang, now]) => {
  const c = globalThis.pliCalendar;
  const parsed = items.map((i) => ({
    sender: i.sender, appointment: c.parseCalendar(i.text),
    envelopeId: i.id, messageId: i.id, thread: "thread-" + i.id,
  }));
  return c.deriveAgenda(parsed, owner).entries.map((e) => c.exportEvent(e, lang, new Date(now)));
}
"""


@pytest.mark.parametrize(
    ("reminder", "lang", "trigger", "words"),
    [
        (timedelta(minutes=90), "fr", "-PT90M", "Rappel : "),
        (timedelta(days=2), "en", "-P2D", "Reminder: "),
        (None, "fr", "-P1D", "Rappel : "),  # none asked: the day before
    ],
)
async def test_an_exported_appointment_reminds_on_the_patients_own_calendar(
    page: Page, reminder: timedelta | None, lang: str, trigger: str, words: str
) -> None:
    """The .ics the page offers reads in Python's icalendar as the appointment it came from,
    with a VALARM at the professional's reminder (the day before without one)."""
    first = replace(request(), reminder=reminder)
    answer = reply_to(first, PATIENT, PartStat.ACCEPTED, dtstamp=STAMP + timedelta(hours=1))
    items = [
        {"sender": str(DOCTOR), "text": ical(first), "id": "m1"},
        {"sender": str(PATIENT), "text": ical(answer), "id": "m2"},
    ]
    [text] = await page.evaluate(EXPORT, [items, str(PATIENT), lang, "2026-11-21T07:00:00Z"])
    assert "\r\n" in text and all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    exported = icalendar.Calendar.from_ical(text)
    assert exported["METHOD"] == "PUBLISH"
    [event] = exported.walk("VEVENT")
    assert str(event["UID"]) == first.uid
    assert instant(event.decoded("DTSTART")) == instant(first.start)
    assert instant(event.decoded("DTEND")) == instant(first.end)
    assert (str(event["SUMMARY"]), str(event["LOCATION"])) == (SUMMARY, LOCATION)
    assert str(event["DESCRIPTION"]) == DESCRIPTION
    assert str(event["STATUS"]) == "CONFIRMED", "accepted"
    assert str(event["ORGANIZER"]).lower() == f"mailto:{DOCTOR}"
    assert event["ORGANIZER"].params["CN"] == "Dr Élodie Dupré"
    [alarm] = event.walk("VALARM")
    assert str(alarm["ACTION"]) == "DISPLAY"
    assert f"TRIGGER:{trigger}" in text.split("\r\n")
    assert -alarm.decoded("TRIGGER") == (reminder or timedelta(days=1))
    assert str(alarm["DESCRIPTION"]) == words + SUMMARY
    assert "ATTENDEE" not in event, "the patient's own copy names nobody else"
