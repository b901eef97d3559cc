// The webmail's screens. Keys live in this page's memory only (never in storage): a reload
// asks for the passphrase again. Every text a patient reads comes from i18n.js; every
// element is built with the DOM API (no innerHTML), so nothing from a message can run.

import * as pc from "./envelope.js";
import { KeyProofError, verifiedKeys } from "./directory.js";
import { LANGUAGES, language, setLanguage, t } from "./i18n.js";
import { buildMessage, parseMessage } from "./mime.js";
import * as calendar from "./calendar.js";
import * as consent from "./consent.js";
import { patientScreens } from "./patient.js";

// The crypto module, for the browser tests (test vectors, sealing for Python).
globalThis.pliCrypto = pc;
globalThis.pliDirectory = { verifiedKeys };
globalThis.pliCalendar = calendar;
globalThis.pliConsent = consent;

const state = {
  session: null, // GET /session
  keys: null, // opened bundle
  bundleKey: null,
  pending: null, // {address, kind, ticket, sentTo}
  opened: new Map(), // envelope id -> {record, message, status}
  events: null,
  flash: null,
};

// -- DOM helpers ----------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let fieldCounter = 0;
function field(label, attrs) {
  const id = attrs.id || `f${++fieldCounter}`;
  const input = attrs.tag === "textarea" ? h("textarea", { ...attrs, id, tag: null }) : h("input", { ...attrs, id, tag: null });
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

function status(text, kind = "info") {
  return h("p", { class: `status ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

function render(title, ...content) {
  const main = h("main", { id: "main", tabindex: "-1" }, h("h1", {}, title), ...content);
  const app = document.getElementById("app");
  const header = state.keys ? navigation() : h("header", { class: "top" }, h("p", { class: "brand" }, "Pli"), languageSwitch());
  app.replaceChildren(header, main);
  document.title = `${title} — Pli`;
  main.focus();
  return main;
}

function languageSwitch() {
  const select = h(
    "select",
    { id: "lang-switch", onchange: (e) => { setLanguage(e.target.value); route(); } },
    Object.entries(LANGUAGES).map(([code, name]) => h("option", { value: code, selected: code === language() }, name)),
  );
  return h("div", { class: "lang" }, h("label", { for: "lang-switch" }, t("language")), select);
}

function navigation() {
  const link = (href, text) =>
    h("a", { href, "aria-current": location.hash.startsWith(href) ? "page" : null }, text);
  return h(
    "header",
    { class: "top" },
    h("p", { class: "brand" }, "Pli"),
    h(
      "nav",
      { "aria-label": t("mainNav") },
      h("ul", {}, h("li", {}, link("#/inbox", t("inbox"))), h("li", {}, link("#/sent", t("sent"))), h("li", {}, link("#/compose", t("compose"))), ...patientLinks(link), h("li", {}, link("#/settings", t("settings")))),
    ),
    h("p", { class: "who" }, state.session.display_name),
    h("button", { type: "button", class: "link", onclick: signOut }, t("signOut")),
  );
}

// The patient's own screens (record, consents, blocks, history): patients only.
function patientLinks(link) {
  if (state.session?.kind !== "PAT") return [];
  return [
    h("li", {}, link("#/documents", t("documents"))),
    h("li", {}, link("#/agenda", t("agenda"))),
    h("li", {}, link("#/consents", t("consents"))),
    h("li", {}, link("#/blocked", t("blocked"))),
    h("li", {}, link("#/history", t("history"))),
    h("li", {}, link("#/services", t("services"))),
  ];
}

// -- HTTP -----------------------------------------------------------------------------------

class Problem extends Error {
  constructor(status, body, headers) {
    super(body?.detail || body?.title || String(status));
    this.status = status;
    this.body = body;
    this.rule = headers.get("Pli-Rule");
  }
}

async function api(method, path, body = undefined, { raw = false } = {}) {
  const headers = { Accept: raw ? "application/octet-stream" : "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.session?.csrf && method !== "GET") headers["X-CSRF-Token"] = state.session.csrf;
  const response = await fetch(`/webmail/api${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
    if (response.status === 401 && state.keys) {
      forget(t("sessionEnded"));
    }
    throw new Problem(response.status, problem, response.headers);
  }
  if (raw) return new Uint8Array(await response.arrayBuffer());
  return response.json();
}

// -- sign-in --------------------------------------------------------------------------------

function forget(message = null) {
  state.keys = null;
  state.bundleKey = null;
  state.session = null;
  state.opened.clear();
  if (state.events) state.events.close();
  state.events = null;
  state.flash = message;
  location.hash = "#/signin";
}

async function deriveFor(address, secret, kind) {
  const params = await api("POST", "/prelogin", { address, kind });
  return pc.deriveKeys(secret, pc.fromB64url(params.salt, 16), { opslimit: params.opslimit, memlimit: params.memlimit }, pc.LIMITS.INTERACTIVE);
}

function signInScreen(kind = "passphrase") {
  const recovering = kind === "recovery";
  const out = h("div", { "aria-live": "polite" });
  if (state.flash) out.append(status(state.flash, "error"));
  state.flash = null;
  const form = h(
    "form",
    { class: "card", novalidate: true },
    h("p", {}, recovering ? t("recoveryInfo") : t("signInIntro")),
    field(t("address"), { name: "address", type: "email", autocomplete: "username", required: true }),
    recovering
      ? field(t("recoveryKey"), { name: "secret", type: "text", autocomplete: "off", spellcheck: "false", required: true })
      : field(t("passphrase"), { name: "secret", type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, recovering ? t("recover") : t("signIn")),
    recovering ? h("p", {}, h("a", { href: "#/signin" }, t("back"))) : h("p", {}, h("a", { href: "#/recover" }, t("forgot"))),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const address = form.elements.address.value.trim();
    let secret = form.elements.secret.value;
    out.replaceChildren(status(t("deriving")));
    try {
      if (recovering) secret = pc.normalizeRecoveryKey(secret);
    } catch {
      out.replaceChildren(status(t("badRecoveryKey"), "error"));
      return;
    }
    try {
      await new Promise((resolve) => setTimeout(resolve, 30)); // let the status paint
      const derived = await deriveFor(address, secret, kind);
      const ticket = await api("POST", "/login", { address, kind, auth_key: pc.b64url(derived.authKey) });
      state.bundleKey = derived.bundleKey;
      state.pending = { address, kind, ticket: ticket.ticket, sentTo: ticket.sent_to };
      location.hash = "#/code";
    } catch (error) {
      const text = error.status === 429 ? t("tooMany") : error.status === 401 ? t("wrongCredentials") : error.body?.detail || t("error");
      out.replaceChildren(status(text, "error"));
    }
  });
  render(recovering ? t("recoverTitle") : t("signInTitle"), out, form);
}

function codeScreen() {
  if (!state.pending) {
    location.hash = "#/signin";
    return;
  }
  const out = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "card" },
    h("p", {}, t("codeSent", { to: state.pending.sentTo })),
    field(t("code"), { name: "code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6", required: true }),
    h("button", { type: "submit" }, t("verify")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/login/code", { ticket: state.pending.ticket, code: form.elements.code.value.trim() });
      const mustChange = state.pending.kind === "recovery";
      state.pending = null;
      await loadSession();
      location.hash = mustChange ? "#/settings" : "#/inbox";
      if (mustChange) state.flash = t("mustSetPassphrase");
    } catch (error) {
      const text = error.status === 429 ? t("tooMany") : error.status === 401 ? `${t("wrongCode")} ${error.body?.detail ?? ""}` : t("error");
      out.replaceChildren(status(text, "error"));
    }
  });
  render(t("codeTitle"), out, form);
}

async function loadSession() {
  const session = await api("GET", "/session");
  state.session = session;
  setLanguage(session.language);
  if (state.bundleKey) {
    const keys = pc.openBundle(pc.fromB64url(session.bundle), state.bundleKey);
    // The bundle must hold the keys the directory publishes for this address.
    if (pc.b64url(keys.encryptionPublic) !== session.encryption_key || pc.b64url(keys.signingPublic) !== session.signing_key) {
      throw new Error("the key bundle does not match the account's published keys");
    }
    state.keys = keys;
    listen();
    if (session.kind === "PAT") {
      // Documents that arrived while a grant is active are shared when the keys are here.
      patient.syncShares().catch(() => {});
    }
  }
}

function unlockScreen() {
  const out = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "card" },
    h("p", {}, t("unlockIntro")),
    h("p", {}, h("strong", {}, state.session.address)),
    field(t("passphrase"), { name: "secret", type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, t("unlock")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren(status(t("deriving")));
    try {
      const derived = await deriveFor(state.session.address, form.elements.secret.value, state.session.credential);
      state.bundleKey = derived.bundleKey;
      await loadSession();
      location.hash = "#/inbox";
      route();
    } catch {
      state.bundleKey = null;
      out.replaceChildren(status(t("wrongCredentials"), "error"));
    }
  });
  render(t("unlockTitle"), out, form);
}

async function signOut() {
  try {
    await api("POST", "/logout", {});
  } finally {
    forget();
  }
}

// -- live updates (server-sent events) ------------------------------------------------------

function listen() {
  if (state.events) return;
  state.events = new EventSource("/webmail/api/events");
  state.events.addEventListener("mailbox", (event) => {
    // Only new mail in the inbox is news; the Sent copy of one's own message is not.
    if (event.data.startsWith("exists INBOX ")) {
      state.flash = t("newMail");
      const hash = location.hash || "#/inbox";
      if (hash.startsWith("#/inbox") || hash.startsWith("#/sent")) route();
      else announce(t("newMail"));
    }
  });
}

function announce(text) {
  let live = document.getElementById("live");
  if (!live) {
    live = h("div", { id: "live", class: "status info", role: "status" });
    document.getElementById("main")?.prepend(live);
  }
  live.textContent = text;
}

// -- reading --------------------------------------------------------------------------------

async function openMessage(id) {
  if (state.opened.has(id)) return state.opened.get(id);
  const record = await api("GET", `/messages/${encodeURIComponent(id)}`);
  const envelope = await api("GET", `/messages/${encodeURIComponent(id)}/envelope`, undefined, { raw: true });
  let result;
  try {
    const opened = pc.openEnvelope(envelope, pc.fromB64url(record.slot), state.keys);
    const message = parseMessage(opened.plaintext);
    result = { record, header: opened.header, message, signer: await signerStatus(opened.header) };
  } catch (error) {
    result = { record, error: String(error) };
  }
  state.opened.set(id, result);
  return result;
}

async function signerStatus(header) {
  if (header.prov === "gateway") {
    return header.sigkey === state.session.operator_key ? "operator" : "unknown";
  }
  try {
    const keys = await lookupKeys(header.from);
    return pc.b64url(keys.signingKey) === header.sigkey ? "verified" : "unknown";
  } catch {
    return "unknown";
  }
}

async function lookupKeys(address) {
  if (address.toLowerCase() === state.session.address.toLowerCase()) {
    return { address, encryptionKey: state.keys.encryptionPublic, signingKey: state.keys.signingPublic };
  }
  const response = await fetch(`/v1/directory/mailboxes/${encodeURIComponent(address)}`, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new KeyProofError("no directory entry");
  if (!state.session.log_key) throw new KeyProofError("no log key announced");
  return verifiedKeys(address, await response.json(), {
    id: state.session.log_id,
    key: pc.fromB64url(state.session.log_key, 32),
  });
}

function kindLabel(kind) {
  return t(`kind_${String(kind).replace(/-/g, "_")}`);
}

function when(iso) {
  return new Date(iso).toLocaleString(language() === "en" ? "en-GB" : "fr-FR", { dateStyle: "medium", timeStyle: "short" });
}

async function listScreen(folder, mine) {
  const main = render(folder === "INBOX" ? t("inbox") : t("sent"), status(t("loading")));
  const flash = state.flash;
  state.flash = null;
  let records;
  try {
    records = await api("GET", `/messages?folder=${encodeURIComponent(folder)}`);
  } catch {
    main.replaceChildren(main.firstChild, status(t("error"), "error"));
    return;
  }
  const items = [];
  for (const record of records.slice(0, 100)) {
    const opened = await openMessage(record.id);
    if (stale(mine)) return;
    const subject = opened.message?.subject || t("noSubject");
    items.push(
      h(
        "li",
        { class: record.seen ? "msg" : "msg unread" },
        h(
          "a",
          { href: `#/read/${record.id}` },
          h("span", { class: "from" }, folder === "INBOX" ? record.from : opened.header?.to?.join(", ") ?? ""),
          h("span", { class: "subject" }, subject),
          h("span", { class: "meta" }, `${kindLabel(record.kind)} · ${when(record.date)}${record.seen ? "" : ` · ${t("unread")}`}`),
        ),
      ),
    );
  }
  if (stale(mine)) return;
  main.replaceChildren(
    main.firstChild,
    flash ? status(flash) : "",
    items.length ? h("ul", { class: "messages" }, items) : h("p", {}, t("empty")),
  );
}

function provenanceText(opened) {
  if (opened.header.prov === "gateway") return t("provenanceGateway", { peer: opened.header.gw.peer || "?" });
  return t("provenanceE2E");
}

function signatureText(opened) {
  if (opened.signer === "verified") return [t("sigVerified", { who: opened.header.from }), "ok"];
  if (opened.signer === "operator") return [t("sigOperator"), "ok"];
  return [t("sigUnknown"), "warn"];
}

async function readScreen(id, mine) {
  const main = render(t("read"), status(t("loading")));
  let opened;
  try {
    opened = await openMessage(id);
  } catch {
    main.replaceChildren(main.firstChild, status(t("error"), "error"));
    return;
  }
  if (stale(mine)) return;
  if (opened.error) {
    main.replaceChildren(main.firstChild, status(t("openFailed"), "error"));
    return;
  }
  if (!opened.record.seen && opened.record.folder === "INBOX") {
    api("POST", `/messages/${encodeURIComponent(id)}/seen`, { seen: true }).catch(() => {});
    opened.record.seen = true;
  }
  const m = opened.message;
  const [sigText, sigKind] = signatureText(opened);
  const attachments = m.attachments.map((a) => {
    const url = URL.createObjectURL(new Blob([a.data], { type: a.type }));
    const preview = a.type === "application/pdf" ? h("iframe", { src: url, title: t("pdfPreview", { name: a.filename }), class: "pdf" }) : null;
    return h("li", {}, h("a", { href: url, download: a.filename }, `${t("download")} ${a.filename}`), preview);
  });
  main.replaceChildren(
    h("h1", {}, m.subject || t("noSubject")),
    h(
      "dl",
      { class: "headers" },
      h("dt", {}, t("from")),
      h("dd", {}, m.from || opened.header.from),
      h("dt", {}, t("to")),
      h("dd", {}, opened.header.to.join(", ")),
      h("dt", {}, t("date")),
      h("dd", {}, when(opened.record.date)),
    ),
    h("section", { class: "trust", "aria-label": "provenance" }, h("p", { class: "status info" }, provenanceText(opened)), h("p", { class: `status ${sigKind}` }, sigText)),
    h("div", { class: "body" }, m.body),
    attachments.length ? h("section", {}, h("h2", {}, t("attachments")), h("ul", { class: "attachments" }, attachments)) : "",
    h(
      "p",
      { class: "actions" },
      // A typed message is answered where its answer is made (signed, or an iTIP REPLY).
      opened.record.kind === "consent-request" && state.session.kind === "PAT" ? [h("a", { href: "#/consents", class: "button" }, t("answerConsent")), " "] : "",
      opened.record.kind === "appointment" && state.session.kind === "PAT" ? [h("a", { href: "#/agenda", class: "button" }, t("openAgenda")), " "] : "",
      h("a", { href: `#/reply/${id}`, class: "button" }, t("reply")),
      " ",
      h("a", { href: "#/inbox" }, t("back")),
    ),
  );
  main.focus();
}

// -- writing --------------------------------------------------------------------------------

function randomHex(bytes) {
  return pc.toHex(crypto.getRandomValues(new Uint8Array(bytes)));
}

function rfc3339(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function reasonOf(error) {
  const key = `rule_${(error.rule || "").replace(/-/g, "_")}`;
  const local = t(key);
  return local !== key ? local : error.body?.detail || t("error");
}

/**
 * Seal `plaintext` here, for `to` (its key checked against the key log) and for this
 * mailbox's Sent copy, then hand the envelope to the server (POST /send). Throws the
 * server's Problem when a rule refuses it.
 */
async function sealAndSend({ to, recipientKey = null, type, thread = null, plaintext }) {
  const key = recipientKey ?? (await lookupKeys(to)).encryptionKey;
  const sealed = pc.sealEnvelope(
    {
      id: randomHex(16),
      thread: thread ?? randomHex(16),
      type,
      from: state.session.address,
      to: [to],
      date: rfc3339(new Date()),
      prov: "e2e",
    },
    plaintext,
    state.keys,
    [key, state.keys.encryptionPublic],
  );
  await api("POST", "/send", {
    envelope: pc.b64url(sealed.envelope),
    slots: { [to]: pc.b64url(sealed.slots[0]) },
    sent_slot: pc.b64url(sealed.slots[1]),
  });
  return sealed.header;
}

async function composeScreen(replyTo, mine) {
  let original = null;
  if (replyTo) {
    original = await openMessage(replyTo);
    if (stale(mine)) return;
  }
  const out = h("div", { "aria-live": "polite" });
  const subject = original?.message ? (original.message.subject.startsWith("Re:") ? original.message.subject : `Re: ${original.message.subject}`) : "";
  const form = h(
    "form",
    { class: "card" },
    field(t("recipient"), { name: "to", type: "email", required: true, value: original?.header?.from ?? "", autocomplete: "off" }),
    field(t("subject"), { name: "subject", type: "text", value: subject }),
    field(t("body"), { name: "body", tag: "textarea", rows: "10", required: true }),
    field(t("attach"), { name: "files", type: "file", multiple: true }),
    h("button", { type: "submit" }, t("send")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren(status(t("sending")));
    const to = form.elements.to.value.trim();
    try {
      let recipient;
      try {
        recipient = await lookupKeys(to);
      } catch {
        out.replaceChildren(status(t("refused", { reason: t("noKey") }), "error"));
        return;
      }
      const files = await Promise.all(
        Array.from(form.elements.files.files).map(async (f) => ({ filename: f.name, type: f.type, data: new Uint8Array(await f.arrayBuffer()) })),
      );
      const plaintext = buildMessage({
        from: state.session.address,
        fromName: state.session.display_name,
        to: [to],
        subject: form.elements.subject.value,
        body: form.elements.body.value,
        attachments: files,
        inReplyTo: original?.message?.messageId || null,
        references: original?.message?.references || "",
      });
      await sealAndSend({ to, recipientKey: recipient.encryptionKey, type: "note", thread: original?.header?.thread, plaintext });
      state.flash = t("sentOk");
      location.hash = "#/sent";
    } catch (error) {
      out.replaceChildren(status(t("refused", { reason: reasonOf(error) }), "error"));
    }
  });
  render(replyTo ? t("replyTitle") : t("composeTitle"), out, form);
}

// -- settings -------------------------------------------------------------------------------

const APP_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

function newAppPassword() {
  const random = crypto.getRandomValues(new Uint8Array(16));
  const symbols = Array.from(random, (b) => APP_ALPHABET[b & 31]).join("");
  return symbols.match(/.{4}/g).join("-");
}

// A recovery key (docs/envelope.md §10.4): 32 random bytes, RFC 4648 base32 without
// padding, 13 groups of 4; this grouped form is the Argon2id secret.
function newRecoveryKey() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return pc.normalizeRecoveryKey(out);
}

async function settingsScreen(_mine) {
  const flash = state.flash;
  state.flash = null;
  const prefsOut = h("div", { "aria-live": "polite" });
  const prefs = h(
    "form",
    { class: "card" },
    h("h2", {}, t("language")),
    h(
      "div",
      { class: "field" },
      h("label", { for: "pref-lang" }, t("language")),
      h("select", { id: "pref-lang", name: "language" }, Object.entries(LANGUAGES).map(([code, name]) => h("option", { value: code, selected: code === language() }, name))),
    ),
    field(t("notifyEmail"), { name: "notify", type: "email", value: state.session.notify_email ?? "" }),
    // A phone only where the server has an SMS gateway; when set, codes go there by SMS.
    state.session.sms_codes
      ? field(t("notifyPhone"), { name: "phone", type: "tel", autocomplete: "tel", placeholder: "+33612345678", value: state.session.notify_phone ?? "" })
      : null,
    h("button", { type: "submit" }, t("save")),
    prefsOut,
  );
  prefs.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const phone = prefs.elements.phone?.value.replace(/[\s.]/g, "") || null;
      const saved = await api("PUT", "/preferences", { language: prefs.elements.language.value, notify_email: prefs.elements.notify.value.trim() || null, notify_phone: phone });
      state.session.language = saved.language;
      state.session.notify_email = saved.notify_email;
      state.session.notify_phone = saved.notify_phone;
      setLanguage(saved.language);
      state.flash = t("saved");
      route();
    } catch (error) {
      prefsOut.replaceChildren(status(reasonOf(error), "error"));
    }
  });

  const recovering = state.session.credential === "recovery";
  const pwOut = h("div", { "aria-live": "polite" });
  const pw = h(
    "form",
    { class: "card" },
    h("h2", {}, t("changePassphrase")),
    recovering ? null : field(t("currentPassphrase"), { name: "current", type: "password", autocomplete: "current-password", required: true }),
    field(t("newPassphrase"), { name: "next", type: "password", autocomplete: "new-password", required: true, minlength: "12" }),
    field(t("confirmPassphrase"), { name: "confirm", type: "password", autocomplete: "new-password", required: true }),
    h("button", { type: "submit" }, t("changePassphrase")),
    pwOut,
  );
  pw.addEventListener("submit", async (event) => {
    event.preventDefault();
    const next = pw.elements.next.value;
    if (next.length < 12) return pwOut.replaceChildren(status(t("tooShort"), "error"));
    if (next !== pw.elements.confirm.value) return pwOut.replaceChildren(status(t("mismatch"), "error"));
    pwOut.replaceChildren(status(t("deriving")));
    try {
      let current = null;
      if (!recovering) current = (await deriveFor(state.session.address, pw.elements.current.value, "passphrase")).authKey;
      const salt = pc.newSalt();
      const limits = pc.LIMITS.INTERACTIVE;
      const derived = pc.deriveKeys(next, salt, limits);
      const bundle = pc.sealBundle(state.keys, derived.bundleKey);
      await api("POST", "/passphrase", {
        current_auth_key: current ? pc.b64url(current) : null,
        salt: pc.b64url(salt),
        opslimit: limits.opslimit,
        memlimit: limits.memlimit,
        auth_key: pc.b64url(derived.authKey),
        bundle: pc.b64url(bundle),
      });
      state.bundleKey = derived.bundleKey;
      await loadSession();
      state.flash = t("passphraseChanged");
      route();
    } catch (error) {
      pwOut.replaceChildren(status(error.status === 401 ? t("wrongCredentials") : error.body?.detail || t("error"), "error"));
    }
  });

  const appOut = h("div", { "aria-live": "polite" });
  const appList = h("ul", { class: "apps" });
  const app = h(
    "form",
    { class: "card" },
    h("h2", {}, t("appPasswords")),
    appList,
    field(t("appPasswordLabel"), { name: "label", type: "text", required: true, maxlength: "64" }),
    h("button", { type: "submit" }, t("create")),
    appOut,
  );
  async function refreshApps() {
    const data = await api("GET", "/app-passwords");
    appList.replaceChildren(
      ...(data.items.length
        ? data.items.map((item) =>
            h(
              "li",
              {},
              `${item.label} — ${when(item.created_at)} `,
              h("button", { type: "button", class: "link", onclick: async () => { await api("DELETE", `/app-passwords/${item.id}`); await refreshApps(); } }, `${t("revoke")} ${item.label}`),
            ),
          )
        : [h("li", {}, t("none"))]),
    );
    return data;
  }
  app.addEventListener("submit", async (event) => {
    event.preventDefault();
    appOut.replaceChildren(status(t("deriving")));
    try {
      const params = await refreshApps();
      const password = newAppPassword();
      const derived = pc.deriveKeys(password, pc.fromB64url(params.salt, 16), params, pc.LIMITS.INTERACTIVE);
      await api("POST", "/app-passwords", { label: app.elements.label.value, auth_key: pc.b64url(derived.authKey), bundle: pc.b64url(pc.sealBundle(state.keys, derived.bundleKey)) });
      appOut.replaceChildren(status(t("appPasswordShown", { pw: password })));
      await refreshApps();
    } catch (error) {
      appOut.replaceChildren(status(error.body?.detail || t("error"), "error"));
    }
  });

  const rkOut = h("div", { "aria-live": "polite" });
  const rk = h(
    "form",
    { class: "card" },
    h("h2", {}, t("recoveryTitle")),
    h("p", {}, t("recoveryInfo")),
    recovering ? null : field(t("currentPassphrase"), { name: "current", type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, t("newRecoveryKey")),
    rkOut,
  );
  rk.addEventListener("submit", async (event) => {
    event.preventDefault();
    rkOut.replaceChildren(status(t("deriving")));
    try {
      let current = null;
      if (!recovering) current = (await deriveFor(state.session.address, rk.elements.current.value, "passphrase")).authKey;
      const recoveryKey = newRecoveryKey();
      const salt = pc.newSalt();
      const limits = pc.LIMITS.INTERACTIVE;
      const derived = pc.deriveKeys(recoveryKey, salt, limits);
      await api("POST", "/recovery-key", {
        current_auth_key: current ? pc.b64url(current) : null,
        salt: pc.b64url(salt),
        opslimit: limits.opslimit,
        memlimit: limits.memlimit,
        auth_key: pc.b64url(derived.authKey),
        bundle: pc.b64url(pc.sealBundle(state.keys, derived.bundleKey)),
      });
      rkOut.replaceChildren(status(t("recoveryKeyShown", { key: recoveryKey }), "warn"));
    } catch (error) {
      rkOut.replaceChildren(status(error.status === 401 ? t("wrongCredentials") : error.body?.detail || t("error"), "error"));
    }
  });

  render(t("settingsTitle"), flash ? status(flash, recovering ? "warn" : "info") : "", prefs, pw, app, rk);
  refreshApps().catch(() => {});
}

// -- routing --------------------------------------------------------------------------------

// Screens load asynchronously; a screen whose route is no longer the current one must not
// draw over the one that replaced it (a live update while writing, a quick click).
let routeCount = 0;

function stale(mine) {
  return mine !== routeCount;
}

const patient = patientScreens({
  h,
  field,
  status,
  render,
  api,
  t,
  when,
  stale,
  reasonOf,
  openMessage,
  lookupKeys,
  sealAndSend,
  kindLabel,
  address: () => state.session.address,
  displayName: () => state.session.display_name,
  keys: () => state.keys,
  forgetOpened: (id) => state.opened.delete(id),
});

async function route() {
  const mine = ++routeCount;
  delete document.body.dataset.screen;
  const hash = location.hash || "#/inbox";
  const [, screen, arg] = hash.match(/^#\/([a-z]+)\/?(.*)$/) || [null, "inbox", ""];
  let shown = screen;
  if (!state.keys) {
    if (screen === "code") codeScreen();
    else if (screen === "recover") signInScreen("recovery");
    else if (state.session && screen !== "signin") (shown = "unlock"), unlockScreen();
    else (shown = "signin"), signInScreen("passphrase");
  } else {
    try {
      if (screen === "read" && arg) await readScreen(decodeURIComponent(arg), mine);
      else if (screen === "reply" && arg) await composeScreen(decodeURIComponent(arg), mine);
      else if (screen === "compose") await composeScreen(null, mine);
      else if (screen === "sent") await listScreen("Sent", mine);
      else if (screen === "settings") await settingsScreen(mine);
      else if (screen === "documents" && state.session.kind === "PAT") await patient.documentsScreen(mine);
      else if (screen === "consents" && state.session.kind === "PAT") await patient.consentsScreen(mine);
      else if (screen === "agenda" && state.session.kind === "PAT") await patient.agendaScreen(mine);
      else if (screen === "services" && state.session.kind === "PAT") await patient.servicesScreen(mine);
      else if (screen === "blocked" && state.session.kind === "PAT") await patient.blockedScreen(mine);
      else if (screen === "history" && state.session.kind === "PAT") await patient.historyScreen(mine);
      else (shown = "inbox"), await listScreen("INBOX", mine);
    } catch (error) {
      if (!stale(mine)) render(t("error"), status(String(error.message || error), "error"));
    }
  }
  // For people with assistive technology and for the tests: which screen is complete.
  if (!stale(mine)) document.body.dataset.screen = shown;
}

async function start() {
  setLanguage(navigator.language?.startsWith("en") ? "en" : "fr");
  await pc.ready();
  try {
    await loadSession(); // a session cookie from before a reload: ask to unlock
  } catch {
    state.session = null;
  }
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "true";
}

start();
