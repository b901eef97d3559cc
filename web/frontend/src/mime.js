// The messages inside envelopes: RFC 5322 with MIME (RFC 2045–2047, RFC 2183, RFC 2231).
//
// parseMessage is a tolerant reader of what Pli, mail clients and gateways produce (nested
// multiparts, base64, quoted-printable, encoded words); it never throws on malformed
// input, it shows less. buildMessage writes what the webmail sends: a text/plain body
// (base64, UTF-8) and attachments in a multipart/mixed, marked X-Pli-Type: note.
// parseMessage also hands over the text/calendar parts (RFC 6047 iMIP) for calendar.js.

const decoder = (charset) => {
  try {
    return new TextDecoder(charset || "utf-8");
  } catch {
    return new TextDecoder("utf-8");
  }
};

function latin1(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

function bytesOfLatin1(text) {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

function base64Bytes(text) {
  let clean = text.replace(/[^A-Za-z0-9+/]/g, "");
  // Padding was dropped with the line breaks; a lone trailing symbol carries no byte.
  if (clean.length % 4 === 1) clean = clean.slice(0, -1);
  clean += "=".repeat((4 - (clean.length % 4)) % 4);
  try {
    return bytesOfLatin1(atob(clean));
  } catch {
    return new Uint8Array();
  }
}

function qpBytes(text, header = false) {
  const src = header ? text.replace(/_/g, " ") : text.replace(/=\r?\n/g, "");
  const out = [];
  for (let i = 0; i < src.length; i++) {
    const ch = src[i];
    if (ch === "=" && /^[0-9A-Fa-f]{2}$/.test(src.slice(i + 1, i + 3))) {
      out.push(parseInt(src.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(src.charCodeAt(i) & 0xff);
    }
  }
  return new Uint8Array(out);
}

/** RFC 2047 encoded words in a header value (the raw value is latin1 of the bytes). */
export function decodeWords(value) {
  const text = decoder("utf-8").decode(bytesOfLatin1(value));
  return text
    .replace(/\?=\s+=\?/g, "?==?")
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_m, charset, enc, data) => {
      const bytes = enc.toUpperCase() === "B" ? base64Bytes(data) : qpBytes(data, true);
      return decoder(charset.split("*")[0]).decode(bytes);
    });
}

function splitHead(bytes) {
  const text = latin1(bytes);
  let at = text.search(/\r?\n\r?\n/);
  if (at < 0) return { head: text, body: new Uint8Array() };
  const sep = text.slice(at).match(/^\r?\n\r?\n/)[0].length;
  return { head: text.slice(0, at), body: bytes.subarray(at + sep) };
}

function parseHeaders(head) {
  const headers = new Map();
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}

function params(value) {
  const [type, ...rest] = (value || "").split(";");
  const out = { value: type.trim().toLowerCase() };
  for (const part of rest) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    let name = part.slice(0, eq).trim().toLowerCase();
    let v = part.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
    if (name.endsWith("*")) {
      // RFC 2231: charset'lang'percent-encoded
      name = name.slice(0, -1);
      const m = v.match(/^([^']*)'[^']*'(.*)$/);
      if (m) {
        try {
          v = decoder(m[1]).decode(bytesOfLatin1(unescape(m[2])));
        } catch {
          v = m[2];
        }
      }
    } else {
      v = decodeWords(v);
    }
    out[name] = v;
  }
  return out;
}

function decodeBody(body, encoding) {
  const enc = (encoding || "").toLowerCase();
  if (enc === "base64") return base64Bytes(latin1(body));
  if (enc === "quoted-printable") return qpBytes(latin1(body));
  return body;
}

function walk(bytes, out, depth = 0) {
  const { head, body } = splitHead(bytes);
  const headers = parseHeaders(head);
  const type = params(headers.get("content-type") || "text/plain");
  const disposition = params(headers.get("content-disposition") || "");
  if (type.value.startsWith("multipart/") && type.boundary && depth < 20) {
    const text = latin1(body);
    const delimiter = "--" + type.boundary;
    const pieces = text.split(new RegExp("(?:^|\\r?\\n)" + delimiter.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    for (const piece of pieces.slice(1)) {
      if (piece.startsWith("--")) break;
      walk(bytesOfLatin1(piece.replace(/^[ \t]*\r?\n/, "")), out, depth + 1);
    }
    return headers;
  }
  const data = decodeBody(body, headers.get("content-transfer-encoding"));
  const filename = disposition.filename || type.name;
  if (type.value === "text/calendar") {
    // Also kept among the attachments below, as before: a reader without calendar.js
    // still offers the .ics file.
    out.calendars.push({ method: type.method ? type.method.trim().toUpperCase() : null, text: decoder(type.charset).decode(data) });
  }
  if (!filename && disposition.value !== "attachment" && type.value === "text/plain" && out.body === null) {
    out.body = decoder(type.charset).decode(data).replace(/\r\n/g, "\n");
  } else if (!filename && type.value === "text/html" && out.html === null && disposition.value !== "attachment") {
    out.html = decoder(type.charset).decode(data);
  } else {
    out.attachments.push({ filename: filename || "piece-jointe", type: type.value, data });
  }
  return headers;
}

/** {from, to, subject, date, messageId, references, kind, body, attachments:[{filename,type,data}],
 *  headers: {lower-cased name: raw value of its first occurrence},
 *  calendars: [{method (upper case, or null without a method parameter), text}]} */
export function parseMessage(bytes) {
  const out = { body: null, html: null, attachments: [], calendars: [] };
  const headers = walk(bytes, out);
  let body = out.body;
  if (body === null && out.html !== null) {
    // Text only: an HTML body is shown as its text, never as HTML.
    body = new DOMParser().parseFromString(out.html, "text/html").body.textContent || "";
  }
  return {
    from: decodeWords(headers.get("from") || ""),
    to: decodeWords(headers.get("to") || ""),
    subject: decodeWords(headers.get("subject") || ""),
    date: headers.get("date") || "",
    messageId: headers.get("message-id") || "",
    references: headers.get("references") || "",
    kind: (headers.get("x-pli-type") || "note").toLowerCase(),
    body: body || "",
    attachments: out.attachments,
    headers: Object.fromEntries(headers),
    calendars: out.calendars,
  };
}

// -- writing --------------------------------------------------------------------------------

export function b64lines(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8190) s += btoa(latin1(bytes.subarray(i, i + 8190)));
  return s.replace(/.{76}/g, "$&\r\n");
}

export function encodeWord(text) {
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  return "=?utf-8?b?" + btoa(latin1(new TextEncoder().encode(text))) + "?=";
}

/** Like encodeWord, but as several encoded words of at most 75 characters (RFC 2047 §2),
 * cut between characters and folded: a long accented subject stays a valid header. */
export function encodeWords(text) {
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const enc = new TextEncoder();
  const words = [];
  let chunk = [];
  let size = 0;
  for (const ch of text) {
    const bytes = enc.encode(ch);
    // 45 octets are 60 base64 characters, 72 with "=?utf-8?b?" and "?=".
    if (size + bytes.length > 45) {
      words.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(...bytes);
    size += bytes.length;
  }
  words.push(chunk);
  return words.map((b) => "=?utf-8?b?" + btoa(latin1(new Uint8Array(b))) + "?=").join("\r\n ");
}

function clean(text) {
  return String(text).replace(/[\r\n]+/g, " ");
}

export function newMessageId(domain) {
  const random = crypto.getRandomValues(new Uint8Array(16));
  return `<${Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("")}@${domain}>`;
}

/** RFC 5322 bytes of a note from the webmail. */
export function buildMessage({ from, fromName, to, subject, body, attachments = [], inReplyTo = null, references = "", date = new Date() }) {
  const enc = new TextEncoder();
  const domain = from.split("@")[1];
  const lines = [
    `From: ${fromName ? encodeWord(clean(fromName)) + " " : ""}<${clean(from)}>`,
    `To: ${to.map(clean).join(", ")}`,
    `Subject: ${encodeWord(clean(subject))}`,
    `Date: ${date.toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: ${newMessageId(domain)}`,
    "MIME-Version: 1.0",
    "X-Pli-Type: note",
  ];
  if (inReplyTo) {
    lines.push(`In-Reply-To: ${clean(inReplyTo)}`);
    lines.push(`References: ${clean((references + " " + inReplyTo).trim())}`);
  }
  const text = [
    'Content-Type: text/plain; charset="utf-8"',
    "Content-Transfer-Encoding: base64",
    "",
    b64lines(enc.encode(body.replace(/\r?\n/g, "\r\n"))),
  ];
  if (attachments.length === 0) return enc.encode([...lines, ...text].join("\r\n") + "\r\n");
  const boundary = "pli-" + Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
  const parts = [...lines, `Content-Type: multipart/mixed; boundary="${boundary}"`, "", `--${boundary}`, ...text];
  for (const a of attachments) {
    const name = clean(a.filename).replace(/["\\]/g, "_");
    parts.push(
      `--${boundary}`,
      `Content-Type: ${a.type || "application/octet-stream"}`,
      "Content-Transfer-Encoding: base64",
      `Content-Disposition: attachment; filename="${encodeWord(name)}"`,
      "",
      b64lines(a.data),
    );
  }
  parts.push(`--${boundary}--`, "");
  return enc.encode(parts.join("\r\n"));
}
