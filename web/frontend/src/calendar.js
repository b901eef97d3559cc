// Appointments in the browser: an iCalendar reader, the patient's agenda and the REPLY.
//
// RFC 5545 (iCalendar) for the text, RFC 5546 (iTIP) for what REQUEST, REPLY, CANCEL and
// COUNTER mean, RFC 6047 (iMIP) for how they travel by mail, RFC 5322 and RFC 2045-2047 for
// the reply message. The calendar is inside the sealed content, so the server cannot derive
// the agenda: this module applies in the page the rules of messaging/agenda.py, and reads
// and refuses calendars as messaging/kinds/appointment.py does (same error codes), so that
// the browser and the server never show two different appointments.
//
// Everything here is a pure function of its arguments (no DOM, no storage, no network).
// Every loop is bounded by the size of a text refused above 256 KB.

import { b64lines, encodeWords, newMessageId, parseMessage } from "./mime.js";

export class CalendarError extends Error {
  /** `code` is the stable code messaging/kinds/appointment.py gives the same refusal. */
  constructor(message, code = "ical-malformed") {
    super(message);
    this.name = "CalendarError";
    this.code = code;
  }
}

export const MAX_CALENDAR_BYTES = 256 * 1024;
export const DEFAULT_TZID = "Europe/Paris";
export const METHODS = Object.freeze(["REQUEST", "REPLY", "CANCEL", "COUNTER"]);
export const ANSWERS = Object.freeze(["ACCEPTED", "DECLINED", "TENTATIVE"]);

const PARTSTATS = new Set(["NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"]);
const STATUSES = new Set(["TENTATIVE", "CONFIRMED", "CANCELLED"]);
const RECURRENCE = ["RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"];
// Properties the Python reader takes once (its _single): a second one is ambiguous, and two
// readers could each pick a different one.
const SINGLE = [
  "UID", "DTSTAMP", "ORGANIZER", "DTSTART", "DTEND", "DURATION", "STATUS", "SEQUENCE",
  "SUMMARY", "LOCATION", "DESCRIPTION", "COMMENT",
];
const MAX_DEPTH = 8;
const MAX_TEXT = 10_000;
const UID_RE = /^[\x21-\x7e]{1,255}$/;
const LOCAL_RE = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/;
const LABEL_RE = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
const PRODID = "-//Pli//Pli webmail//FR";

// The Windows names Outlook writes in TZID for the zones Pli's users live in (CLDR's
// windowsZones, territory 001), as messaging/kinds/appointment.py resolves them.
const WINDOWS_ZONES = {
  "Romance Standard Time": "Europe/Paris",
  "W. Europe Standard Time": "Europe/Berlin",
  "Central Europe Standard Time": "Europe/Budapest",
  "Central European Standard Time": "Europe/Warsaw",
  "GMT Standard Time": "Europe/London",
  "Greenwich Standard Time": "Atlantic/Reykjavik",
  "E. Europe Standard Time": "Europe/Chisinau",
  "GTB Standard Time": "Europe/Bucharest",
  "FLE Standard Time": "Europe/Kiev",
  "Morocco Standard Time": "Africa/Casablanca",
  "W. Central Africa Standard Time": "Africa/Lagos",
  "Arabian Standard Time": "Asia/Dubai",
  "Mauritius Standard Time": "Indian/Mauritius",
  "SA Western Standard Time": "America/La_Paz",
  "SA Eastern Standard Time": "America/Cayenne",
  "Eastern Standard Time": "America/New_York",
  "Pacific Standard Time": "America/Los_Angeles",
  "Hawaiian Standard Time": "Pacific/Honolulu",
  "UTC": "Etc/UTC",
};

// -- addresses ------------------------------------------------------------------------------

/** `local@domain` lower-cased, as messaging.types.Address.parse normalises it; or null. */
export function normaliseAddress(text) {
  let value = String(text ?? "").trim();
  if (value.startsWith("<") && value.endsWith(">")) value = value.slice(1, -1);
  const at = value.lastIndexOf("@");
  if (at <= 0 || at === value.length - 1) return null;
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (!LOCAL_RE.test(local) || local.startsWith(".") || local.endsWith(".") || local.includes("..")) return null;
  let ascii = domain;
  // eslint-disable-next-line no-control-regex
  if (!/^[\x21-\x7e]+$/.test(domain)) {
    try {
      ascii = new URL(`http://${domain}/`).hostname; // IDNA, as Python's "idna" codec
    } catch {
      return null;
    }
  }
  ascii = ascii.toLowerCase();
  const labels = ascii.split(".");
  if (ascii.length > 253 || labels.length < 2 || !labels.every((l) => LABEL_RE.test(l))) return null;
  return `${local.toLowerCase()}@${ascii}`;
}

// -- time zones -----------------------------------------------------------------------------

const formatters = new Map();

function formatter(zone) {
  let f = formatters.get(zone);
  if (!f) {
    if (formatters.size > 64) formatters.clear(); // a hostile calendar cannot grow it for ever
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(zone, f);
  }
  return f;
}

function utcMs(y, mo, d, h, mi, s) {
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d);
  t.setUTCHours(h, mi, s, 0);
  return t.getTime();
}

/** The wall-clock fields of an instant in a zone. */
function wallOf(zone, ms) {
  const parts = {};
  for (const p of formatter(zone).formatToParts(new Date(ms))) parts[p.type] = p.value;
  const hour = Number(parts.hour) % 24;
  return {
    y: Number(parts.year), mo: Number(parts.month), d: Number(parts.day),
    h: hour, mi: Number(parts.minute), s: Number(parts.second),
  };
}

function offsetAt(zone, ms) {
  const w = wallOf(zone, ms);
  return utcMs(w.y, w.mo, w.d, w.h, w.mi, w.s) - ms;
}

/** The instant a wall-clock time names in a zone.
 *
 * In a gap (spring forward) or an overlap (fall back) the offset in force before the
 * transition is used, which is what Python's zoneinfo does with fold=0: the browser and the
 * server then agree on the instant of "02:30" on the night of a change.
 */
function wallToInstant(zone, w) {
  const guess = utcMs(w.y, w.mo, w.d, w.h, w.mi, w.s);
  if (zone === "UTC" || zone === "Etc/UTC") return guess;
  const day = 86_400_000;
  const before = offsetAt(zone, guess - day);
  const after = offsetAt(zone, guess + day);
  if (offsetAt(zone, guess - before) === before) return guess - before;
  if (offsetAt(zone, guess - after) === after) return guess - after;
  return guess - before;
}

function knownZone(name) {
  if (!/^[A-Za-z0-9_+\-/]{1,128}$/.test(name)) return null;
  try {
    const resolved = new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === name.toLowerCase() ? resolved : name;
  } catch {
    return null;
  }
}

/** The IANA zone a TZID names (Windows names and Lightning's prefixes included), or null. */
export function resolveTzid(tzid) {
  const name = String(tzid ?? "").trim().replace(/^"+|"+$/g, "");
  if (!name || name.length > 128) return null;
  const candidates = [name];
  if (Object.hasOwn(WINDOWS_ZONES, name)) candidates.push(WINDOWS_ZONES[name]);
  if (name.startsWith("/")) {
    // Lightning (Thunderbird's calendar) wrote "/mozilla.org/20070129_1/Europe/Paris".
    const parts = name.split("/");
    for (let i = 1; i < parts.length && i < 16; i++) candidates.push(parts.slice(i).join("/"));
  }
  for (const candidate of candidates) {
    const zone = knownZone(candidate);
    if (zone) return zone;
  }
  return null;
}

// -- content lines (RFC 5545 §3.1) ---------------------------------------------------------

/** One content line: {name, params: {NAME: [values]}, value}. */
function contentLine(line) {
  let i = 0;
  const n = line.length;
  while (i < n && /[A-Za-z0-9-]/.test(line[i])) i++;
  const name = line.slice(0, i).toUpperCase();
  if (!name) throw new CalendarError(`malformed content line: ${line.slice(0, 40)}`);
  const params = {};
  while (i < n && line[i] === ";") {
    const eq = line.indexOf("=", i);
    if (eq < 0) throw new CalendarError(`malformed parameter in ${name}`);
    const pname = line.slice(i + 1, eq).trim().toUpperCase();
    if (!/^[A-Z0-9-]+$/.test(pname)) throw new CalendarError(`malformed parameter in ${name}`);
    i = eq + 1;
    const values = [];
    // Each turn consumes at least one character, so the line length bounds the loop.
    while (i <= n) {
      if (line[i] === '"') {
        const close = line.indexOf('"', i + 1);
        if (close < 0) throw new CalendarError(`unterminated quoted parameter in ${name}`);
        values.push(line.slice(i + 1, close));
        i = close + 1;
      } else {
        const start = i;
        while (i < n && line[i] !== ";" && line[i] !== ":" && line[i] !== ",") i++;
        values.push(line.slice(start, i));
      }
      if (line[i] !== ",") break;
      i++;
    }
    if (!Object.hasOwn(params, pname)) params[pname] = values;
  }
  if (line[i] !== ":") throw new CalendarError(`malformed content line ${name}`);
  return { name, params, value: line.slice(i + 1) };
}

function components(text) {
  // Unfolding (§3.1): a line break followed by one space or tab is removed with it.
  const lines = text.replace(/\r?\n[ \t]/g, "").split(/\r?\n/);
  const roots = [];
  const stack = [];
  for (const line of lines) {
    if (line.trim() === "") continue;
    const prop = contentLine(line);
    if (prop.name === "BEGIN") {
      const node = { name: prop.value.trim().toUpperCase(), props: [], children: [] };
      if (stack.length >= MAX_DEPTH) throw new CalendarError("components nested too deep");
      if (stack.length) stack[stack.length - 1].children.push(node);
      else roots.push(node);
      stack.push(node);
    } else if (prop.name === "END") {
      const open = stack.pop();
      if (!open || open.name !== prop.value.trim().toUpperCase()) {
        throw new CalendarError(`END:${prop.value} does not close ${open ? open.name : "anything"}`);
      }
    } else if (stack.length) {
      stack[stack.length - 1].props.push(prop);
    } else {
      throw new CalendarError(`${prop.name} outside of any component`);
    }
  }
  if (stack.length) throw new CalendarError(`${stack[stack.length - 1].name} is not closed`);
  return roots;
}

function all(component, name) {
  return component.props.filter((p) => p.name === name);
}

function single(component, name) {
  const found = all(component, name);
  if (found.length > 1) throw new CalendarError(`${name} appears more than once`);
  return found[0] ?? null;
}

function param(prop, name) {
  const values = prop.params[name];
  return values && values.length ? values[0] : null;
}

/** TEXT (§3.3.11): \n \N \, \; \\ are escapes; any other backslash is kept as written. */
export function unescapeText(value) {
  return value.replace(/\\([\\;,nN])/g, (_m, c) => (c === "n" || c === "N" ? "\n" : c));
}

function checkText(value, what, limit = MAX_TEXT) {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value.replace(/\n/g, ""))) {
    throw new CalendarError(`${what} contains control characters`, "appointment-invalid-text");
  }
  if ([...value].length > limit) {
    throw new CalendarError(`${what} is longer than ${limit}`, "appointment-invalid-text");
  }
  return value;
}

/** A display name from another client, made acceptable rather than refused (as Python). */
function cleanName(value) {
  return Array.from(String(value ?? "").replace(/[\p{Cc}\p{Zl}\p{Zp}"\\]/gu, "")).slice(0, 200).join("");
}

function readAddress(prop, what) {
  const text = prop.value.trim();
  if (text.slice(0, 7).toLowerCase() !== "mailto:") {
    throw new CalendarError(`${what} is not a mailto: address`, "appointment-invalid-address");
  }
  const address = normaliseAddress(text.slice(7));
  if (!address) throw new CalendarError(`${what} is not a valid address`, "appointment-invalid-address");
  return address;
}

// -- values ---------------------------------------------------------------------------------

function daysIn(y, mo) {
  return new Date(utcMs(y, mo + 1, 1, 0, 0, 0) - 86_400_000).getUTCDate();
}

/** A DATE-TIME property as {instant: Date, tzid}: UTC, TZID= or floating (§3.3.5). */
function readTime(prop, what, defaultZone) {
  const raw = prop.value.trim().toUpperCase();
  const valueType = (param(prop, "VALUE") || "DATE-TIME").toUpperCase();
  if (valueType === "DATE" || /^\d{8}$/.test(raw)) {
    throw new CalendarError(`${what} is a date without a time`, "appointment-date-only");
  }
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)$/.exec(raw);
  if (valueType !== "DATE-TIME" || !m) throw new CalendarError(`${what} is not a date-time`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 59) {
    throw new CalendarError(`${what} is not a valid date-time`);
  }
  const wall = { y, mo, d, h, mi, s };
  const tzid = param(prop, "TZID");
  if (tzid) {
    const zone = resolveTzid(tzid);
    // Custom VTIMEZONE rules are not evaluated here: only IANA zones are trusted.
    if (!zone) throw new CalendarError(`${what} names an unknown time zone ${tzid}`, "appointment-unknown-timezone");
    return { instant: new Date(wallToInstant(zone, wall)), tzid: zone };
  }
  if (m[7] === "Z") return { instant: new Date(utcMs(y, mo, d, h, mi, s)), tzid: "UTC" };
  // Floating: RFC 5545 leaves it to the reader; Pli reads French time, like the server.
  return { instant: new Date(wallToInstant(defaultZone, wall)), tzid: defaultZone };
}

/** A DURATION (§3.3.6) as {days, seconds}, both signed. */
function readDuration(text, what) {
  const m = /^([+-])?P(?:(\d{1,9})W)?(?:(\d{1,9})D)?(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9})S)?)?$/.exec(
    text.trim().toUpperCase(),
  );
  const hasTime = /T/i.test(text);
  if (!m || m.slice(2).every((x) => x === undefined) || (hasTime && m.slice(4).every((x) => x === undefined))) {
    throw new CalendarError(`${what} is not a duration`);
  }
  const sign = m[1] === "-" ? -1 : 1;
  const num = (x) => (x === undefined ? 0 : Number(x));
  return {
    days: sign * (num(m[2]) * 7 + num(m[3])),
    seconds: sign * (num(m[4]) * 3600 + num(m[5]) * 60 + num(m[6])),
  };
}

/** The wall-clock time `seconds` after an instant, read back in the zone.
 *
 * Python adds a timedelta to an aware datetime on the wall clock (then resolves with
 * fold=0), and the server computes DURATION ends and reminders that way: doing the same
 * here keeps the two agendas equal. For days it is what RFC 5545 §3.3.6 asks (a day is a
 * calendar day); for hours it differs from exact time only across a DST change at night.
 */
function addWall(instant, tzid, seconds) {
  const ms = instant.getTime();
  if (tzid === "UTC" || tzid === "Etc/UTC") return new Date(ms + seconds * 1000);
  const w = wallOf(tzid, ms);
  const shifted = new Date(utcMs(w.y, w.mo, w.d, w.h, w.mi, w.s) + seconds * 1000);
  if (Number.isNaN(shifted.getTime())) throw new CalendarError("a time out of range");
  return new Date(
    wallToInstant(tzid, {
      y: shifted.getUTCFullYear(), mo: shifted.getUTCMonth() + 1, d: shifted.getUTCDate(),
      h: shifted.getUTCHours(), mi: shifted.getUTCMinutes(), s: shifted.getUTCSeconds(),
    }),
  );
}

function wallSeconds(instant, tzid) {
  return (instant.getTime() + offsetAt(tzid, instant.getTime())) / 1000;
}

function durationSeconds(duration) {
  return duration.days * 86_400 + duration.seconds;
}

/** The earliest VALARM at or before the start, in minutes before it (Python's _read_reminder). */
function readReminder(event, start, end, tzid) {
  let found = null;
  for (const alarm of event.children) {
    if (alarm.name !== "VALARM") continue;
    const trigger = single(alarm, "TRIGGER");
    if (!trigger || !start) continue;
    let before;
    const valueType = (param(trigger, "VALUE") || "DURATION").toUpperCase();
    if (valueType === "DATE-TIME") {
      // An absolute trigger is in UTC (§3.8.6.3); a floating one means nothing.
      if (!/Z$/i.test(trigger.value.trim())) continue;
      before = (start.getTime() - readTime(trigger, "TRIGGER", "UTC").instant.getTime()) / 1000;
    } else {
      const offset = durationSeconds(readDuration(trigger.value, "TRIGGER"));
      const related = (param(trigger, "RELATED") || "START").toUpperCase();
      // On the wall clock, as Python subtracts two datetimes of the same zone.
      before = related === "END" && end ? wallSeconds(start, tzid) - wallSeconds(end, tzid) - offset : -offset;
    }
    if (before >= 0 && (found === null || before > found)) found = before;
  }
  return found === null ? null : found / 60;
}

// -- the reader -----------------------------------------------------------------------------

function byteLength(text) {
  return new TextEncoder().encode(text).length;
}

/**
 * The appointment one iTIP VCALENDAR carries, checked as the server checks it.
 *
 * Returns {method, uid, sequence, dtstamp, start, end, tzid, summary, location, description,
 * comment, status, organizer: {address, name}, attendees: [{address, name, partstat, rsvp}],
 * reminderMinutes}; throws CalendarError (with the server's `code`) on what it refuses.
 */
export function parseCalendar(text, { declaredMethod = null, defaultTzid = DEFAULT_TZID } = {}) {
  if (text instanceof Uint8Array) {
    if (text.length > MAX_CALENDAR_BYTES) throw new CalendarError("the calendar is too large", "appointment-too-large");
    text = new TextDecoder("utf-8", { fatal: false }).decode(text);
  }
  if (typeof text !== "string") throw new CalendarError("the calendar is not text");
  if (text.length > MAX_CALENDAR_BYTES || byteLength(text) > MAX_CALENDAR_BYTES) {
    throw new CalendarError("the calendar is too large", "appointment-too-large");
  }
  const defaultZone = resolveTzid(defaultTzid);
  if (!defaultZone) throw new CalendarError(`default time zone ${defaultTzid} is unknown`, "appointment-unknown-timezone");
  const roots = components(text.replace(/^\uFEFF/, ""));
  if (roots.length !== 1 || roots[0].name !== "VCALENDAR") {
    throw new CalendarError("the calendar part is not one VCALENDAR");
  }
  const cal = roots[0];
  if (!single(cal, "PRODID") || !single(cal, "VERSION")) {
    throw new CalendarError("a VCALENDAR has PRODID and VERSION (RFC 5545 §3.6)");
  }
  const methodProp = single(cal, "METHOD");
  if (!methodProp) throw new CalendarError("an iTIP calendar names its METHOD", "appointment-missing-method");
  const method = methodProp.value.trim().toUpperCase();
  if (!METHODS.includes(method)) throw new CalendarError(`method ${method} is not supported`, "appointment-unknown-method");
  if (declaredMethod !== null && declaredMethod !== undefined && String(declaredMethod).trim().toUpperCase() !== method) {
    throw new CalendarError("the Content-Type method differs from the calendar's METHOD (RFC 6047 §2.4)", "appointment-method-mismatch");
  }
  for (const child of cal.children) {
    if (child.name !== "VEVENT" && child.name !== "VTIMEZONE") {
      throw new CalendarError(`${child.name} is not an appointment`, "appointment-unsupported-component");
    }
  }
  const events = cal.children.filter((c) => c.name === "VEVENT");
  if (events.length !== 1) {
    throw new CalendarError(`an appointment has exactly one VEVENT, found ${events.length}`, "appointment-event-count");
  }
  const event = events[0];
  for (const name of RECURRENCE) {
    if (all(event, name).length) {
      throw new CalendarError(`${name}: recurring appointments are not supported`, "appointment-recurrence-unsupported");
    }
  }
  for (const name of SINGLE) single(event, name);

  const uidProp = single(event, "UID");
  if (!uidProp || !uidProp.value.trim()) throw new CalendarError("the event has no UID", "appointment-missing-uid");
  const uid = unescapeText(uidProp.value);
  if (!UID_RE.test(uid)) throw new CalendarError("a UID is 1 to 255 visible ASCII characters", "appointment-invalid-uid");
  const stampProp = single(event, "DTSTAMP");
  if (!stampProp) throw new CalendarError("the event has no DTSTAMP", "appointment-missing-dtstamp");
  const dtstamp = readTime(stampProp, "DTSTAMP", "UTC").instant;
  const organizerProp = single(event, "ORGANIZER");
  if (!organizerProp) throw new CalendarError("the event has no ORGANIZER", "appointment-missing-organizer");
  const organizer = { address: readAddress(organizerProp, "ORGANIZER"), name: cleanName(param(organizerProp, "CN") ?? "") };
  const attendees = all(event, "ATTENDEE").map((prop) => {
    const partstat = (param(prop, "PARTSTAT") || "NEEDS-ACTION").toUpperCase();
    return {
      address: readAddress(prop, "ATTENDEE"),
      name: cleanName(param(prop, "CN") ?? ""),
      // §3.2.12: an unknown value is to be treated as NEEDS-ACTION.
      partstat: PARTSTATS.has(partstat) ? partstat : "NEEDS-ACTION",
      rsvp: (param(prop, "RSVP") || "FALSE").toUpperCase() === "TRUE",
    };
  });
  if (new Set(attendees.map((a) => a.address)).size !== attendees.length) {
    throw new CalendarError("an attendee is listed twice", "appointment-duplicate-attendee");
  }

  let start = null;
  let end = null;
  let tzid = defaultZone;
  const startProp = single(event, "DTSTART");
  if (startProp) ({ instant: start, tzid } = readTime(startProp, "DTSTART", defaultZone));
  const endProp = single(event, "DTEND");
  const durationProp = single(event, "DURATION");
  if (endProp) {
    end = readTime(endProp, "DTEND", defaultZone).instant;
  } else if (durationProp && start) {
    end = addWall(start, tzid, durationSeconds(readDuration(durationProp.value, "DURATION")));
  }
  const statusProp = single(event, "STATUS");
  let status = null;
  if (statusProp) {
    status = statusProp.value.trim().toUpperCase();
    if (!STATUSES.has(status)) throw new CalendarError(`STATUS ${status} is not a VEVENT status`);
  }
  const sequenceProp = single(event, "SEQUENCE");
  let sequence = 0;
  if (sequenceProp) {
    if (!/^[+-]?\d{1,12}$/.test(sequenceProp.value.trim())) throw new CalendarError("SEQUENCE is not an integer");
    sequence = Number(sequenceProp.value.trim());
  }
  const textOf = (name) => {
    const prop = single(event, name);
    return prop ? checkText(unescapeText(prop.value), name) : "";
  };
  const appointment = {
    method,
    uid,
    sequence,
    dtstamp,
    start,
    end,
    tzid,
    summary: textOf("SUMMARY"),
    location: textOf("LOCATION"),
    description: textOf("DESCRIPTION"),
    comment: textOf("COMMENT"),
    status,
    organizer,
    attendees,
    reminderMinutes: readReminder(event, start, end, tzid),
  };
  validate(appointment);
  return appointment;
}

const JSON_TYPE = "application/vnd.pli.appointment+json";

function sameInstant(iso, date) {
  if (iso === null || iso === undefined) return date === null;
  // An offset is required: a time without one is refused by the server (floating-time).
  if (typeof iso !== "string" || !/(Z|[+-]\d{2}:\d{2})$/.test(iso)) return false;
  return date !== null && Date.parse(iso) === date.getTime();
}

/** Pli's JSON part, when present, says exactly what the calendar says (or is refused with
 * appointment-parts-disagree): a reader of one part is never shown another appointment. */
function checkStructured(message, a) {
  const parts = (message.attachments ?? []).filter((p) => p.type === JSON_TYPE);
  if (parts.length === 0) return;
  if (parts.length > 1) throw new CalendarError("several structured parts", "appointment-invalid-schema");
  let obj;
  try {
    obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(parts[0].data));
  } catch {
    throw new CalendarError("the structured part is not JSON", "appointment-invalid-schema");
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new CalendarError("the structured part is not an object", "appointment-invalid-schema");
  }
  if (!Number.isInteger(obj.version)) throw new CalendarError("no schema version", "appointment-invalid-schema");
  if (obj.version !== 1) throw new CalendarError("unsupported appointment schema version", "appointment-schema-version");
  const people = Array.isArray(obj.attendees) ? obj.attendees : null;
  const organizer = obj.organizer && typeof obj.organizer === "object" ? obj.organizer : {};
  const same =
    obj.type === "appointment" &&
    obj.method === a.method &&
    obj.uid === a.uid &&
    obj.sequence === a.sequence &&
    (obj.status ?? null) === a.status &&
    obj.summary === a.summary &&
    obj.location === a.location &&
    obj.description === a.description &&
    obj.comment === a.comment &&
    obj.tzid === a.tzid &&
    sameInstant(obj.dtstamp, a.dtstamp) &&
    sameInstant(obj.start, a.start) &&
    sameInstant(obj.end, a.end) &&
    normaliseAddress(organizer.address) === a.organizer.address &&
    organizer.name === a.organizer.name &&
    (obj.reminder_seconds ?? null) === (a.reminderMinutes === null ? null : Math.round(a.reminderMinutes * 60)) &&
    people !== null &&
    people.length === a.attendees.length &&
    people.every((p, i) => {
      const att = a.attendees[i];
      return p && normaliseAddress(p.address) === att.address && p.name === att.name && p.partstat === att.partstat && p.rsvp === att.rsvp;
    });
  if (!same) {
    throw new CalendarError("the structured part and the calendar part describe different appointments", "appointment-parts-disagree");
  }
}

/**
 * The appointment of an opened iMIP message (RFC 6047 §2.4): its one text/calendar part
 * with a `method` parameter decides, as in messaging.kinds.appointment.parse_appointment,
 * and Pli's JSON part, when there is one, must agree with it.
 *
 * `input` is the message's bytes or what mime.js's parseMessage made of them. Returns
 * {message, appointment}, `message` being the parseMessage result; throws CalendarError.
 */
export function appointmentOfMessage(input) {
  const message = input instanceof Uint8Array ? parseMessage(input) : input;
  // A calendar file attached without a method is a document, not a scheduling message.
  const calendars = (message?.calendars ?? []).filter((c) => c.method);
  if (calendars.length === 0) throw new CalendarError("no text/calendar part with a method", "appointment-missing-calendar");
  if (calendars.length > 1) throw new CalendarError("several text/calendar parts", "appointment-several-calendars");
  const appointment = parseCalendar(calendars[0].text, { declaredMethod: calendars[0].method });
  checkStructured(message, appointment);
  return { message, appointment };
}

function validate(a) {
  if (!(a.sequence >= 0 && a.sequence <= 2 ** 31 - 1)) {
    throw new CalendarError("SEQUENCE must be a non-negative integer", "appointment-invalid-sequence");
  }
  if (!a.start && a.end) throw new CalendarError("DTEND without DTSTART", "appointment-missing-start");
  if ((a.method === "REQUEST" || a.method === "COUNTER") && !a.start) {
    throw new CalendarError(`a ${a.method} needs DTSTART`, "appointment-missing-start");
  }
  if (a.start && a.end && a.end < a.start) throw new CalendarError("DTEND is before DTSTART", "appointment-end-before-start");
  if (a.method === "REPLY" && a.attendees.length !== 1) {
    throw new CalendarError("a REPLY names exactly one attendee, the one who answers (RFC 5546 §3.2.3)", "appointment-reply-attendee");
  }
  if ((a.method === "REQUEST" || a.method === "COUNTER") && a.attendees.length === 0) {
    throw new CalendarError(`a ${a.method} needs an attendee`, "appointment-missing-attendee");
  }
  if (a.method === "CANCEL" && a.status !== null && a.status !== "CANCELLED") {
    throw new CalendarError("a CANCEL has STATUS:CANCELLED or none (RFC 5546 §3.2.5)", "appointment-cancel-status");
  }
}

// -- the agenda (messaging/agenda.py) -------------------------------------------------------

const OWN_STATUS = {
  "NEEDS-ACTION": "proposed",
  ACCEPTED: "accepted",
  TENTATIVE: "tentative",
  DECLINED: "declined",
  DELEGATED: "declined", // someone else goes in the owner's place
};

function stableText(a) {
  return JSON.stringify(a, (_k, v) => (v instanceof Date ? v.toISOString() : v));
}

function compareStrings(x, y) {
  return x < y ? -1 : x > y ? 1 : 0;
}

// SEQUENCE then DTSTAMP decide (RFC 5546 §2.1.5); the ids and the content only break exact
// ties, so that the agenda never depends on the order in which messages were opened.
function compareRank(m, n) {
  const a = m.appointment;
  const b = n.appointment;
  return (
    a.sequence - b.sequence ||
    a.dtstamp.getTime() - b.dtstamp.getTime() ||
    compareStrings(m.messageId, n.messageId) ||
    compareStrings(m.envelopeId, n.envelopeId) ||
    compareStrings(m.text, n.text)
  );
}

function atOrAbove(a, b) {
  return a.sequence > b.sequence || (a.sequence === b.sequence && a.dtstamp.getTime() >= b.dtstamp.getTime());
}

function cancels(cancel, current, owner) {
  if (!atOrAbove(cancel, current)) return false; // overtaken by a later REQUEST
  // A CANCEL naming attendees only removes those (RFC 5546 §3.2.5).
  const named = cancel.attendees.map((a) => a.address);
  return named.length === 0 || owner === cancel.organizer.address || named.includes(owner);
}

function refusal(m, code, reason) {
  return { code, reason, uid: m.appointment?.uid ?? "", envelopeId: m.envelopeId, messageId: m.messageId };
}

function checkRequest(m, owner) {
  const a = m.appointment;
  if (m.sender !== a.organizer.address) {
    return refusal(m, "appointment-not-organizer", `${m.sender} is not the organizer ${a.organizer.address}`);
  }
  if (owner !== a.organizer.address && !a.attendees.some((att) => att.address === owner)) {
    return refusal(m, "appointment-not-for-owner", `${owner} is not invited to ${a.uid}`);
  }
  return null;
}

function checkFollowUp(m, invited) {
  const a = m.appointment;
  if (a.method === "CANCEL") {
    if (m.sender !== a.organizer.address) {
      return refusal(m, "appointment-not-organizer", `${m.sender} cannot cancel for ${a.organizer.address}`);
    }
  } else if (
    !a.attendees.some((att) => att.address === m.sender) ||
    (a.method === "REPLY" && a.attendees[0].address !== m.sender)
  ) {
    return refusal(m, "appointment-sender-mismatch", `${m.sender} answers for another attendee`);
  }
  if (invited === null) {
    return refusal(m, "unknown-appointment", `no invitation ${a.uid} from ${a.organizer.address} is known`);
  }
  if (a.method !== "CANCEL" && !invited.has(m.sender)) {
    return refusal(m, "appointment-not-attendee", `${m.sender} was not invited to ${a.uid}`);
  }
  return null;
}

function entryOf(owner, currentMessage, cancelList, answers) {
  const current = currentMessage.appointment;
  const latest = new Map();
  for (const m of answers) {
    const a = m.appointment;
    if (a.sequence < current.sequence) continue; // answers an older version
    // The organizer sent a REQUEST after this COUNTER: that is how a counter is answered.
    if (a.method === "COUNTER" && atOrAbove(current, a)) continue;
    const previous = latest.get(m.sender);
    if (!previous || compareRank(m, previous) > 0) latest.set(m.sender, m);
  }
  const attendees = current.attendees.map((att) => {
    const answer = latest.get(att.address);
    return answer && answer.appointment.method === "REPLY"
      ? { ...att, partstat: answer.appointment.attendees[0].partstat }
      : { ...att };
  });
  const counters = [...latest.values()].filter((m) => m.appointment.method === "COUNTER").sort(compareRank);
  let status;
  let counter = null;
  if (current.status === "CANCELLED" || cancelList.some((c) => cancels(c, current, owner))) {
    status = "cancelled";
  } else if (owner === current.organizer.address) {
    const others = attendees.filter((att) => att.address !== owner).map((att) => att.partstat);
    if (counters.length) {
      status = "countered";
      counter = counters[counters.length - 1].appointment;
    } else if (others.length && others.every((p) => p === "ACCEPTED")) {
      status = "accepted";
    } else if (others.length && others.every((p) => p === "DECLINED")) {
      status = "declined";
    } else {
      status = "proposed";
    }
  } else {
    const mine = latest.get(owner);
    if (mine && mine.appointment.method === "COUNTER") {
      status = "countered";
      counter = mine.appointment;
    } else {
      status = OWN_STATUS[attendees.find((att) => att.address === owner).partstat];
    }
  }
  return {
    uid: current.uid,
    organizer: current.organizer.address,
    organizerName: current.organizer.name,
    status,
    sequence: current.sequence,
    start: current.start,
    end: current.end,
    tzid: current.tzid,
    summary: current.summary,
    location: current.location,
    description: current.description,
    // Python's start - reminder, on the wall clock: "the day before" stays the same hour.
    reminderAt: current.reminderMinutes === null ? null : addWall(current.start, current.tzid, -current.reminderMinutes * 60),
    request: current,
    envelopeId: currentMessage.envelopeId,
    messageId: currentMessage.messageId,
    thread: currentMessage.thread,
    attendees,
    counter,
  };
}

function validAppointment(a) {
  return (
    a !== null && typeof a === "object" && METHODS.includes(a.method) && typeof a.uid === "string" &&
    a.dtstamp instanceof Date && a.organizer && typeof a.organizer.address === "string" &&
    Array.isArray(a.attendees) && (a.method !== "REQUEST" || a.start instanceof Date)
  );
}

/**
 * The owner's agenda from the appointment messages of the mailbox, in any order.
 *
 * `items`: [{sender, appointment, envelopeId, messageId, thread}], `sender` being the
 * envelope's verified sender (never the From header) and `appointment` a parseCalendar
 * result. Returns {entries, refused}: entries by start time, refused messages with the
 * server's codes. Never throws on a bad message: one bad message cannot hide an agenda.
 */
export function deriveAgenda(items, owner) {
  const me = normaliseAddress(owner);
  if (!me) throw new CalendarError(`${owner} is not an address`, "appointment-invalid-address");
  const refused = [];
  const requests = new Map();
  const followUps = [];
  const keyOf = (a) => `${a.organizer.address}\n${a.uid}`;
  for (const item of items || []) {
    const appointment = item?.appointment ?? null;
    const m = {
      sender: normaliseAddress(item?.sender) ?? String(item?.sender ?? "").trim().toLowerCase(),
      appointment,
      envelopeId: String(item?.envelopeId ?? ""),
      messageId: String(item?.messageId ?? ""),
      thread: item?.thread ?? null,
      text: "",
    };
    if (!validAppointment(appointment)) {
      refused.push(refusal(m, item?.error?.code ?? "ical-malformed", "the message carries no readable appointment"));
      continue;
    }
    m.text = stableText(appointment);
    if (appointment.method === "REQUEST") {
      const problem = checkRequest(m, me);
      if (problem) {
        refused.push(problem);
      } else {
        const key = keyOf(appointment);
        if (!requests.has(key)) requests.set(key, []);
        requests.get(key).push(m);
      }
    } else {
      followUps.push(m);
    }
  }
  const current = new Map();
  for (const [key, versions] of requests) {
    current.set(key, versions.reduce((best, m) => (compareRank(m, best) > 0 ? m : best)));
  }
  const cancelsOf = new Map();
  const answersOf = new Map();
  for (const m of followUps) {
    const key = keyOf(m.appointment);
    const request = current.get(key);
    const invited = request ? new Set(request.appointment.attendees.map((a) => a.address)) : null;
    const problem = checkFollowUp(m, invited);
    if (problem) {
      refused.push(problem);
      continue;
    }
    const bucket = m.appointment.method === "CANCEL" ? cancelsOf : answersOf;
    if (!bucket.has(key)) bucket.set(key, []);
    bucket.get(key).push(m.appointment.method === "CANCEL" ? m.appointment : m);
  }
  const entries = [...current].map(([key, m]) => entryOf(me, m, cancelsOf.get(key) ?? [], answersOf.get(key) ?? []));
  entries.sort(
    (x, y) => x.start.getTime() - y.start.getTime() || compareStrings(x.uid, y.uid) || compareStrings(x.organizer, y.organizer),
  );
  refused.sort((x, y) => compareStrings(x.uid, y.uid) || compareStrings(x.envelopeId, y.envelopeId) || compareStrings(x.code, y.code));
  return { entries, refused };
}

// -- writing (RFC 5545 §3.1, RFC 5546 §3.2.3) ----------------------------------------------

function icalTime(date) {
  const iso = new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString(); // 2026-12-01T09:30:00.000Z
  if (!/^\d{4}-/.test(iso)) throw new CalendarError("a date outside years 0000-9999");
  return iso.slice(0, 19).replace(/[-:]/g, "") + "Z";
}

/** TEXT escaped (§3.3.11); controls other than line feed and tab are dropped. */
export function escapeText(value) {
  return String(value ?? "")
    .replace(/\r\n?/g, "\n")
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "")
    .replace(/[\\;,]/g, "\\$&")
    .replace(/\n/g, "\\n");
}

function paramValue(value) {
  // A quoted param-value holds no DQUOTE and no control (§3.1); Python refuses a backslash.
  return `"${cleanName(value)}"`;
}

/** A content line folded at 75 octets, never inside a UTF-8 sequence (§3.1). */
export function foldLine(line) {
  const out = [];
  let current = "";
  let octets = 0;
  for (const ch of line) {
    const size = byteLength(ch);
    if (octets + size > 75) {
      out.push(current);
      current = " ";
      octets = 1;
    }
    current += ch;
    octets += size;
  }
  out.push(current);
  return out.join("\r\n");
}

function calendarText(lines) {
  return lines.map(foldLine).join("\r\n") + "\r\n";
}

function attendeeOf(request, owner) {
  const me = normaliseAddress(owner);
  const found = me && request.attendees.find((a) => a.address === me);
  if (!found) throw new CalendarError(`${owner} is not an attendee of ${request.uid}`, "appointment-not-attendee");
  return found;
}

function checkAnswer(request, partstat) {
  if (!request || request.method !== "REQUEST") throw new CalendarError("only a REQUEST is answered", "appointment-unknown-method");
  const answer = String(partstat ?? "").toUpperCase();
  if (!ANSWERS.includes(answer)) throw new CalendarError(`${partstat} is not an answer`, "appointment-invalid-partstat");
  return answer;
}

/**
 * The owner's REPLY to a REQUEST (a parseCalendar result), as iCalendar text: the event
 * with only the owner in it, at the request's SEQUENCE (RFC 5546 §3.2.3), times in UTC.
 */
export function buildReply(request, owner, ownerName, partstat, now = new Date()) {
  const answer = checkAnswer(request, partstat);
  const me = attendeeOf(request, owner);
  const name = cleanName(ownerName || me.name);
  const organizer = request.organizer;
  const lines = [
    "BEGIN:VCALENDAR",
    `PRODID:${PRODID}`,
    "VERSION:2.0",
    "CALSCALE:GREGORIAN",
    "METHOD:REPLY",
    "BEGIN:VEVENT",
    `UID:${escapeText(request.uid)}`,
    `DTSTAMP:${icalTime(now)}`,
    `SEQUENCE:${request.sequence}`,
  ];
  if (request.start) lines.push(`DTSTART:${icalTime(request.start)}`);
  if (request.end) lines.push(`DTEND:${icalTime(request.end)}`);
  if (request.summary) lines.push(`SUMMARY:${escapeText(request.summary)}`);
  if (request.location) lines.push(`LOCATION:${escapeText(request.location)}`);
  lines.push(
    `ORGANIZER${organizer.name ? `;CN=${paramValue(organizer.name)}` : ""}:mailto:${organizer.address}`,
    `ATTENDEE${name ? `;CN=${paramValue(name)}` : ""};ROLE=REQ-PARTICIPANT;PARTSTAT=${answer}:mailto:${me.address}`,
    "END:VEVENT",
    "END:VCALENDAR",
  );
  return calendarText(lines);
}

/** Minutes before the start at which an exported appointment reminds, when the professional
 * asked for no reminder: the day before, the reminder patients are used to. */
export const DEFAULT_REMINDER_MINUTES = 24 * 60;

function trigger(minutes) {
  // Whole days as days (§3.3.6: nominal), so "the day before" keeps its hour across a DST change.
  return minutes % 1440 === 0 ? `-P${minutes / 1440}D` : `-PT${Math.round(minutes)}M`;
}

/**
 * An appointment as a calendar file for the patient's own calendar (RFC 5545; METHOD
 * PUBLISH, RFC 5546 §3.2.1): imported on a phone or a computer, the VALARM makes that device
 * remind the patient. The server never sees the appointment, so it cannot; neither does this
 * file leave the browser. The professional's reminder when they set one, else the day before.
 */
export function exportEvent(entry, lang = "fr", now = new Date()) {
  const w = WORDS[lang] ?? WORDS.fr;
  const request = entry.request;
  if (!request?.start) throw new CalendarError("an appointment without a start", "appointment-invalid");
  const minutes = request.reminderMinutes ?? DEFAULT_REMINDER_MINUTES;
  const organizer = request.organizer;
  const title = request.summary || w.title;
  const lines = [
    "BEGIN:VCALENDAR",
    `PRODID:${PRODID}`,
    "VERSION:2.0",
    "CALSCALE:GREGORIAN",
    "METHOD:PUBLISH",
    "BEGIN:VEVENT",
    `UID:${escapeText(request.uid)}`,
    `DTSTAMP:${icalTime(now)}`,
    `SEQUENCE:${request.sequence}`,
    `DTSTART:${icalTime(request.start)}`,
  ];
  if (request.end) lines.push(`DTEND:${icalTime(request.end)}`);
  lines.push(`SUMMARY:${escapeText(title)}`);
  if (request.location) lines.push(`LOCATION:${escapeText(request.location)}`);
  if (request.description) lines.push(`DESCRIPTION:${escapeText(request.description)}`);
  lines.push(
    `STATUS:${entry.status === "accepted" ? "CONFIRMED" : "TENTATIVE"}`,
    `ORGANIZER${organizer.name ? `;CN=${paramValue(organizer.name)}` : ""}:mailto:${organizer.address}`,
    "BEGIN:VALARM",
    "ACTION:DISPLAY",
    `TRIGGER:${trigger(minutes)}`,
    `DESCRIPTION:${escapeText(`${w.reminder}${w.colon}${title}`)}`,
    "END:VALARM",
    "END:VEVENT",
    "END:VCALENDAR",
  );
  return calendarText(lines);
}

const WORDS = {
  fr: {
    subject: { ACCEPTED: "Accepté", DECLINED: "Refusé", TENTATIVE: "Provisoire" },
    lead: { ACCEPTED: "Rendez-vous accepté", DECLINED: "Rendez-vous refusé", TENTATIVE: "Rendez-vous accepté provisoirement" },
    colon: " : ", on: "le", at: "à", where: "Lieu", by: "Réponse de", title: "Rendez-vous", reminder: "Rappel", locale: "fr-FR",
  },
  en: {
    subject: { ACCEPTED: "Accepted", DECLINED: "Declined", TENTATIVE: "Tentative" },
    lead: { ACCEPTED: "Appointment accepted", DECLINED: "Appointment declined", TENTATIVE: "Appointment tentatively accepted" },
    colon: ": ", on: "on", at: "at", where: "Where", by: "Answer from", title: "Appointment", reminder: "Reminder", locale: "en-GB",
  },
};

/** "mardi 1 décembre 2026 à 09:30 (Europe/Paris)", in the appointment's own zone. */
export function formatWhen(date, tzid, lang = "fr") {
  const w = WORDS[lang] ?? WORDS.fr;
  const zone = resolveTzid(tzid) ?? "UTC";
  // Assembled from parts: whole-date formats differ between ICU versions ("Tuesday, 1" or
  // "Tuesday 1"), and a test or a reader should see the same words everywhere.
  const parts = {};
  const options = { timeZone: zone, weekday: "long", day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  for (const p of new Intl.DateTimeFormat(w.locale, options).formatToParts(date)) parts[p.type] = p.value;
  return `${parts.weekday} ${parts.day} ${parts.month} ${parts.year} ${w.at} ${parts.hour}:${parts.minute} (${zone})`;
}

/** "Accepté : Consultation", as messaging.kinds.appointment.subject_for writes it. */
export function replySubject(request, partstat, lang = "fr") {
  const w = WORDS[lang] ?? WORDS.fr;
  const title = String(request.summary || "").split(/\s+/).filter(Boolean).join(" ") || w.title;
  return `${w.subject[checkAnswer(request, partstat)]}${w.colon}${title}`;
}

function replyText(request, owner, ownerName, answer, lang) {
  const w = WORDS[lang] ?? WORDS.fr;
  const title = request.summary || w.title;
  const lines = [`${w.lead[answer]}${w.colon}${title} ${w.on} ${formatWhen(request.start, request.tzid, lang)}`];
  if (request.location) lines.push(`${w.where}${w.colon}${request.location}`);
  const organizer = request.organizer.name ? `${request.organizer.name} <${request.organizer.address}>` : request.organizer.address;
  const me = ownerName ? `${ownerName} <${owner}>` : owner;
  lines.push("", `${w.by} ${me} ${lang === "en" ? "to" : "à"} ${organizer}.`);
  return lines.join("\n") + "\n";
}

function headerSafe(text) {
  return String(text ?? "").replace(/[\r\n]+/g, " ");
}

/** A display name as an RFC 5322 phrase: atoms as they are, other ASCII quoted, the rest
 * as encoded words (RFC 2047 §5(3)); "Martin, Jeanne" must not read as two addresses. */
function displayName(name) {
  const text = headerSafe(name).replace(/["\\]/g, "");
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*$/.test(text)) return text;
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(text)) return `"${text}"`;
  return encodeWords(text);
}

/**
 * The iMIP message (RFC 6047) of the owner's answer, to the organizer: RFC 5322 bytes,
 * `X-Pli-Type: appointment`, a multipart/alternative of a text/plain part (French unless
 * lang is "en") and the text/calendar; method=REPLY part, which is the one that counts.
 */
export function replyMessage({
  request,
  owner,
  ownerName = "",
  partstat,
  lang = "fr",
  inReplyTo = null,
  references = "",
  now = new Date(),
}) {
  const language = lang === "en" ? "en" : "fr";
  const answer = checkAnswer(request, partstat);
  const me = attendeeOf(request, owner);
  const name = cleanName(ownerName || me.name);
  const enc = new TextEncoder();
  const ics = buildReply(request, me.address, name, answer, now);
  const boundary = "pli-" + Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
  const lines = [
    `From: ${name ? displayName(name) + " " : ""}<${me.address}>`,
    `To: <${request.organizer.address}>`,
    `Subject: ${encodeWords(headerSafe(replySubject(request, answer, language)))}`,
    `Date: ${now.toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: ${newMessageId(me.address.split("@")[1])}`,
    "MIME-Version: 1.0",
    "X-Pli-Type: appointment",
    `Content-Language: ${language}`,
  ];
  const parent = headerSafe(inReplyTo ?? "").trim();
  if (parent) lines.push(`In-Reply-To: ${parent}`);
  const chain = headerSafe(`${references ?? ""} ${parent}`).trim().split(/\s+/).filter(Boolean).join(" ");
  if (chain) lines.push(`References: ${chain}`);
  lines.push(
    `Content-Type: multipart/alternative; boundary="${boundary}"`,
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: base64",
    "",
    b64lines(enc.encode(replyText(request, me.address, name, answer, language).replace(/\n/g, "\r\n"))),
    `--${boundary}`,
    "Content-Type: text/calendar; method=REPLY; charset=utf-8",
    "Content-Transfer-Encoding: base64",
    "",
    b64lines(enc.encode(ics)),
    `--${boundary}--`,
    "",
  );
  return enc.encode(lines.join("\r\n"));
}
