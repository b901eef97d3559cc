"""``appointment``: invitations and their answers as iMIP messages.

RFC 6047 (iMIP: iTIP over e-mail) carries RFC 5546 (iTIP) scheduling methods, written in
RFC 5545 (iCalendar). Pli supports four iTIP methods on one ``VEVENT``:

==========  ==============================  =====================================
method      sent by                         means
==========  ==============================  =====================================
REQUEST     the organizer                   an invitation, or a new version of it
REPLY       one attendee                    ACCEPTED / DECLINED / TENTATIVE
CANCEL      the organizer                   the appointment will not take place
COUNTER     one attendee                    "could we meet at this other time?"
==========  ==============================  =====================================

A message Pli writes is ``multipart/mixed``::

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain                      what a person reads (French or English)
    │   └── text/calendar; method=…         what Thunderbird, Outlook, agendas act on
    └── application/vnd.pli.appointment+json; version=1   the structured part

The calendar part is authoritative: a reply written in Thunderbird carries only that part
and must read back as the same typed answer. When the JSON part is present it must say
exactly what the calendar part says, or the message is refused (``appointment-parts-
disagree``): a reader of one part must never be shown another appointment than a reader of
the other.

Implementation notes (invariants):

- Exactly one ``VEVENT``; recurrence (RRULE, RDATE, EXDATE, RECURRENCE-ID) is refused
  rather than half-understood.
- Times always carry a zone. ``Europe/Paris`` is the default and a ``VTIMEZONE`` covering
  the appointment's years is written for it (RFC 5545 §3.6.5). On reading, a ``TZID`` is
  resolved against the IANA database (Windows names and Lightning's ``/mozilla.org/…``
  prefixes included). A custom ``VTIMEZONE`` is used only when its rules are plain yearly
  rules: its RRULEs are otherwise evaluated by dateutil, and ``FREQ=SECONDLY`` from 1601 is
  a denial of service.
- Floating times (no zone) are read in the default zone, because RFC 5545 leaves their
  meaning to the reader and every Pli user lives by French time unless told otherwise.
- Every refusal raises :class:`~messaging.errors.InvalidMessage` with a stable ``code``
  (listed in ``docs/messages.md``); the ``icalendar`` parser's own exceptions never escape.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage, Message
from enum import StrEnum
from zoneinfo import ZoneInfo, available_timezones

from icalendar import Alarm, Calendar, Component, Event, vCalAddress
from icalendar.error import GloballyUniqueTZIDGuessed
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from messaging._compose import (
    POLICY,
    Lang,
    check_lang,
    format_when,
    new_root,
    parse_lenient,
    text_part,
)
from messaging.errors import InvalidAddress, InvalidMessage
from messaging.kinds.base import KindSpec
from messaging.mime import PRODUCT_REFERENCE, new_message_id
from messaging.types import Address, MessageKind

__all__ = [
    "Appointment",
    "Attendee",
    "EventStatus",
    "Method",
    "PartStat",
    "DEFAULT_TZID",
    "DEFAULT_REMINDER",
    "JSON_TYPE",
    "SCHEMA_VERSION",
    "SPEC",
    "build_appointment",
    "parse_appointment",
    "parse_calendar",
    "to_ical",
    "recognises",
    "render_text",
    "subject_for",
    "new_uid",
    "new_request",
    "reply_to",
    "reschedule",
    "cancel",
    "counter",
]

DEFAULT_TZID = "Europe/Paris"
DEFAULT_REMINDER = timedelta(hours=24)
JSON_TYPE = "application/vnd.pli.appointment+json"
SCHEMA_VERSION = 1
MAX_PART_SIZE = 1024 * 1024
"""A calendar of one event with its time zone is a few kilobytes; a megabyte is generous."""

_PRODID = f"-//Pli//{PRODUCT_REFERENCE}//FR"
_JSON_FILENAME = "appointment.json"


class Method(StrEnum):
    """iTIP methods Pli understands (RFC 5546 §1.4)."""

    REQUEST = "REQUEST"
    REPLY = "REPLY"
    CANCEL = "CANCEL"
    COUNTER = "COUNTER"


class PartStat(StrEnum):
    """Participation status of an attendee in a VEVENT (RFC 5545 §3.2.12)."""

    NEEDS_ACTION = "NEEDS-ACTION"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    TENTATIVE = "TENTATIVE"
    DELEGATED = "DELEGATED"


class EventStatus(StrEnum):
    """STATUS of a VEVENT (RFC 5545 §3.8.1.11)."""

    TENTATIVE = "TENTATIVE"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


# ``"x" in SomeEnum`` raises TypeError before Python 3.12: compare with the values instead.
_METHODS = frozenset(m.value for m in Method)
_PARTSTATS = frozenset(p.value for p in PartStat)
_STATUSES = frozenset(s.value for s in EventStatus)


@dataclass(frozen=True, slots=True)
class Attendee:
    """An ``ATTENDEE`` with the parameters Pli keeps (RFC 5545 §3.8.4.1)."""

    address: Address
    name: str = ""
    partstat: PartStat = PartStat.NEEDS_ACTION
    rsvp: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name, "attendee name")


@dataclass(frozen=True, slots=True)
class Appointment:
    """One iTIP message about one appointment.

    ``start`` and ``end`` are aware datetimes shown in ``tzid``; ``dtstamp`` is UTC. All are
    kept to the second, as iCalendar writes them. ``reminder`` is how long before ``start``
    the ``VALARM`` fires. A REPLY or a CANCEL may omit the times (RFC 5546 §3.2.3, §3.2.5).

    Constructing an instance validates it: an ``Appointment`` that exists can be written.
    """

    method: Method
    uid: str
    organizer: Address
    attendees: tuple[Attendee, ...]
    dtstamp: datetime
    start: datetime | None = None
    end: datetime | None = None
    sequence: int = 0
    summary: str = ""
    location: str = ""
    description: str = ""
    comment: str = ""
    status: EventStatus | None = None
    organizer_name: str = ""
    tzid: str = DEFAULT_TZID
    reminder: timedelta | None = None

    def __post_init__(self) -> None:
        zone = _zone(self.tzid)
        if zone is None or zone.key != self.tzid:
            raise InvalidMessage(
                f"{self.tzid!r} is not a time zone of the IANA database",
                "appointment-unknown-timezone",
            )
        # Normalise what iCalendar cannot carry, so that parse(build(a)) == a.
        object.__setattr__(self, "dtstamp", _utc(_aware(self.dtstamp, "DTSTAMP")))
        if self.start is not None:
            object.__setattr__(self, "start", _in_zone(_aware(self.start, "DTSTART"), zone))
        if self.end is not None:
            object.__setattr__(self, "end", _in_zone(_aware(self.end, "DTEND"), zone))
        if self.reminder is not None:
            object.__setattr__(
                self, "reminder", timedelta(seconds=int(self.reminder.total_seconds()))
            )
        _validate(self)

    @property
    def replier(self) -> Attendee | None:
        """The attendee who answers in a REPLY or a COUNTER with a single attendee."""
        if self.method in (Method.REPLY, Method.COUNTER) and len(self.attendees) == 1:
            return self.attendees[0]
        return None


# --- validation -------------------------------------------------------------------------

_UID_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidMessage(f"{what} has no time zone", "appointment-floating-time")
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def _in_zone(value: datetime, zone: ZoneInfo) -> datetime:
    return value.astimezone(zone).replace(microsecond=0)


def _check_text(value: str, what: str, limit: int = 10_000) -> None:
    # Line feeds are fine in iCalendar TEXT (escaped as \n); other controls would break the
    # content line or hide text from one reader and not from the other.
    if any((ord(ch) < 0x20 and ch not in "\n\t") or ord(ch) == 0x7F for ch in value):
        raise InvalidMessage(f"{what} contains control characters", "appointment-invalid-text")
    if len(value) > limit:
        raise InvalidMessage(f"{what} is longer than {limit}", "appointment-invalid-text")


def _check_name(value: str, what: str) -> None:
    # A CN is a parameter value: one line, no DQUOTE (RFC 5545 §3.1, param-value); no
    # backslash either, because icalendar mis-reads a parameter value ending with one.
    _check_text(value, what, 200)
    if any(ch in '\n\t"\\' or unicodedata.category(ch) in ("Zl", "Zp") for ch in value):
        raise InvalidMessage(
            f"{what} must be one line without quotes or backslashes", "appointment-invalid-text"
        )


def _clean_name(value: object) -> str:
    """A display name read from another client, made acceptable rather than refused."""
    kept = (
        ch
        for ch in str(value)
        if ch not in '"\\' and unicodedata.category(ch) not in ("Cc", "Zl", "Zp")
    )
    return "".join(kept)[:200]


def _validate(a: Appointment) -> None:
    if not a.uid.strip():
        raise InvalidMessage("the event has no UID", "appointment-missing-uid")
    if not _UID_RE.match(a.uid):
        raise InvalidMessage(
            "a UID is 1 to 255 visible ASCII characters", "appointment-invalid-uid"
        )
    if not 0 <= a.sequence <= 2**31 - 1:
        raise InvalidMessage(
            "SEQUENCE must be a non-negative integer", "appointment-invalid-sequence"
        )
    for value, what in (
        (a.summary, "SUMMARY"),
        (a.location, "LOCATION"),
        (a.description, "DESCRIPTION"),
        (a.comment, "COMMENT"),
    ):
        _check_text(value, what)
    _check_name(a.organizer_name, "organizer name")
    if a.start is None and a.end is not None:
        raise InvalidMessage("DTEND without DTSTART", "appointment-missing-start")
    if a.method in (Method.REQUEST, Method.COUNTER) and a.start is None:
        raise InvalidMessage(f"a {a.method} needs DTSTART", "appointment-missing-start")
    if a.start is not None and a.end is not None and a.end < a.start:
        raise InvalidMessage("DTEND is before DTSTART", "appointment-end-before-start")
    if a.reminder is not None and a.reminder < timedelta(0):
        raise InvalidMessage("the reminder fires after the start", "appointment-invalid-reminder")
    if a.method is Method.REPLY and len(a.attendees) != 1:
        raise InvalidMessage(
            "a REPLY names exactly one attendee, the one who answers (RFC 5546 §3.2.3)",
            "appointment-reply-attendee",
        )
    if a.method in (Method.REQUEST, Method.COUNTER) and not a.attendees:
        raise InvalidMessage(f"a {a.method} needs an attendee", "appointment-missing-attendee")
    addresses = [att.address for att in a.attendees]
    if len(set(addresses)) != len(addresses):
        raise InvalidMessage("an attendee is listed twice", "appointment-duplicate-attendee")
    if a.method is Method.CANCEL and a.status not in (None, EventStatus.CANCELLED):
        raise InvalidMessage(
            "a CANCEL has STATUS:CANCELLED or none (RFC 5546 §3.2.5)", "appointment-cancel-status"
        )


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone(tzid: str) -> ZoneInfo | None:
    """The IANA zone a TZID names, or None; never reads a path the TZID makes up."""
    name = tzid.strip().strip('"')
    if not name or len(name) > 128:
        return None
    candidates = [name]
    mapped = WINDOWS_TO_OLSON.get(name)
    if mapped:
        candidates.append(mapped)
    if name.startswith("/"):
        # Lightning (Thunderbird's calendar) wrote "/mozilla.org/20070129_1/Europe/Paris".
        parts = name.split("/")
        candidates.extend("/".join(parts[i:]) for i in range(1, len(parts)))
    known = _known_zones()
    for candidate in candidates:
        if candidate in known:
            return ZoneInfo(candidate)
    return None


# --- constructors -----------------------------------------------------------------------


def new_uid(domain: str) -> str:
    """A globally unique UID (RFC 5545 §3.8.4.7 suggests ``<unique>@<domain>``)."""
    return f"{uuid.uuid4().hex}@{domain}"


def new_request(
    *,
    uid: str,
    organizer: Address,
    attendees: Iterable[Address | Attendee],
    start: datetime,
    end: datetime,
    summary: str,
    dtstamp: datetime,
    organizer_name: str = "",
    location: str = "",
    description: str = "",
    tzid: str = DEFAULT_TZID,
    reminder: timedelta | None = DEFAULT_REMINDER,
    sequence: int = 0,
) -> Appointment:
    """An invitation: every attendee is asked to answer (``RSVP=TRUE``, ``NEEDS-ACTION``)."""
    people = tuple(
        a if isinstance(a, Attendee) else Attendee(a, partstat=PartStat.NEEDS_ACTION, rsvp=True)
        for a in attendees
    )
    return Appointment(
        method=Method.REQUEST,
        uid=uid,
        organizer=organizer,
        organizer_name=organizer_name,
        attendees=people,
        dtstamp=dtstamp,
        start=start,
        end=end,
        sequence=sequence,
        summary=summary,
        location=location,
        description=description,
        status=EventStatus.CONFIRMED,
        tzid=tzid,
        reminder=reminder,
    )


def _attendee_of(request: Appointment, who: Address) -> Attendee:
    for attendee in request.attendees:
        if attendee.address == who:
            return attendee
    raise InvalidMessage(f"{who} is not an attendee of {request.uid}", "appointment-not-attendee")


def reply_to(
    request: Appointment,
    attendee: Address,
    partstat: PartStat,
    *,
    dtstamp: datetime,
    comment: str = "",
) -> Appointment:
    """The REPLY of one attendee, as Thunderbird writes it: the event with only them in it."""
    me = _attendee_of(request, attendee)
    return replace(
        request,
        method=Method.REPLY,
        attendees=(Attendee(me.address, me.name, partstat, rsvp=False),),
        dtstamp=dtstamp,
        comment=comment,
        status=None,
        reminder=None,
    )


def reschedule(
    request: Appointment, *, start: datetime, end: datetime, dtstamp: datetime
) -> Appointment:
    """A new version of an invitation: SEQUENCE goes up and every answer is asked again.

    RFC 5546 §2.1.4: a change of time is significant, so earlier replies no longer count.
    """
    return replace(
        request,
        method=Method.REQUEST,
        start=start,
        end=end,
        dtstamp=dtstamp,
        sequence=request.sequence + 1,
        status=EventStatus.CONFIRMED,
        comment="",
        attendees=tuple(
            replace(a, partstat=PartStat.NEEDS_ACTION, rsvp=True) for a in request.attendees
        ),
    )


def cancel(request: Appointment, *, dtstamp: datetime, comment: str = "") -> Appointment:
    """The organizer's CANCEL of the whole event; SEQUENCE goes up (RFC 5546 §3.2.5)."""
    return replace(
        request,
        method=Method.CANCEL,
        dtstamp=dtstamp,
        sequence=request.sequence + 1,
        status=EventStatus.CANCELLED,
        comment=comment,
        reminder=None,
    )


def counter(
    request: Appointment,
    attendee: Address,
    *,
    start: datetime,
    end: datetime,
    dtstamp: datetime,
    comment: str = "",
) -> Appointment:
    """An attendee's COUNTER: the same event at another time (RFC 5546 §3.2.7)."""
    me = _attendee_of(request, attendee)
    return replace(
        request,
        method=Method.COUNTER,
        attendees=(replace(me, rsvp=False),),
        start=start,
        end=end,
        dtstamp=dtstamp,
        comment=comment,
        status=None,
        reminder=None,
    )


# --- iCalendar --------------------------------------------------------------------------


def _cal_address(address: Address, name: str, **params: str) -> vCalAddress:
    value = vCalAddress(f"mailto:{address}")
    if name:
        value.params["CN"] = name
    for key, param in params.items():
        value.params[key.upper()] = param
    return value


def to_ical(appointment: Appointment) -> bytes:
    """The ``VCALENDAR`` of one iTIP message (RFC 5545 §3.4, RFC 5546 §3.2)."""
    a = appointment
    cal = Calendar()
    cal.add("prodid", _PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", a.method.value)
    event = Event()
    event.add("uid", a.uid)
    event.add("dtstamp", a.dtstamp)
    event.add("sequence", a.sequence)
    if a.start is not None:
        event.add("dtstart", a.start)
    if a.end is not None:
        event.add("dtend", a.end)
    if a.status is not None:
        event.add("status", a.status.value)
    for name, text in (
        ("summary", a.summary),
        ("location", a.location),
        ("description", a.description),
        ("comment", a.comment),
    ):
        if text:
            event.add(name, text)
    event.add("organizer", _cal_address(a.organizer, a.organizer_name))
    for attendee in a.attendees:
        params = {"ROLE": "REQ-PARTICIPANT", "PARTSTAT": attendee.partstat.value}
        if attendee.rsvp:
            params["RSVP"] = "TRUE"
        event.add("attendee", _cal_address(attendee.address, attendee.name, **params))
    if a.reminder is not None:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", a.summary or "Rendez-vous")
        alarm.add("trigger", -a.reminder)
        event.add_component(alarm)
    cal.add_component(event)
    if a.start is not None and a.tzid != "UTC":
        # One VTIMEZONE covering the years of the event: both DST transitions of each year,
        # a few hundred bytes rather than the 1970-2038 default.
        last = a.end or a.start
        cal.add_missing_timezones(
            first_date=date(a.start.year, 1, 1), last_date=date(last.year + 1, 1, 1)
        )
    return bytes(cal.to_ical())


def _single(component: Component, name: str) -> object:
    value: object = component.get(name)
    if isinstance(value, list):
        raise InvalidMessage(f"{name} appears more than once", "ical-malformed")
    return value


_SAFE_RRULE_KEYS = frozenset({"FREQ", "BYMONTH", "BYDAY", "BYMONTHDAY", "UNTIL", "COUNT", "WKST"})


def _check_vtimezones(cal: Calendar) -> None:
    """Refuse time-zone rules whose evaluation could run for ever (see module notes)."""
    for tz in cal.walk("VTIMEZONE"):
        if len(tz.subcomponents) > 64:
            raise InvalidMessage("VTIMEZONE has too many rules", "appointment-unsupported-timezone")
        for rule in tz.subcomponents:
            rrule = rule.get("RRULE")
            if rrule is None:
                continue
            if isinstance(rrule, list):
                raise InvalidMessage(
                    "VTIMEZONE rule with several RRULEs", "appointment-unsupported-timezone"
                )
            keys = {str(k).upper() for k in rrule}
            freq = [str(f).upper() for f in rrule.get("FREQ", [])]
            if (
                freq != ["YEARLY"]
                or not keys <= _SAFE_RRULE_KEYS
                or len(rrule.get("BYMONTH", [])) > 1
                or len(rrule.get("BYDAY", [])) > 1
                or len(rrule.get("BYMONTHDAY", [])) > 7
            ):
                raise InvalidMessage(
                    "VTIMEZONE rules must be plain yearly rules", "appointment-unsupported-timezone"
                )


def _read_time(prop: object, what: str, default_zone: ZoneInfo) -> tuple[datetime, str]:
    """An aware datetime and the IANA zone it is shown in, without trusting custom rules."""
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        pass
    elif isinstance(value, date):
        raise InvalidMessage(f"{what} is a date without a time", "appointment-date-only")
    else:
        raise InvalidMessage(f"{what} is not a date-time", "ical-malformed")
    params: Mapping[str, object] = getattr(prop, "params", {})
    tzid = params.get("TZID")
    wall = value.replace(tzinfo=None)  # replace() never evaluates the zone's rules
    if tzid:
        zone = _zone(str(tzid))
        if zone is not None:
            return wall.replace(tzinfo=zone), zone.key
        if value.tzinfo is None:
            raise InvalidMessage(
                f"{what} names an unknown time zone {tzid!r}", "appointment-unknown-timezone"
            )
        # A custom VTIMEZONE, checked safe by _check_vtimezones: keep the instant, show it
        # in the default zone because the custom name means nothing to other readers.
        return value.astimezone(default_zone), default_zone.key
    if value.tzinfo is not None:  # the UTC form, "…Z" (RFC 5545 §3.3.5, FORM #2)
        return wall.replace(tzinfo=UTC), "UTC"
    return wall.replace(tzinfo=default_zone), default_zone.key


def _read_address(prop: object, what: str) -> tuple[Address, Mapping[str, object]]:
    text = str(prop)
    if text[:7].lower() != "mailto:":
        raise InvalidMessage(f"{what} is not a mailto: address", "appointment-invalid-address")
    try:
        return Address.parse(text[7:]), getattr(prop, "params", {})
    except InvalidAddress as exc:
        raise InvalidMessage(f"{what}: {exc}", "appointment-invalid-address") from exc


def _read_attendee(prop: object) -> Attendee:
    address, params = _read_address(prop, "ATTENDEE")
    raw_partstat = str(params.get("PARTSTAT", "NEEDS-ACTION")).upper()
    # RFC 5545 §3.2.12: an unknown value is to be treated as NEEDS-ACTION.
    partstat = PartStat(raw_partstat) if raw_partstat in _PARTSTATS else PartStat.NEEDS_ACTION
    rsvp = str(params.get("RSVP", "FALSE")).upper() == "TRUE"
    return Attendee(address, _clean_name(params.get("CN", "")), partstat, rsvp)


def _read_reminder(
    event: Component, start: datetime | None, end: datetime | None
) -> timedelta | None:
    """The earliest VALARM before the start, as a duration before the start."""
    found: list[timedelta] = []
    for alarm in event.subcomponents:
        if alarm.name != "VALARM":
            continue
        trigger = _single(alarm, "TRIGGER")
        value = getattr(trigger, "dt", None)
        if start is None or value is None:
            continue
        if isinstance(value, timedelta):
            params: Mapping[str, object] = getattr(trigger, "params", {})
            related = str(params.get("RELATED", "START")).upper()
            anchor = end if related == "END" and end is not None else start
            fires = anchor + value
        elif isinstance(value, datetime) and value.tzinfo is not None:
            fires = value  # an absolute trigger is in UTC (RFC 5545 §3.8.6.3)
        else:
            continue
        before = start - fires
        if before >= timedelta(0):
            found.append(before)
    return max(found) if found else None


def parse_calendar(
    text: bytes | str,
    *,
    declared_method: str | None = None,
    default_tzid: str = DEFAULT_TZID,
) -> Appointment:
    """The appointment an iTIP ``VCALENDAR`` carries, checked (RFC 5545, RFC 5546 §3.2)."""
    default_zone = _zone(default_tzid)
    if default_zone is None:
        raise ValueError(f"default time zone {default_tzid!r} is unknown")
    if len(text) > MAX_PART_SIZE:
        raise InvalidMessage("the calendar is too large", "appointment-too-large")
    try:
        with warnings.catch_warnings():
            # "/mozilla.org/…/Europe/Paris" makes icalendar warn that it guessed the zone;
            # _zone() makes the same guess on purpose. (catch_warnings is process-wide
            # before Python 3.14; only this one category is silenced.)
            warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
            cal = Calendar.from_ical(text)
    except Exception as exc:  # icalendar raises ValueError and others on hostile input
        raise InvalidMessage(f"malformed iCalendar: {exc}", "ical-malformed") from exc
    if cal.name != "VCALENDAR":
        raise InvalidMessage("the calendar part is not a VCALENDAR", "ical-malformed")
    for component in cal.walk():
        if component.errors:
            name, problem = component.errors[0]
            raise InvalidMessage(f"malformed iCalendar {name}: {problem}", "ical-malformed")
    if _single(cal, "PRODID") is None or _single(cal, "VERSION") is None:
        raise InvalidMessage("a VCALENDAR has PRODID and VERSION (RFC 5545 §3.6)", "ical-malformed")
    method_prop = _single(cal, "METHOD")
    if method_prop is None:
        raise InvalidMessage("an iTIP calendar names its METHOD", "appointment-missing-method")
    method_text = str(method_prop).strip().upper()
    if method_text not in _METHODS:
        raise InvalidMessage(
            f"method {method_text!r} is not supported", "appointment-unknown-method"
        )
    method = Method(method_text)
    if declared_method is not None and declared_method.strip().upper() != method_text:
        raise InvalidMessage(
            "the Content-Type method differs from the calendar's METHOD (RFC 6047 §2.4)",
            "appointment-method-mismatch",
        )
    for component in cal.subcomponents:
        if component.name not in ("VEVENT", "VTIMEZONE"):
            raise InvalidMessage(
                f"{component.name} is not an appointment", "appointment-unsupported-component"
            )
    events = [c for c in cal.subcomponents if c.name == "VEVENT"]
    if len(events) != 1:
        raise InvalidMessage(
            f"an appointment has exactly one VEVENT, found {len(events)}", "appointment-event-count"
        )
    event = events[0]
    for name in ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"):
        if event.get(name) is not None:
            raise InvalidMessage(
                f"{name}: recurring appointments are not supported",
                "appointment-recurrence-unsupported",
            )
    _check_vtimezones(cal)

    uid_prop = _single(event, "UID")
    if uid_prop is None or not str(uid_prop).strip():
        raise InvalidMessage("the event has no UID", "appointment-missing-uid")
    stamp_prop = _single(event, "DTSTAMP")
    if stamp_prop is None:
        raise InvalidMessage("the event has no DTSTAMP", "appointment-missing-dtstamp")
    dtstamp, _ = _read_time(stamp_prop, "DTSTAMP", ZoneInfo("UTC"))
    organizer_prop = _single(event, "ORGANIZER")
    if organizer_prop is None:
        raise InvalidMessage("the event has no ORGANIZER", "appointment-missing-organizer")
    organizer, organizer_params = _read_address(organizer_prop, "ORGANIZER")
    raw_attendees = event.get("ATTENDEE", [])
    if not isinstance(raw_attendees, list):
        raw_attendees = [raw_attendees]
    attendees = tuple(_read_attendee(p) for p in raw_attendees)

    start: datetime | None = None
    end: datetime | None = None
    tzid = default_zone.key
    start_prop = _single(event, "DTSTART")
    if start_prop is not None:
        start, tzid = _read_time(start_prop, "DTSTART", default_zone)
    end_prop = _single(event, "DTEND")
    duration_prop = _single(event, "DURATION")
    if end_prop is not None:
        end, _ = _read_time(end_prop, "DTEND", default_zone)
    elif duration_prop is not None and start is not None:
        duration = getattr(duration_prop, "dt", None)
        if not isinstance(duration, timedelta):
            raise InvalidMessage("DURATION is not a duration", "ical-malformed")
        end = start + duration
    status_prop = _single(event, "STATUS")
    status: EventStatus | None = None
    if status_prop is not None:
        status_text = str(status_prop).strip().upper()
        if status_text not in _STATUSES:
            raise InvalidMessage(f"STATUS {status_text!r} is not a VEVENT status", "ical-malformed")
        status = EventStatus(status_text)
    sequence_prop = _single(event, "SEQUENCE")

    def text_of(name: str) -> str:
        prop = _single(event, name)
        return "" if prop is None else str(prop)

    return Appointment(
        method=method,
        uid=str(uid_prop),
        organizer=organizer,
        organizer_name=_clean_name(organizer_params.get("CN", "")),
        attendees=attendees,
        dtstamp=dtstamp,
        start=start,
        end=end,
        sequence=0 if sequence_prop is None else int(str(sequence_prop)),
        summary=text_of("SUMMARY"),
        location=text_of("LOCATION"),
        description=text_of("DESCRIPTION"),
        comment=text_of("COMMENT"),
        status=status,
        tzid=tzid,
        reminder=_read_reminder(event, start, end),
    )


# --- the structured part ----------------------------------------------------------------


def _to_json(a: Appointment) -> dict[str, object]:
    return {
        "type": MessageKind.APPOINTMENT.value,
        "version": SCHEMA_VERSION,
        "method": a.method.value,
        "uid": a.uid,
        "sequence": a.sequence,
        "dtstamp": a.dtstamp.isoformat(),
        "start": None if a.start is None else a.start.isoformat(),
        "end": None if a.end is None else a.end.isoformat(),
        "tzid": a.tzid,
        "status": None if a.status is None else a.status.value,
        "summary": a.summary,
        "location": a.location,
        "description": a.description,
        "comment": a.comment,
        "organizer": {"address": str(a.organizer), "name": a.organizer_name},
        "attendees": [
            {
                "address": str(att.address),
                "name": att.name,
                "partstat": att.partstat.value,
                "rsvp": att.rsvp,
            }
            for att in a.attendees
        ],
        "reminder_seconds": None if a.reminder is None else int(a.reminder.total_seconds()),
    }


class _SchemaError(Exception):
    pass


# Typed readers of the JSON part: each returns what the schema says or raises _SchemaError.
# ``bool`` is an ``int`` in Python; the schema's integers are never true or false.


def _str(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _SchemaError(f"{key!r} must be a string")
    return value


def _opt_str(obj: Mapping[str, object], key: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key)


def _int(obj: Mapping[str, object], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _SchemaError(f"{key!r} must be an integer")
    return value


def _opt_int(obj: Mapping[str, object], key: str) -> int | None:
    return None if obj.get(key) is None else _int(obj, key)


def _bool(obj: Mapping[str, object], key: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise _SchemaError(f"{key!r} must be true or false")
    return value


def _object(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _SchemaError(f"{what} must be an object")
    return value


def _from_json(data: bytes) -> Appointment:
    try:
        obj = _object(json.loads(data), "the structured part")
        if _int(obj, "version") != SCHEMA_VERSION:
            raise InvalidMessage(
                "unsupported appointment schema version", "appointment-schema-version"
            )
        if _str(obj, "type") != MessageKind.APPOINTMENT.value:
            raise _SchemaError("type must be 'appointment'")

        def when(key: str) -> datetime | None:
            value = _opt_str(obj, key)
            return None if value is None else datetime.fromisoformat(value)

        organizer = _object(obj.get("organizer"), "organizer")
        people = obj.get("attendees")
        if not isinstance(people, list):
            raise _SchemaError("attendees must be a list")
        attendees = []
        for item in people:
            person = _object(item, "an attendee")
            attendees.append(
                Attendee(
                    Address.parse(_str(person, "address")),
                    _str(person, "name"),
                    PartStat(_str(person, "partstat")),
                    _bool(person, "rsvp"),
                )
            )
        status = _opt_str(obj, "status")
        reminder = _opt_int(obj, "reminder_seconds")
        dtstamp = when("dtstamp")
        if dtstamp is None:
            raise _SchemaError("dtstamp is required")
        return Appointment(
            method=Method(_str(obj, "method")),
            uid=_str(obj, "uid"),
            organizer=Address.parse(_str(organizer, "address")),
            organizer_name=_str(organizer, "name"),
            attendees=tuple(attendees),
            dtstamp=dtstamp,
            start=when("start"),
            end=when("end"),
            sequence=_int(obj, "sequence"),
            summary=_str(obj, "summary"),
            location=_str(obj, "location"),
            description=_str(obj, "description"),
            comment=_str(obj, "comment"),
            status=None if status is None else EventStatus(status),
            tzid=_str(obj, "tzid"),
            reminder=None if reminder is None else timedelta(seconds=reminder),
        )
    except InvalidMessage:
        raise
    except (_SchemaError, ValueError, TypeError, InvalidAddress, RecursionError) as exc:
        raise InvalidMessage(
            f"invalid appointment JSON: {exc}", "appointment-invalid-schema"
        ) from exc


# --- human-readable part ----------------------------------------------------------------

_SUBJECTS: dict[Lang, dict[str, str]] = {
    "fr": {
        "REQUEST": "Invitation",
        "CANCEL": "Annulé",
        "COUNTER": "Nouvel horaire proposé",
        "ACCEPTED": "Accepté",
        "DECLINED": "Refusé",
        "TENTATIVE": "Provisoire",
        "REPLY": "Réponse",
        "default": "Rendez-vous",
    },
    "en": {
        "REQUEST": "Invitation",
        "CANCEL": "Cancelled",
        "COUNTER": "New time proposed",
        "ACCEPTED": "Accepted",
        "DECLINED": "Declined",
        "TENTATIVE": "Tentative",
        "REPLY": "Reply",
        "default": "Appointment",
    },
}


def _person(address: Address, name: str) -> str:
    return f"{name} <{address}>" if name else str(address)


def _answer_key(a: Appointment) -> str:
    if a.method is Method.REPLY and a.attendees[0].partstat in (
        PartStat.ACCEPTED,
        PartStat.DECLINED,
        PartStat.TENTATIVE,
    ):
        return a.attendees[0].partstat.value
    return a.method.value


def subject_for(appointment: Appointment, lang: Lang = "fr") -> str:
    """``Invitation : Consultation`` / ``Accepted: Consultation``…"""
    words = _SUBJECTS[check_lang(lang)]
    title = " ".join(appointment.summary.split()) or words["default"]
    colon = " : " if lang == "fr" else ": "
    return f"{words[_answer_key(appointment)]}{colon}{title}"


def render_text(appointment: Appointment, lang: Lang = "fr") -> str:
    """The text part: who asks what, when and where, in French or English."""
    a = appointment
    fr = check_lang(lang) == "fr"
    organizer = _person(a.organizer, a.organizer_name)
    replier = a.attendees[0] if a.attendees else None
    who = _person(replier.address, replier.name) if replier else organizer
    if a.method is Method.REQUEST:
        lead = (
            f"{organizer} vous propose un rendez-vous."
            if fr
            else f"{organizer} invites you to an appointment."
        )
    elif a.method is Method.CANCEL:
        lead = (
            f"{organizer} a annulé ce rendez-vous."
            if fr
            else f"{organizer} cancelled this appointment."
        )
    elif a.method is Method.COUNTER:
        lead = f"{who} propose un autre horaire." if fr else f"{who} proposes another time."
    else:
        verbs_fr = {
            PartStat.ACCEPTED: "a accepté",
            PartStat.DECLINED: "a refusé",
            PartStat.TENTATIVE: "a accepté provisoirement",
        }
        verbs_en = {
            PartStat.ACCEPTED: "accepted",
            PartStat.DECLINED: "declined",
            PartStat.TENTATIVE: "tentatively accepted",
        }
        partstat = replier.partstat if replier else PartStat.NEEDS_ACTION
        verb = (verbs_fr if fr else verbs_en).get(partstat, "a répondu à" if fr else "answered")
        lead = f"{who} {verb} ce rendez-vous." if fr else f"{who} {verb} this appointment."
    lines = [lead, ""]
    label = {"subject": "Objet", "when": "Date", "where": "Lieu", "note": "Commentaire"}
    if not fr:
        label = {"subject": "Subject", "when": "When", "where": "Where", "note": "Comment"}
    sep = " : " if fr else ": "
    if a.summary:
        lines.append(f"{label['subject']}{sep}{a.summary}")
    if a.start is not None:
        lines.append(f"{label['when']}{sep}{format_when(a.start, a.end, a.tzid, lang)}")
    if a.location:
        lines.append(f"{label['where']}{sep}{a.location}")
    if a.comment:
        lines.append(f"{label['note']}{sep}{a.comment}")
    if a.description:
        lines.extend(["", a.description])
    if a.method is Method.REQUEST:
        lines.extend(
            [
                "",
                "Répondez depuis votre messagerie Pli ou votre agenda."
                if fr
                else "Answer from your Pli mailbox or your calendar.",
            ]
        )
    return "\n".join(lines) + "\n"


# --- the message ------------------------------------------------------------------------


def _default_sender(a: Appointment) -> tuple[Address, str]:
    if a.method in (Method.REQUEST, Method.CANCEL):
        return a.organizer, a.organizer_name
    if len(a.attendees) == 1:
        return a.attendees[0].address, a.attendees[0].name
    raise ValueError("a COUNTER with several attendees needs an explicit sender")


def _calendar_part(a: Appointment) -> EmailMessage:
    """``text/calendar; method=…; charset=UTF-8`` as calendar clients expect (RFC 6047 §2.4).

    ASCII calendars travel as 7bit, the form every client reads; others in base64, which
    keeps the CRLF line ends and folding of RFC 5545 §3.1 intact across relays.
    """
    ical = to_ical(a)
    part = EmailMessage(policy=POLICY)
    part.set_content(
        ical.decode("utf-8"),
        subtype="calendar",
        charset="utf-8",
        cte="7bit" if ical.isascii() else "base64",
        params={"method": a.method.value},
    )
    del part["MIME-Version"]
    return part


def build_appointment(
    appointment: Appointment,
    *,
    message_id: str | None = None,
    date: datetime | None = None,
    lang: Lang = "fr",
    sender: Address | None = None,
    sender_name: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
) -> bytes:
    """The iMIP message (RFC 6047 §2) of an appointment; see the module docstring.

    REQUEST and CANCEL go from the organizer to the attendees, REPLY and COUNTER from the
    answering attendee to the organizer (RFC 6047 §3).
    """
    a = appointment
    lang = check_lang(lang)
    if sender is None:
        from_address, from_name = _default_sender(a)
    else:
        from_address, from_name = sender, ""
        for attendee in a.attendees:
            if attendee.address == sender:
                from_name = attendee.name
        if sender == a.organizer:
            from_name = a.organizer_name
    if sender_name is not None:
        from_name = sender_name
    if a.method in (Method.REQUEST, Method.CANCEL):
        recipients = [att.address for att in a.attendees if att.address != from_address]
    else:
        recipients = [a.organizer]
    if not recipients:
        raise InvalidMessage(
            "the appointment has nobody to send to", "appointment-missing-attendee"
        )
    extra: list[tuple[str, str]] = []
    if in_reply_to:
        extra.append(("In-Reply-To", in_reply_to))
    if references:
        extra.append(("References", " ".join(references)))
    root = new_root(
        sender=from_address,
        sender_name=from_name,
        recipients=recipients,
        subject=subject_for(a, lang),
        message_id=message_id or new_message_id(from_address.domain),
        date=date or a.dtstamp,
        kind=MessageKind.APPOINTMENT,
        extra_headers=extra,
    )
    alternative = EmailMessage(policy=POLICY)
    alternative.make_alternative()
    alternative.attach(text_part(render_text(a, lang)))
    alternative.attach(_calendar_part(a))
    structured = EmailMessage(policy=POLICY)
    structured.set_content(
        json.dumps(_to_json(a), ensure_ascii=False, sort_keys=True).encode("utf-8"),
        maintype="application",
        subtype=JSON_TYPE.split("/", 1)[1],
        params={"version": str(SCHEMA_VERSION)},
        disposition="attachment",
        filename=_JSON_FILENAME,
    )
    del structured["MIME-Version"]
    root.make_mixed()
    root["Content-Language"] = lang  # after make_mixed, which moves Content-* headers down
    root.attach(alternative)
    root.attach(structured)
    return root.as_bytes()


def _own_parts(msg: Message) -> Iterator[Message]:
    """The parts of this message, not of messages it carries (``message/rfc822``).

    A bounce or a forward that contains somebody's invitation is not an invitation.
    """
    yield msg
    if msg.get_content_maintype() == "multipart":
        payload = msg.get_payload()
        for part in payload if isinstance(payload, list) else []:
            if isinstance(part, Message):
                yield from _own_parts(part)


def _calendar_parts(msg: Message) -> list[Message]:
    return [
        part
        for part in _own_parts(msg)
        if part.get_content_type() == "text/calendar" and part.get_param("method") is not None
    ]


def recognises(msg: Message) -> bool:
    """An iMIP message: a ``text/calendar`` part with a ``method`` parameter (RFC 6047 §2.4).

    A calendar file attached without ``method`` is a document, not a scheduling message.
    """
    try:
        return bool(_calendar_parts(msg))
    except Exception:  # classification must never crash on a hostile message
        return False


def _decoded(part: Message, code: str) -> bytes:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise InvalidMessage("the part has no content", code)
    if len(payload) > MAX_PART_SIZE:
        raise InvalidMessage("the part is too large", "appointment-too-large")
    return payload


def parse_appointment(raw: bytes, *, default_tzid: str = DEFAULT_TZID) -> Appointment:
    """The typed appointment of an iMIP message, from Pli or from any mail client.

    The ``text/calendar`` part decides; a Pli JSON part, when present, must agree with it.
    """
    msg = parse_lenient(raw)
    try:
        parts = _calendar_parts(msg)
    except Exception as exc:
        raise InvalidMessage(f"unreadable MIME structure: {exc}", "mime-malformed") from exc
    if not parts:
        raise InvalidMessage("no text/calendar part with a method", "appointment-missing-calendar")
    if len(parts) > 1:
        raise InvalidMessage("several text/calendar parts", "appointment-several-calendars")
    part = parts[0]
    payload = _decoded(part, "ical-malformed")
    charset = str(part.get_content_charset() or "utf-8")
    try:
        text = payload.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise InvalidMessage(f"calendar text is not {charset}", "ical-malformed") from exc
    declared = part.get_param("method")
    appointment = parse_calendar(
        text,
        declared_method=declared if isinstance(declared, str) else None,
        default_tzid=default_tzid,
    )
    structured = [p for p in _own_parts(msg) if p.get_content_type() == JSON_TYPE]
    if len(structured) > 1:
        raise InvalidMessage("several structured parts", "appointment-invalid-schema")
    if structured:
        version = structured[0].get_param("version")
        if str(version) != str(SCHEMA_VERSION):
            raise InvalidMessage(
                f"unsupported appointment schema version {version!r}", "appointment-schema-version"
            )
        stated = _from_json(_decoded(structured[0], "appointment-invalid-schema"))
        if stated != appointment:
            raise InvalidMessage(
                "the structured part and the calendar part describe different appointments",
                "appointment-parts-disagree",
            )
    return appointment


SPEC = KindSpec(
    kind=MessageKind.APPOINTMENT,
    schema_version=SCHEMA_VERSION,
    description_fr="Rendez-vous",
    description_en="Appointment",
    recognises=recognises,
)
