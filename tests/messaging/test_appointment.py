"""Appointments as iMIP messages (RFC 6047 / RFC 5546 / RFC 5545): round trips, real-client
forms, and refusals with their precise codes."""

from __future__ import annotations

import email.policy
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from zoneinfo import ZoneInfo

import mailparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from messaging.errors import InvalidMessage
from messaging.kinds import appointment as appt
from messaging.kinds.appointment import (
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
)
from messaging.types import Address, MessageKind

STRICT = email.policy.default.clone(raise_on_defect=True)
PARIS = ZoneInfo("Europe/Paris")
DOCTOR = Address.parse("sophie.martin@medecin.pli.test")
PATIENT = Address.parse("180012345678901@patient.pli.test")
NURSE = Address.parse("infirmier.durand@medecin.pli.test")
STAMP = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def a_request(**changes: object) -> Appointment:
    request = new_request(
        uid="rdv-1@medecin.pli.test",
        organizer=DOCTOR,
        organizer_name="Dr Sophie Martin",
        attendees=[Attendee(PATIENT, "Jean Dupont", PartStat.NEEDS_ACTION, rsvp=True)],
        start=datetime(2026, 12, 1, 9, 30, tzinfo=PARIS),
        end=datetime(2026, 12, 1, 10, 0, tzinfo=PARIS),
        summary="Consultation de suivi",
        location="Cabinet, 3 rue de l'Église; 2e étage",
        description="Apportez vos derniers résultats.\nMerci.",
        dtstamp=STAMP,
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def every_method() -> list[Appointment]:
    request = a_request()
    later = STAMP + timedelta(hours=1)
    return [
        request,
        reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=later),
        reply_to(request, PATIENT, PartStat.DECLINED, dtstamp=later, comment="Empêché"),
        reply_to(request, PATIENT, PartStat.TENTATIVE, dtstamp=later),
        cancel(request, dtstamp=later, comment="Le cabinet est fermé"),
        counter(
            request,
            PATIENT,
            start=datetime(2026, 12, 2, 14, 0, tzinfo=PARIS),
            end=datetime(2026, 12, 2, 14, 30, tzinfo=PARIS),
            dtstamp=later,
            comment="Plutôt l'après-midi ?",
        ),
        reschedule(
            request,
            start=datetime(2026, 12, 3, 8, 0, tzinfo=PARIS),
            end=datetime(2026, 12, 3, 8, 30, tzinfo=PARIS),
            dtstamp=later,
        ),
    ]


def strict(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=STRICT).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def calendar_of(msg: EmailMessage) -> EmailMessage:
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    part = parts[0]
    assert isinstance(part, EmailMessage)
    return part


def message_with_calendar(ical: str, *, method: str | None = "REQUEST") -> bytes:
    """A plain message whose only part is a calendar, as a mail client writes it."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = str(PATIENT)
    msg["To"] = str(DOCTOR)
    msg["Subject"] = "Accepted: Consultation"
    msg["Message-ID"] = "<tb-1@patient.pli.test>"
    params = {"method": method} if method else {}
    msg.set_content(ical, subtype="calendar", charset="utf-8", params=params)
    return msg.as_bytes()


VEVENT_BODY = (
    "UID:rdv-1@medecin.pli.test\r\n"
    "DTSTAMP:20261122T090000Z\r\n"
    "DTSTART;TZID=Europe/Paris:20261201T093000\r\n"
    "DTEND;TZID=Europe/Paris:20261201T100000\r\n"
    "ORGANIZER:mailto:sophie.martin@medecin.pli.test\r\n"
    "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:180012345678901@patient.pli.test\r\n"
)


def calendar(method: str = "REQUEST", event: str = VEVENT_BODY, extra: str = "") -> str:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n"
    if method:
        head += f"METHOD:{method}\r\n"
    return f"{head}{extra}BEGIN:VEVENT\r\n{event}END:VEVENT\r\nEND:VCALENDAR\r\n"


def refused(raw: bytes) -> str:
    with pytest.raises(InvalidMessage) as caught:
        parse_appointment(raw)
    return caught.value.code


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("original", every_method(), ids=lambda a: f"{a.method}-{a.sequence}")
def test_every_method_round_trips_through_parse(original: Appointment, lang: str) -> None:
    raw = build_appointment(original, lang=lang)  # type: ignore[arg-type]
    assert parse_appointment(raw) == original


@pytest.mark.parametrize("original", every_method(), ids=lambda a: f"{a.method}-{a.sequence}")
def test_the_message_is_accepted_by_the_strict_parser_mail_parser_and_icalendar(
    original: Appointment,
) -> None:
    raw = build_appointment(original)
    msg = strict(raw)
    assert msg["X-Pli-Type"] == MessageKind.APPOINTMENT.value
    assert msg["X-MSS-NIL"]
    assert msg["Message-ID"]
    parsed = mailparser.parse_from_bytes(raw)
    assert parsed.subject == str(msg["Subject"])
    assert not parsed.defects
    part = calendar_of(msg)
    assert part.get_param("method") == original.method.value
    assert part.get_content_charset() == "utf-8"
    cal = Calendar.from_ical(part.get_content())
    assert cal.get("METHOD") == original.method.value
    assert [e.get("UID") for e in cal.walk("VEVENT")] == [original.uid]
    assert all(not c.errors for c in cal.walk())


def test_a_request_is_a_mixed_message_with_text_calendar_and_json() -> None:
    msg = strict(build_appointment(a_request()))
    assert msg.get_content_type() == "multipart/mixed"
    alternative, structured = list(msg.iter_parts())
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/calendar",
    ]
    assert structured.get_content_type() == "application/vnd.pli.appointment+json"
    assert structured.get_param("version") == "1"
    data = json.loads(structured.get_content())
    assert data["type"] == "appointment"
    assert data["version"] == 1
    assert data["tzid"] == "Europe/Paris"


def test_a_request_carries_the_vevent_fields_with_a_vtimezone_and_a_reminder() -> None:
    cal = Calendar.from_ical(calendar_of(strict(build_appointment(a_request()))).get_content())
    (tz,) = cal.walk("VTIMEZONE")
    assert tz.get("TZID") == "Europe/Paris"
    (event,) = cal.walk("VEVENT")
    assert event.get("DTSTART").params["TZID"] == "Europe/Paris"
    assert event.decoded("DTSTART") == datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)
    assert event.decoded("DTEND") == datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
    assert str(event.get("STATUS")) == "CONFIRMED"
    assert int(event.get("SEQUENCE")) == 0
    assert str(event.get("ORGANIZER")) == f"mailto:{DOCTOR}"
    attendee = event.get("ATTENDEE")
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["RSVP"] == "TRUE"
    (alarm,) = event.walk("VALARM")
    assert alarm.decoded("TRIGGER") == -timedelta(hours=24)
    assert str(alarm.get("ACTION")) == "DISPLAY"


def test_the_text_part_is_french_by_default_and_english_on_request() -> None:
    fr = text_of(build_appointment(a_request()))
    en = text_of(build_appointment(a_request(), lang="en"))
    assert "vous propose un rendez-vous" in fr
    assert "mardi 1er décembre 2026, de 09:30 à 10:00 (Europe/Paris)" in fr
    assert "invites you to an appointment" in en
    assert "Tuesday 1 December 2026, 09:30 to 10:00 (Europe/Paris)" in en


def text_of(raw: bytes) -> str:
    body = strict(raw).get_body(preferencelist=("plain",))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def test_subjects_say_what_the_message_is() -> None:
    request = a_request()
    accepted = reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=STAMP)
    assert appt.subject_for(request) == "Invitation : Consultation de suivi"
    assert appt.subject_for(accepted, "en") == "Accepted: Consultation de suivi"
    assert appt.subject_for(cancel(request, dtstamp=STAMP)) == "Annulé : Consultation de suivi"


def test_requests_go_to_attendees_and_replies_to_the_organizer() -> None:
    request = a_request()
    sent = strict(build_appointment(request))
    assert sent["From"].addresses[0].addr_spec == str(DOCTOR)
    assert [a.addr_spec for a in sent["To"].addresses] == [str(PATIENT)]
    answer = strict(build_appointment(reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=STAMP)))
    assert answer["From"].addresses[0].addr_spec == str(PATIENT)
    assert [a.addr_spec for a in answer["To"].addresses] == [str(DOCTOR)]


def test_utc_appointments_need_no_vtimezone_and_round_trip() -> None:
    original = a_request(tzid="UTC")
    raw = build_appointment(original)
    assert b"VTIMEZONE" not in raw
    back = parse_appointment(raw)
    assert back == original
    assert back.tzid == "UTC"


def test_times_are_kept_to_the_second_and_shown_in_the_zone() -> None:
    a = a_request(start=datetime(2026, 12, 1, 8, 30, 12, 999, tzinfo=UTC))
    assert a.start == datetime(2026, 12, 1, 9, 30, 12, tzinfo=PARIS)
    assert a.start.tzinfo == PARIS


# --- what real clients send -------------------------------------------------------------

THUNDERBIRD_REPLY = """BEGIN:VCALENDAR
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN
VERSION:2.0
METHOD:REPLY
BEGIN:VTIMEZONE
TZID:Europe/Paris
X-TZINFO:Europe/Paris[2024a]
BEGIN:DAYLIGHT
TZOFFSETTO:+020000
TZOFFSETFROM:+010000
TZNAME:CEST
DTSTART:19810329T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETTO:+010000
TZOFFSETFROM:+020000
TZNAME:CET
DTSTART:19961027T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
CREATED:20261122T100000Z
LAST-MODIFIED:20261122T101500Z
DTSTAMP:20261122T101500Z
UID:rdv-1@medecin.pli.test
SUMMARY:Consultation de suivi
ORGANIZER;CN="Dr Sophie Martin":mailto:sophie.martin@medecin.pli.test
ATTENDEE;RSVP=TRUE;CN=Jean Dupont;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mai
 lto:180012345678901@patient.pli.test
DTSTART;TZID=Europe/Paris:20261201T093000
DTEND;TZID=Europe/Paris:20261201T100000
SEQUENCE:0
X-MOZ-RECEIVED-SEQUENCE:0
X-MOZ-RECEIVED-DTSTAMP:20261122T090000Z
X-MOZ-GENERATION:1
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def test_a_thunderbird_reply_with_only_the_calendar_part_parses_into_the_typed_reply() -> None:
    raw = message_with_calendar(THUNDERBIRD_REPLY, method="REPLY")
    assert strict(raw).get_content_type() == "text/calendar"
    assert appt.SPEC.recognises(strict(raw))
    answer = parse_appointment(raw)
    assert answer.method is Method.REPLY
    assert answer.uid == "rdv-1@medecin.pli.test"
    assert answer.replier == Attendee(PATIENT, "Jean Dupont", PartStat.ACCEPTED, rsvp=True)
    assert answer.organizer == DOCTOR
    assert answer.start == datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)
    assert answer.dtstamp == datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
    assert answer.sequence == 0


def test_a_thunderbird_reply_inside_a_multipart_message_parses_too() -> None:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = str(PATIENT)
    msg["To"] = str(DOCTOR)
    msg["Subject"] = "Accepted: Consultation de suivi"
    msg.set_content("Jean Dupont has accepted this invitation.")
    msg.add_alternative(
        THUNDERBIRD_REPLY, subtype="calendar", charset="utf-8", params={"method": "REPLY"}
    )
    msg.add_attachment(
        THUNDERBIRD_REPLY.encode(), maintype="application", subtype="ics", filename="invite.ics"
    )
    answer = parse_appointment(msg.as_bytes())
    assert answer.replier is not None and answer.replier.partstat is PartStat.ACCEPTED


@pytest.mark.parametrize(
    "tzid",
    ["Romance Standard Time", "/mozilla.org/20070129_1/Europe/Paris", '"Europe/Paris"'],
)
def test_windows_and_old_lightning_time_zone_names_resolve_to_iana(tzid: str) -> None:
    event = VEVENT_BODY.replace("TZID=Europe/Paris", f"TZID={tzid}")
    a = parse_calendar(calendar(event=event))
    assert a.tzid == "Europe/Paris"
    assert a.start == datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)


def test_a_custom_vtimezone_with_plain_yearly_rules_keeps_the_instant() -> None:
    custom = (
        "BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\n"
        "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\n"
        "TZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
        "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\n"
        "TZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n"
        "END:VTIMEZONE\r\n"
    )
    event = VEVENT_BODY.replace("TZID=Europe/Paris", "TZID=Customized Time Zone")
    a = parse_calendar(calendar(event=event, extra=custom))
    assert a.start == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert a.tzid == "Europe/Paris"


def test_floating_times_are_read_in_the_default_zone() -> None:
    event = VEVENT_BODY.replace("DTSTART;TZID=Europe/Paris:", "DTSTART:").replace(
        "DTEND;TZID=Europe/Paris:", "DTEND:"
    )
    assert parse_calendar(calendar(event=event)).start == datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)
    other = parse_calendar(calendar(event=event), default_tzid="America/Cayenne")
    assert other.start == datetime(2026, 12, 1, 9, 30, tzinfo=ZoneInfo("America/Cayenne"))


def test_a_duration_gives_the_end() -> None:
    event = VEVENT_BODY.replace("DTEND;TZID=Europe/Paris:20261201T100000", "DURATION:PT45M")
    a = parse_calendar(calendar(event=event))
    assert a.end == datetime(2026, 12, 1, 10, 15, tzinfo=PARIS)


def test_the_earliest_alarm_before_the_start_is_the_reminder() -> None:
    alarms = (
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER;RELATED=END:-PT2H\r\n"
        "END:VALARM\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\n"
        "TRIGGER;VALUE=DATE-TIME:20261130T083000Z\r\nEND:VALARM\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:PT5M\r\nEND:VALARM\r\n"
    )
    a = parse_calendar(calendar(event=VEVENT_BODY + alarms))
    assert a.reminder == timedelta(days=1)


def test_recognises_a_calendar_with_a_method_but_not_a_calendar_file() -> None:
    assert appt.recognises(strict(message_with_calendar(calendar())))
    msg = EmailMessage()
    msg.set_content("voici le fichier")
    msg.add_attachment(calendar().encode(), maintype="text", subtype="calendar", filename="a.ics")
    assert not appt.recognises(msg)
    assert appt.SPEC.kind is MessageKind.APPOINTMENT
    assert appt.SPEC.schema_version == 1


# --- refusals ---------------------------------------------------------------------------


def ev(old: str = "", new: str = "", *, add: str = "", method: str = "REQUEST") -> str:
    """A calendar whose VEVENT has ``old`` replaced by ``new`` and ``add`` appended."""
    return calendar(method, VEVENT_BODY.replace(old, new) if old else VEVENT_BODY + add)


START_LINE = "DTSTART;TZID=Europe/Paris:20261201T093000"
END_LINE = "DTEND;TZID=Europe/Paris:20261201T100000"
ORGANIZER_LINE = "ORGANIZER:mailto:sophie.martin@medecin.pli.test\r\n"
ATTENDEE_LINE = "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:180012345678901@patient.pli.test\r\n"
SECOND_EVENT = "END:VEVENT\r\nBEGIN:VEVENT\r\n" + VEVENT_BODY + "END:VEVENT"
TODO = "BEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\nBEGIN:VEVENT"
NO_EVENT = calendar().replace("BEGIN:VEVENT\r\n" + VEVENT_BODY + "END:VEVENT\r\n", "")


@pytest.mark.parametrize(
    ("ical", "code"),
    [
        ("BEGIN:VCALENDAR\r\nthis is not iCalendar\r\n", "ical-malformed"),
        ("not a calendar at all", "ical-malformed"),
        ("BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n", "ical-malformed"),
        (calendar(extra="PRODID:-//second//EN\r\n"), "ical-malformed"),
        (ev(add="SEQUENCE:many\r\n"), "ical-malformed"),
        (ev(add="STATUS:MAYBE\r\n"), "ical-malformed"),
        (ev(add="DURATION:soon\r\n"), "ical-malformed"),
        (calendar().replace("PRODID:-//Test//EN\r\n", ""), "ical-malformed"),
        (calendar().replace("END:VEVENT", SECOND_EVENT, 1), "appointment-event-count"),
        (NO_EVENT, "appointment-event-count"),
        (ev("UID:rdv-1@medecin.pli.test\r\n", ""), "appointment-missing-uid"),
        (ev("T100000", "T090000"), "appointment-end-before-start"),
        (calendar(method="PUBLISH"), "appointment-unknown-method"),
        (calendar(method="DECLINECOUNTER"), "appointment-unknown-method"),
        (calendar(method=""), "appointment-missing-method"),
        (ev(add="RRULE:FREQ=WEEKLY\r\n"), "appointment-recurrence-unsupported"),
        (ev(add="RECURRENCE-ID:20261201T093000Z\r\n"), "appointment-recurrence-unsupported"),
        (ev(START_LINE, "DTSTART;VALUE=DATE:20261201"), "appointment-date-only"),
        (ev("TZID=Europe/Paris", "TZID=Mars/Olympus_Mons"), "appointment-unknown-timezone"),
        (ev("DTSTAMP:20261122T090000Z\r\n", ""), "appointment-missing-dtstamp"),
        (ev(ORGANIZER_LINE, ""), "appointment-missing-organizer"),
        (ev("ORGANIZER:mailto:", "ORGANIZER:tel:"), "appointment-invalid-address"),
        (ev("mailto:1800", "mailto:not an address 1800"), "appointment-invalid-address"),
        (ev(add="ATTENDEE:mailto:o@pli.test\r\n", method="REPLY"), "appointment-reply-attendee"),
        (ev(ATTENDEE_LINE, ""), "appointment-missing-attendee"),
        (ev(add=ATTENDEE_LINE), "appointment-duplicate-attendee"),
        (ev(add="SEQUENCE:-1\r\n"), "appointment-invalid-sequence"),
        (ev("UID:rdv-1@medecin.pli.test", "UID:with space"), "appointment-invalid-uid"),
        (ev(add="STATUS:CONFIRMED\r\n", method="CANCEL"), "appointment-cancel-status"),
        (calendar().replace("BEGIN:VEVENT", TODO, 1), "appointment-unsupported-component"),
    ],
)
def test_malformed_calendars_are_refused_with_a_precise_code(ical: str, code: str) -> None:
    declared = re.search(r"METHOD:(\w+)", ical)
    method = declared.group(1) if declared else "REQUEST"
    assert refused(message_with_calendar(ical, method=method)) == code


def test_a_content_type_method_that_contradicts_the_calendar_is_refused() -> None:
    assert refused(message_with_calendar(calendar("REQUEST"), method="CANCEL")) == (
        "appointment-method-mismatch"
    )


def test_a_vtimezone_with_rules_that_would_never_finish_is_refused() -> None:
    evil = (
        "BEGIN:VTIMEZONE\r\nTZID:Evil\r\n"
        "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\n"
        "TZOFFSETTO:+0100\r\nRRULE:FREQ=SECONDLY\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )
    event = VEVENT_BODY.replace("TZID=Europe/Paris", "TZID=Evil")
    assert refused(message_with_calendar(calendar(event=event, extra=evil))) == (
        "appointment-unsupported-timezone"
    )
    hourly = evil.replace("FREQ=SECONDLY", "FREQ=YEARLY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11")
    assert refused(message_with_calendar(calendar(event=event, extra=hourly))) == (
        "appointment-unsupported-timezone"
    )


def test_a_message_without_a_calendar_is_not_an_appointment() -> None:
    msg = EmailMessage()
    msg["From"] = str(DOCTOR)
    msg.set_content("RDV mardi ?")
    assert refused(msg.as_bytes()) == "appointment-missing-calendar"


def test_two_calendar_parts_are_refused() -> None:
    msg = EmailMessage()
    msg.set_content("two")
    for _ in range(2):
        msg.add_alternative(calendar(), subtype="calendar", params={"method": "REQUEST"})
    assert refused(msg.as_bytes()) == "appointment-several-calendars"


def test_an_undecodable_calendar_is_refused() -> None:
    raw = message_with_calendar(calendar()).replace(b'charset="utf-8"', b'charset="x-unknown"')
    assert refused(raw) == "ical-malformed"


def test_an_oversized_calendar_is_refused() -> None:
    big = calendar(event=VEVENT_BODY + "DESCRIPTION:" + "x" * (1024 * 1024) + "\r\n")
    assert refused(message_with_calendar(big)) == "appointment-too-large"


def _with_json(raw: bytes, edit: object) -> bytes:
    msg = strict(raw)
    for part in msg.walk():
        if part.get_content_type() == appt.JSON_TYPE:
            data = json.loads(part.get_content())
            assert callable(edit)
            new = edit(data)
            payload = new if isinstance(new, bytes) else json.dumps(new).encode()
            part.set_content(
                payload,
                maintype="application",
                subtype="vnd.pli.appointment+json",
                params={"version": "1"},
            )
    return msg.as_bytes()


def test_a_json_part_that_says_another_time_than_the_calendar_is_refused() -> None:
    raw = build_appointment(a_request())

    def later(data: dict[str, object]) -> dict[str, object]:
        data["start"] = "2026-12-01T11:30:00+01:00"
        data["end"] = "2026-12-01T12:00:00+01:00"
        return data

    assert refused(_with_json(raw, later)) == "appointment-parts-disagree"


BAD_ATTENDEE = {"address": "x", "name": "", "partstat": "ACCEPTED", "rsvp": 1}


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda _: b"{not json", "appointment-invalid-schema"),
        (lambda _: [1, 2], "appointment-invalid-schema"),
        (lambda d: {**d, "sequence": True}, "appointment-invalid-schema"),
        (lambda d: {**d, "attendees": "everyone"}, "appointment-invalid-schema"),
        (lambda d: {**d, "attendees": [1]}, "appointment-invalid-schema"),
        (lambda d: {**d, "attendees": [BAD_ATTENDEE]}, "appointment-invalid-schema"),
        (lambda d: {**d, "method": "PUBLISH"}, "appointment-invalid-schema"),
        (lambda d: {**d, "type": "note"}, "appointment-invalid-schema"),
        (lambda d: {**d, "dtstamp": None}, "appointment-invalid-schema"),
        (lambda d: {**d, "start": "yesterday"}, "appointment-invalid-schema"),
        (lambda d: {**d, "uid": 5}, "appointment-invalid-schema"),
        (
            lambda d: {**d, "attendees": [{**BAD_ATTENDEE, "rsvp": "y"}]},
            "appointment-invalid-schema",
        ),
        (lambda d: {**d, "version": 2}, "appointment-schema-version"),
        (lambda d: {**d, "start": "2026-12-01T09:30:00"}, "appointment-floating-time"),
    ],
)
def test_a_bad_json_part_is_refused(edit: object, code: str) -> None:
    assert refused(_with_json(build_appointment(a_request()), edit)) == code


def test_a_json_part_of_another_version_is_refused() -> None:
    raw = build_appointment(a_request()).replace(b'version="1"', b'version="2"')
    assert refused(raw) == "appointment-schema-version"


def test_two_json_parts_are_refused() -> None:
    msg = strict(build_appointment(a_request()))
    structured = list(msg.iter_parts())[1]
    assert isinstance(structured, EmailMessage)
    msg.attach(structured)
    assert refused(msg.as_bytes()) == "appointment-invalid-schema"


# --- building refuses what it cannot write ----------------------------------------------


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"start": datetime(2026, 12, 1, 9, 30)}, "appointment-floating-time"),
        ({"tzid": "Europe/Atlantis"}, "appointment-unknown-timezone"),
        ({"tzid": "europe/paris"}, "appointment-unknown-timezone"),
        ({"uid": " "}, "appointment-missing-uid"),
        ({"summary": "bell\x07"}, "appointment-invalid-text"),
        ({"summary": "line\r\nbreak"}, "appointment-invalid-text"),
        ({"summary": "x" * 10_001}, "appointment-invalid-text"),
        ({"organizer_name": 'Dr "Doc"'}, "appointment-invalid-text"),
        ({"organizer_name": "two\nlines"}, "appointment-invalid-text"),
        ({"organizer_name": "back\\slash"}, "appointment-invalid-text"),
        ({"organizer_name": "line\u2028separator"}, "appointment-invalid-text"),
        ({"reminder": timedelta(minutes=-5)}, "appointment-invalid-reminder"),
        ({"end": datetime(2026, 12, 1, 9, 0, tzinfo=PARIS)}, "appointment-end-before-start"),
        ({"start": None}, "appointment-missing-start"),
        ({"attendees": ()}, "appointment-missing-attendee"),
        ({"sequence": -1}, "appointment-invalid-sequence"),
    ],
)
def test_an_invalid_appointment_cannot_be_constructed(
    changes: dict[str, object], code: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        a_request(**changes)
    assert caught.value.code == code


def test_only_an_invited_attendee_can_answer() -> None:
    with pytest.raises(InvalidMessage) as caught:
        reply_to(a_request(), NURSE, PartStat.ACCEPTED, dtstamp=STAMP)
    assert caught.value.code == "appointment-not-attendee"


def test_a_request_to_nobody_but_its_organizer_cannot_be_sent() -> None:
    lonely = a_request(attendees=(Attendee(DOCTOR),))
    with pytest.raises(InvalidMessage) as caught:
        build_appointment(lonely)
    assert caught.value.code == "appointment-missing-attendee"


def test_a_counter_from_several_attendees_needs_its_sender() -> None:
    request = a_request(attendees=(Attendee(PATIENT), Attendee(NURSE)))
    proposal = replace(
        counter(
            request,
            PATIENT,
            start=datetime(2026, 12, 2, 9, 0, tzinfo=PARIS),
            end=datetime(2026, 12, 2, 9, 30, tzinfo=PARIS),
            dtstamp=STAMP,
        ),
        attendees=request.attendees,
    )
    with pytest.raises(ValueError, match="explicit sender"):
        build_appointment(proposal)
    raw = build_appointment(proposal, sender=PATIENT)
    assert parse_appointment(raw) == proposal


def test_an_unknown_language_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="language"):
        build_appointment(a_request(), lang="de")  # type: ignore[arg-type]


# --- properties -------------------------------------------------------------------------

_CONTROLS = [chr(i) for i in range(32) if chr(i) not in "\n\t"] + ["\x7f"]
_text = st.text(
    # Everything but surrogates and the C0 controls the builder refuses: C1 controls, line
    # and paragraph separators, BOMs all round-trip.
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=_CONTROLS)
    | st.sampled_from('\n\t;,\\:"\x85\u2028'),
    max_size=60,
)
_name = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters='"\\'
    ),
    max_size=30,
)


@st.composite
def appointments(draw: st.DrawFn) -> Appointment:
    start = datetime(2026, 1, 1, 8, 0, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 60 * 24 * 365))
    )
    request = new_request(
        uid=draw(st.from_regex(r"[A-Za-z0-9._@-]{1,40}", fullmatch=True)),
        organizer=DOCTOR,
        organizer_name=draw(_name),
        attendees=[
            Attendee(PATIENT, draw(_name), draw(st.sampled_from(PartStat)), draw(st.booleans()))
        ],
        start=start,
        end=start + timedelta(minutes=draw(st.integers(0, 600))),
        summary=draw(_text),
        location=draw(_text),
        description=draw(_text),
        dtstamp=STAMP,
        tzid=draw(st.sampled_from(["Europe/Paris", "UTC", "America/Cayenne", "Indian/Reunion"])),
        reminder=draw(st.none() | st.integers(0, 7 * 24 * 60).map(lambda m: timedelta(minutes=m))),
        sequence=draw(st.integers(0, 1000)),
    )
    method = draw(st.sampled_from(Method))
    if method is Method.REPLY:
        return reply_to(
            request, PATIENT, draw(st.sampled_from(PartStat)), dtstamp=STAMP, comment=draw(_text)
        )
    if method is Method.CANCEL:
        return cancel(request, dtstamp=STAMP, comment=draw(_text))
    if method is Method.COUNTER:
        assert request.start is not None and request.end is not None
        return counter(
            request,
            PATIENT,
            start=request.start + timedelta(days=1),
            end=request.end + timedelta(days=1),
            dtstamp=STAMP,
        )
    return request  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(appointments(), st.sampled_from(["fr", "en"]))
def test_any_appointment_round_trips(original: Appointment, lang: str) -> None:
    raw = build_appointment(original, lang=lang)  # type: ignore[arg-type]
    strict(raw)
    assert parse_appointment(raw) == original


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_refused_with_invalid_message_only(raw: bytes) -> None:
    try:
        parse_appointment(raw)
    except InvalidMessage:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600))
def test_arbitrary_calendar_text_is_refused_with_invalid_message_only(text: str) -> None:
    try:
        parse_appointment(message_with_calendar(text))
    except InvalidMessage:
        pass


_LINES = [
    "BEGIN:VCALENDAR",
    "END:VCALENDAR",
    "BEGIN:VEVENT",
    "END:VEVENT",
    "BEGIN:VTIMEZONE",
    "END:VTIMEZONE",
    "BEGIN:VALARM",
    "END:VALARM",
    "METHOD:REPLY",
    "VERSION:2.0",
    "PRODID:x",
    *VEVENT_BODY.strip().split("\r\n"),
    "DTSTART:20261301T250000",
    "DURATION:PT-5H",
    "TRIGGER:-PT15M",
    "TRIGGER;VALUE=DATE-TIME:20261130T083000",
    "TZID:Evil",
    "RRULE:FREQ=YEARLY;BYMONTH=13",
    "ATTENDEE;PARTSTAT=WHATEVER:mailto:a@b.pli.test",
    "SEQUENCE:99999999999999999999",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_LINES), max_size=30))
def test_shuffled_calendar_lines_are_refused_with_invalid_message_only(lines: list[str]) -> None:
    try:
        parse_appointment(message_with_calendar("\r\n".join(lines) + "\r\n"))
    except InvalidMessage:
        pass


# --- less travelled paths -----------------------------------------------------------------


def test_a_reply_with_a_start_but_no_end_and_a_multi_day_event_read_well() -> None:
    request = a_request()
    answer = replace(reply_to(request, PATIENT, PartStat.ACCEPTED, dtstamp=STAMP), end=None)
    assert request.replier is None
    assert parse_appointment(build_appointment(answer)) == answer
    assert "mardi 1er décembre 2026 à 09:30 (Europe/Paris)" in appt.render_text(answer)
    assert "Tuesday 1 December 2026, 09:30 (Europe/Paris)" in appt.render_text(answer, "en")
    long = a_request(end=datetime(2026, 12, 3, 10, 0, tzinfo=PARIS))
    assert "du mardi 1er décembre 2026 09:30 au jeudi 3 décembre 2026 10:00" in (
        appt.render_text(long)
    )
    assert "from Tuesday 1 December 2026 09:30 to Thursday 3 December 2026 10:00" in (
        appt.render_text(long, "en")
    )


def test_threading_headers_and_an_explicit_sender_are_written() -> None:
    raw = build_appointment(
        a_request(),
        message_id="<m@pli.test>",
        sender=DOCTOR,
        in_reply_to="<earlier@pli.test>",
        references=["<first@pli.test>", "<earlier@pli.test>"],
    )
    msg = strict(raw)
    assert msg["From"].addresses[0].display_name == "Dr Sophie Martin"
    assert str(msg["In-Reply-To"]) == "<earlier@pli.test>"
    assert str(msg["References"]) == "<first@pli.test> <earlier@pli.test>"
    renamed = strict(build_appointment(a_request(), sender_name="Secrétariat Dr Martin"))
    assert renamed["From"].addresses[0].display_name == "Secrétariat Dr Martin"


def test_new_uids_are_unique_and_valid() -> None:
    first, second = appt.new_uid("medecin.pli.test"), appt.new_uid("medecin.pli.test")
    assert first != second
    assert a_request(uid=first).uid == first


def test_a_counter_needs_a_start() -> None:
    with pytest.raises(InvalidMessage) as caught:
        a_request(method=Method.COUNTER, start=None, end=None)
    assert caught.value.code == "appointment-missing-start"


@pytest.mark.parametrize(
    ("ical", "code"),
    [
        (ev(START_LINE, "DTSTART;VALUE=TIME:093000"), "ical-malformed"),
        (ev("TZID=Europe/Paris", "TZID=" + "x" * 200), "appointment-unknown-timezone"),
    ],
)
def test_odd_date_times_are_refused(ical: str, code: str) -> None:
    assert refused(message_with_calendar(ical)) == code


def test_alarms_that_say_nothing_useful_are_ignored() -> None:
    alarms = (
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nEND:VALARM\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\n"
        "TRIGGER;VALUE=DATE-TIME:20261130T083000\r\nEND:VALARM\r\n"
    )
    assert parse_calendar(calendar(event=VEVENT_BODY + alarms)).reminder is None
    no_start = VEVENT_BODY.replace(START_LINE + "\r\n", "").replace(END_LINE + "\r\n", "")
    reply = calendar("REPLY", no_start + "BEGIN:VALARM\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n")
    answer = parse_calendar(reply)
    assert (answer.start, answer.reminder) == (None, None)


def test_parse_calendar_checks_its_own_limits() -> None:
    with pytest.raises(ValueError, match="default time zone"):
        parse_calendar(calendar(), default_tzid="Nowhere/Land")
    with pytest.raises(InvalidMessage) as caught:
        parse_calendar("x" * (appt.MAX_PART_SIZE + 1))
    assert caught.value.code == "appointment-too-large"


def test_vtimezones_with_too_many_or_repeated_rules_are_refused() -> None:
    rule = (
        "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\n"
        "TZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
    )
    many = "BEGIN:VTIMEZONE\r\nTZID:Many\r\n" + rule * 65 + "END:VTIMEZONE\r\n"
    twice = rule.replace("END:STANDARD", "RRULE:FREQ=YEARLY;BYMONTH=3\r\nEND:STANDARD")
    repeated = "BEGIN:VTIMEZONE\r\nTZID:Twice\r\n" + twice + "END:VTIMEZONE\r\n"
    for extra in (many, repeated):
        assert refused(message_with_calendar(calendar(extra=extra))) == (
            "appointment-unsupported-timezone"
        )


def test_odd_display_names_from_other_clients_are_cleaned_not_refused() -> None:
    event = VEVENT_BODY.replace(
        "ORGANIZER:mailto:", 'ORGANIZER;CN="Dr  Martin \\ cardio":mailto:'
    ).replace("ATTENDEE;PARTSTAT", "ATTENDEE;CN=Jean\\Dupont;PARTSTAT")
    a = parse_calendar(calendar(event=event))
    assert a.organizer_name == "Dr  Martin  cardio"
    assert a.attendees[0].name == "JeanDupont"


def test_an_invitation_inside_a_forwarded_message_is_not_an_appointment() -> None:
    forward = EmailMessage()
    forward["From"] = str(PATIENT)
    forward.set_content("Pour info, l'invitation reçue :")
    forward.add_attachment(strict(build_appointment(a_request())))
    raw = forward.as_bytes()
    assert not appt.recognises(strict(raw))
    assert refused(raw) == "appointment-missing-calendar"
