// The patient's screens: my documents (record and masks), my agenda, consents, blocked
// professionals, access history, approved services. They talk to /webmail/api/patient
// (web/webmail/patient_routes.py); the server sends routing data and decisions only. What
// needs the patient's keys happens here: a document's title is read by opening it, a
// consent answer is signed, a document's key is re-wrapped for a professional, the agenda
// is read from the invitations and an answer is sealed.

import * as consent from "./consent.js";
import { CalendarError, appointmentOfMessage, deriveAgenda, exportEvent, replyMessage } from "./calendar.js";
import { b64url, fromB64url, resealSlot } from "./envelope.js";
import { language } from "./i18n.js";

export function patientScreens(ui) {
  const { h, field, status, render, api, t, when, stale, reasonOf, openMessage } = ui;

  function refusal(error) {
    return status(t("refusedAction", { reason: reasonOf(error) }), "error");
  }

  async function load(title, path) {
    const main = render(title, status(t("loading")));
    try {
      return [main, await api("GET", path)];
    } catch (error) {
      main.replaceChildren(main.firstChild, status(reasonOf(error), "error"));
      return [main, null];
    }
  }

  // -- my documents -------------------------------------------------------------------------

  async function documentsScreen(mine, flash = null) {
    const [main, documents] = await load(t("documents"), "/patient/documents");
    if (!documents || stale(mine)) return;
    const groups = new Map();
    for (const doc of documents) {
      const opened = await openMessage(doc.id);
      if (stale(mine)) return;
      const title = opened.message?.subject || t("noSubject");
      if (!groups.has(doc.kind)) groups.set(doc.kind, []);
      groups.get(doc.kind).push(documentCard(doc, title, mine));
    }
    const sections = [...groups.entries()].map(([kind, cards]) =>
      h("section", { "aria-labelledby": `kind-${kind}` }, h("h2", { id: `kind-${kind}` }, t(`kind_${kind}`)), h("ul", { class: "cards" }, cards)),
    );
    main.replaceChildren(
      main.firstChild,
      h("p", {}, t("documentsIntro")),
      flash || "",
      ...(sections.length ? sections : [h("p", {}, t("noDocuments"))]),
    );
  }

  function documentCard(doc, title, mine) {
    const masked = doc.masked_from.map((who) =>
      h(
        "li",
        {},
        who,
        " ",
        h("button", { type: "button", class: "link", onclick: () => setMask(doc.id, [who], false, mine), "aria-label": t("unmaskFrom", { who }) }, t("unmask")),
      ),
    );
    const form = h(
      "form",
      { class: "inline", onsubmit: (event) => {
        event.preventDefault();
        const who = new FormData(event.target).get("professional").trim();
        if (who) setMask(doc.id, [who], true, mine);
      } },
      field(t("maskFrom"), { name: "professional", type: "email", required: true, autocomplete: "off" }),
      h("button", { type: "submit" }, t("mask")),
    );
    return h(
      "li",
      { class: "card", "data-document": doc.id },
      h("h3", {}, h("a", { href: `#/read/${doc.id}` }, title)),
      h("p", { class: "meta" }, `${t("from")} ${doc.from} · ${when(doc.date)}`),
      masked.length ? h("div", {}, h("p", {}, t("maskedFrom")), h("ul", {}, masked)) : h("p", { class: "meta" }, t("notMasked")),
      form,
    );
  }

  async function setMask(id, professionals, masked, mine) {
    let flash;
    try {
      await api("POST", `/patient/documents/${encodeURIComponent(id)}/mask`, { professionals, masked });
      flash = status(masked ? t("maskedOk") : t("unmaskedOk"), "ok");
    } catch (error) {
      flash = refusal(error);
    }
    if (!stale(mine)) await documentsScreen(mine, flash);
  }

  // -- blocked professionals ----------------------------------------------------------------

  async function blockedScreen(mine, flash = null) {
    const [main, blocks] = await load(t("blocked"), "/patient/blocks");
    if (!blocks || stale(mine)) return;
    const rows = blocks.blocked.map((who) =>
      h("li", {}, who, " ", h("button", { type: "button", onclick: () => change("DELETE", who, mine), "aria-label": t("unblockWho", { who }) }, t("unblock"))),
    );
    const form = h(
      "form",
      { class: "card", onsubmit: (event) => {
        event.preventDefault();
        const who = new FormData(event.target).get("professional").trim();
        if (who) change("POST", who, mine);
      } },
      h("h2", {}, t("blockTitle")),
      h("p", {}, t("blockIntro")),
      field(t("professionalAddress"), { name: "professional", type: "email", required: true, autocomplete: "off" }),
      h("button", { type: "submit" }, t("block")),
    );
    main.replaceChildren(
      main.firstChild,
      flash || "",
      blocks.treating_doctor ? h("p", { class: "status info" }, t("treatingDoctor", { who: blocks.treating_doctor })) : "",
      h("section", { class: "card" }, h("h2", {}, t("blockedList")), rows.length ? h("ul", { class: "plain" }, rows) : h("p", {}, t("noneBlocked"))),
      form,
    );
  }

  async function change(method, who, mine) {
    let flash;
    try {
      if (method === "POST") await api("POST", "/patient/blocks", { professional: who });
      else await api("DELETE", `/patient/blocks/${encodeURIComponent(who)}`);
      flash = status(method === "POST" ? t("blockedOk", { who }) : t("unblockedOk", { who }), "ok");
    } catch (error) {
      flash = refusal(error);
    }
    if (!stale(mine)) await blockedScreen(mine, flash);
  }

  // -- consents -----------------------------------------------------------------------------

  function scopeText(kind) {
    return kind === "record" ? t("scopeRecord") : kind === "document" ? t("scopeDocument") : t("scopeCategories");
  }

  async function consentsScreen(mine, flash = null) {
    const [main, consents] = await load(t("consents"), "/patient/consents");
    if (!consents || stale(mine)) return;
    // What the patient reads is what they sign: the request's own JSON, as received.
    const pending = consents.pending.map((c) => {
      const r = c.request;
      return h(
        "li",
        { class: "card", "data-consent": r.request_id },
        h("h3", {}, r.professional),
        h(
          "dl",
          { class: "headers" },
          h("dt", {}, t("purpose")),
          h("dd", {}, r.purpose),
          h("dt", {}, t("scope")),
          h("dd", {}, scopeText(r.scope.kind), r.scope.categories ? ` (${r.scope.categories.join(", ")})` : ""),
          h("dt", {}, t("duration")),
          h("dd", {}, t("days", { n: r.duration_days })),
          h("dt", {}, t("date")),
          h("dd", {}, when(r.requested_at)),
        ),
        h(
          "p",
          { class: "actions" },
          h("button", { type: "button", onclick: () => decide(r, "grant", mine), "aria-label": t("grantTo", { who: r.professional }) }, t("grant")),
          " ",
          h("button", { type: "button", class: "secondary", onclick: () => decide(r, "refuse", mine), "aria-label": t("refuseTo", { who: r.professional }) }, t("refuse")),
        ),
      );
    });
    const grants = consents.grants.map((g) =>
      h(
        "li",
        { class: "card", "data-grant": g.id },
        h("h3", {}, g.professional),
        h("p", {}, `${g.purpose} · ${scopeText(g.scope)}`),
        h("p", { class: "meta" }, t("grantUntil", { from: when(g.starts_at), to: when(g.ends_at) })),
        h("button", { type: "button", class: "secondary", onclick: () => withdraw(g, mine), "aria-label": t("revokeFrom", { who: g.professional }) }, t("revokeGrant")),
      ),
    );
    main.replaceChildren(
      main.firstChild,
      h("p", {}, t("consentsIntro")),
      flash || "",
      h("section", {}, h("h2", {}, t("pendingConsents")), pending.length ? h("ul", { class: "cards" }, pending) : h("p", {}, t("nonePending"))),
      h("section", {}, h("h2", {}, t("activeGrants")), grants.length ? h("ul", { class: "cards" }, grants) : h("p", {}, t("noneGranted"))),
    );
  }

  async function decide(request, decision, mine) {
    let flash;
    try {
      const response = consent.answer(request, decision, ui.keys(), ui.address());
      await api("POST", `/patient/consents/${encodeURIComponent(request.request_id)}/answer`, { response });
      if (decision === "grant") {
        // The grant stands even if sharing fails now: it is tried again at every unlock.
        const shared = await syncShares().catch(() => null);
        flash = shared === null ? status(t("grantedShareLater", { who: request.professional }), "warn") : status(t("grantedOk", { who: request.professional, n: shared }), "ok");
      } else {
        flash = status(t("refusedOk", { who: request.professional }), "ok");
      }
    } catch (error) {
      flash = refusal(error);
    }
    if (!stale(mine)) await consentsScreen(mine, flash);
  }

  async function withdraw(grant, mine) {
    let flash;
    try {
      const revocation = consent.revoke(grant.response, ui.keys(), ui.address());
      await api("POST", `/patient/consents/${encodeURIComponent(grant.id)}/revoke`, { revocation });
      flash = status(t("revokedOk", { who: grant.professional }), "ok");
    } catch (error) {
      flash = refusal(error);
    }
    if (!stale(mine)) await consentsScreen(mine, flash);
  }

  /**
   * Share, under the active grants, the documents their professionals have no key for yet:
   * each document's content key is re-wrapped here for the professional's key as the key
   * log proves it (a key that cannot be proven gets nothing). Returns how many were shared.
   */
  async function syncShares() {
    const plan = await api("GET", "/patient/sharing");
    const shares = [];
    for (const candidates of plan) {
      let published;
      try {
        published = await ui.lookupKeys(candidates.professional);
      } catch {
        continue;
      }
      for (const doc of candidates.documents) {
        const opened = await openMessage(doc.id);
        if (!opened.message) continue;
        const codes = opened.message.headers?.["x-mss-codecda"] || "";
        const categories = codes.split(",").map((c) => c.trim()).filter(Boolean);
        if (!candidates.grants.some((g) => consent.covers(g.scope, doc.id, categories))) continue;
        const slot = resealSlot(fromB64url(doc.slot), ui.keys(), published.encryptionKey);
        shares.push({ document: doc.id, professional: candidates.professional, categories, slot: b64url(slot) });
      }
    }
    if (shares.length) await api("POST", "/patient/sharing", { shares });
    return shares.length;
  }

  // -- my agenda ----------------------------------------------------------------------------

  // The calendar is inside each sealed invitation: the agenda is derived here, from the
  // appointment messages of the inbox (invitations, cancellations) and of Sent (answers).
  async function agendaEntries(mine) {
    const items = [];
    for (const folder of ["INBOX", "Sent"]) {
      const records = await api("GET", `/messages?folder=${folder}`);
      for (const record of records) {
        if (record.kind !== "appointment") continue;
        const opened = await openMessage(record.id);
        if (stale(mine)) return null;
        if (!opened.message) continue;
        try {
          const { appointment } = appointmentOfMessage(opened.message);
          items.push({ sender: opened.header.from, appointment, envelopeId: record.id, messageId: opened.message.messageId, thread: opened.header.thread });
        } catch (error) {
          // A message without a readable calendar is not an appointment to show.
          if (!(error instanceof CalendarError)) throw error;
        }
      }
    }
    return deriveAgenda(items, ui.address());
  }

  const STATUS_KIND = { accepted: "ok", declined: "warn", cancelled: "warn", proposed: "info", tentative: "info", countered: "info" };

  const calendarUrls = [];

  async function agendaScreen(mine, flash = null) {
    const main = render(t("agenda"), status(t("loading")));
    let agenda;
    try {
      agenda = await agendaEntries(mine);
    } catch (error) {
      if (!stale(mine)) main.replaceChildren(main.firstChild, status(reasonOf(error), "error"));
      return;
    }
    if (!agenda || stale(mine)) return;
    const now = new Date();
    // The previous screen's calendar files: a Blob URL lives until revoked.
    for (const url of calendarUrls.splice(0)) URL.revokeObjectURL(url);
    const calendarLink = (e) => {
      const url = URL.createObjectURL(new Blob([exportEvent(e, language())], { type: "text/calendar" }));
      calendarUrls.push(url);
      return h("a", { href: url, download: "rendez-vous.ics", "aria-label": t("addToCalendarWhat", { what: e.summary || t("appointment") }) }, t("addToCalendar"));
    };
    const due = agenda.entries.filter((e) => e.status !== "cancelled" && e.status !== "declined" && e.reminderAt && e.reminderAt <= now && now < e.start);
    const cards = agenda.entries.map((e) => {
      const answerable = e.status !== "cancelled" && e.start > now;
      return h(
        "li",
        { class: "card", "data-appointment": e.uid, "data-status": e.status },
        h("h3", {}, e.summary || t("appointment")),
        h(
          "dl",
          { class: "headers" },
          h("dt", {}, t("when")),
          h("dd", {}, when(e.start.toISOString()), e.end ? ` – ${when(e.end.toISOString())}` : ""),
          h("dt", {}, t("withWhom")),
          h("dd", {}, e.organizerName ? `${e.organizerName} (${e.organizer})` : e.organizer),
          e.location ? [h("dt", {}, t("where")), h("dd", {}, e.location)] : "",
          e.reminderAt ? [h("dt", {}, t("reminder")), h("dd", {}, when(e.reminderAt.toISOString()))] : "",
        ),
        e.description ? h("p", { class: "body" }, e.description) : "",
        h("p", { class: `status ${STATUS_KIND[e.status] || "info"}` }, t(`appointment_${e.status}`)),
        answerable && e.status !== "declined" ? h("p", {}, calendarLink(e), " ", h("span", {}, t("addToCalendarHint"))) : "",
        answerable
          ? h(
              "p",
              { class: "actions" },
              e.status !== "accepted" ? h("button", { type: "button", onclick: () => respond(e, "ACCEPTED", mine), "aria-label": t("acceptWhat", { what: e.summary || t("appointment") }) }, t("accept")) : "",
              " ",
              e.status !== "declined" ? h("button", { type: "button", class: "secondary", onclick: () => respond(e, "DECLINED", mine), "aria-label": t("declineWhat", { what: e.summary || t("appointment") }) }, t("decline")) : "",
            )
          : "",
      );
    });
    main.replaceChildren(
      main.firstChild,
      h("p", {}, t("agendaIntro")),
      flash || "",
      ...due.map((e) => status(t("reminderDue", { what: e.summary || t("appointment"), when: when(e.start.toISOString()) }), "warn")),
      cards.length ? h("ul", { class: "cards" }, cards) : h("p", {}, t("noAppointments")),
    );
  }

  async function respond(entry, partstat, mine) {
    let flash;
    try {
      const plaintext = replyMessage({
        request: entry.request,
        owner: ui.address(),
        ownerName: ui.displayName(),
        partstat,
        lang: language(),
        inReplyTo: entry.messageId || null,
      });
      await ui.sealAndSend({ to: entry.organizer, type: "appointment", thread: entry.thread, plaintext });
      flash = status(partstat === "ACCEPTED" ? t("acceptedOk") : t("declinedOk"), "ok");
    } catch (error) {
      flash = refusal(error);
    }
    if (!stale(mine)) await agendaScreen(mine, flash);
  }

  // -- approved services --------------------------------------------------------------------

  async function servicesScreen(mine) {
    const [main, services] = await load(t("services"), "/patient/services");
    if (!services || stale(mine)) return;
    const cards = services.map((s) =>
      h(
        "li",
        { class: "card", "data-service": s.address },
        h("h3", {}, s.name),
        s.category ? h("p", { class: "meta" }, s.category) : "",
        s.description ? h("p", {}, s.description) : "",
        h("p", { class: "meta" }, s.address),
      ),
    );
    main.replaceChildren(
      main.firstChild,
      h("p", {}, t("servicesIntro")),
      cards.length ? h("ul", { class: "cards" }, cards) : h("p", {}, t("noServices")),
    );
  }

  // -- access history -----------------------------------------------------------------------

  async function historyScreen(mine) {
    const [main, history] = await load(t("history"), "/patient/history");
    if (!history || stale(mine)) return;
    const verdict = history.verified
      ? status(t("historyVerified", { n: history.entries.length }), "ok")
      : status(t("historyBroken", { n: history.problems.length }), "error");
    const me = ui.address().toLowerCase();
    // An entry names a document by its envelope id: words are kinder than 32 hex digits.
    const about = (e) => e.details.professional || (/^[0-9a-f]{32}$/.test(e.subject) ? t("aDocument") : e.subject);
    const rows = [...history.entries].reverse().map((e) =>
      h(
        "tr",
        { "data-action": e.action },
        h("td", { "data-label": t("date") }, when(e.at)),
        h("td", { "data-label": t("who") }, e.actor.toLowerCase() === me ? t("you") : e.actor === "operator" ? t("operatorActor") : e.actor),
        h("td", { "data-label": t("what") }, t(`action_${e.action.replace(/-/g, "_")}`)),
        h("td", { "data-label": t("about") }, about(e)),
      ),
    );
    main.replaceChildren(
      main.firstChild,
      verdict,
      rows.length
        ? h(
            "div",
            { class: "scroll", tabindex: "0", role: "region", "aria-label": t("history") },
            h(
              "table",
              { class: "history" },
              h("caption", {}, t("historyCaption")),
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("date")), h("th", { scope: "col" }, t("who")), h("th", { scope: "col" }, t("what")), h("th", { scope: "col" }, t("about")))),
              h("tbody", {}, rows),
            ),
          )
        : h("p", {}, t("historyEmpty")),
    );
  }

  return { documentsScreen, agendaScreen, blockedScreen, consentsScreen, historyScreen, servicesScreen, syncShares };
}
